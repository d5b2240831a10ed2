"""Atomic training checkpoints with Flax serialization (msgpack).

A checkpoint holds the whole ``TrainState`` (params, optimizer state, batch statistics, step), the
number of finished epochs, the history so far and the config that produced it. It is written to a
temporary file in the same folder and renamed over the old one, so a crash leaves either the
previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

from flax import serialization


def save(path: str | os.PathLike, state: Any, *, epoch: int, history: list[dict], config: dict) -> Path:
    """Writes ``state`` and the run's bookkeeping to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state": serialization.to_state_dict(state),
        "epoch": epoch,
        "history": json.dumps(history),
        "config": json.dumps(config, sort_keys=True),
    }
    data = serialization.msgpack_serialize(payload)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, target: Any) -> tuple[Any, int, list[dict], dict]:
    """Reads a checkpoint into the structure of ``target`` (a freshly created state).

    Returns:
      ``(state, finished_epochs, history, config)``.

    Raises:
      FileNotFoundError: no checkpoint at ``path``.
      ValueError: the file is not a jaxconv checkpoint or does not fit ``target``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint.load: no checkpoint at {path}")
    try:
        payload = cast(dict[str, Any], serialization.msgpack_restore(path.read_bytes()))
        state = serialization.from_state_dict(target, payload["state"])
        return state, int(payload["epoch"]), json.loads(payload["history"]), json.loads(payload["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"checkpoint.load: {path} is not a checkpoint this model can restore ({e})") from e
