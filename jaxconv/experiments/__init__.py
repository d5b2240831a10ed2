"""The chapter as runnable experiments: ``jaxconv experiment NAME`` (or, from a checkout,
``python -m experiments.NAME``, whose short entry points call these modules).

Each module has ``run(out: Path, fast: bool) -> dict``: it prints what it shows, writes its figures
(PNG) and numbers (JSON) under ``out``, and returns the numbers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

NAMES = (
    "why_conv",
    "conv_layer",
    "padding_stride",
    "channels",
    "pooling",
    "receptive_field",
    "manual_vs_xla",
    "lenet",
    "drop_in",
)


def run(name: str, out: str | Path, fast: bool = False) -> dict:
    """Runs one experiment (or ``"all"``, each into ``out/NAME``)."""
    if name == "all":
        return {n: run(n, Path(out) / n, fast) for n in NAMES}
    if name not in NAMES:
        raise ValueError(f"experiment: name must be one of {(*NAMES, 'all')}, got {name!r}")
    print(f"== experiment {name}")
    return importlib.import_module(f"jaxconv.experiments.{name}").run(Path(out), fast)
