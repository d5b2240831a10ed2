"""The tuning table: the winners :func:`jaxconv.tune` measured, in a JSON file that ``impl="auto"`` reads.

One entry per call, machine and pass::

    {"format": "jaxconv-tuning-table", "version": 1, "entries": [
      {"machine": {"platform": "cpu", "device": "<CPU model> x 2 threads", "jax": ..., "jaxlib": ...,
                   "jaxconv": ...},
       "op": "conv", "spec": {...ConvSpec...}, "pass": "forward+backward",
       "impl": "im2col", "ms": {"xla": ..., "im2col": ...}, "rejected": {"winograd": "why"}}]}

An entry counts only on the machine that measured it, with the same jax, jaxlib and jaxconv: a jaxlib
upgrade changes XLA's code generation, another CPU other thresholds. The file is the user's cache
(:func:`default_path`: ``$JAXCONV_TUNING_CACHE``, else ``~/.cache/jaxconv/tuning.json``) or a shared
team table named with :func:`use_table`. Writes merge with what the file holds, under a lock, and
replace it atomically (a temporary file renamed over it), so concurrent tuners leave one valid file; a
file that is not a tuning table is never written over. A lookup that finds such a file warns once,
naming it, and ``auto`` falls back to its rule.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fcntl
import functools
import json
import os
import platform as host_platform
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jaxconv.spec import ConvSpec, PoolSpec

FORMAT, VERSION = "jaxconv-tuning-table", 1
PASSES = ("forward", "forward+backward")
SPECS: dict[str, type[ConvSpec] | type[PoolSpec]] = {"conv": ConvSpec, "pool": PoolSpec}
ENV_VAR = "JAXCONV_TUNING_CACHE"


class TableError(ValueError):
    """A file that is not a readable jaxconv tuning table."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One measured call: on ``machine``, ``op``'s call ``spec`` in ``pass_`` ran fastest as ``impl``.

    ``ms`` holds each timed candidate's median milliseconds, ``rejected`` why a candidate was left out
    (wrong numbers, too big for memory, far slower at warm-up).
    """

    machine: Mapping[str, str]
    op: str
    spec: ConvSpec | PoolSpec
    pass_: str
    impl: str
    ms: Mapping[str, float] = dataclasses.field(default_factory=dict)
    rejected: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in SPECS or not isinstance(self.spec, SPECS[self.op]):
            raise TypeError(f"Entry: op {self.op!r} needs a {SPECS.get(self.op, ConvSpec).__name__}, "
                            f"got {type(self.spec).__name__}")  # fmt: skip
        if self.pass_ not in PASSES:
            raise ValueError(f"Entry: pass_ must be one of {PASSES}, got {self.pass_!r}")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What one measurement answers: the machine, the op, the call and the pass."""
        return entry_key(self.machine, self.op, self.spec, self.pass_)

    def to_json(self) -> dict[str, Any]:
        spec = json.loads(self.spec.to_json())
        return {"machine": dict(self.machine), "op": self.op, "spec": spec, "pass": self.pass_,
                "impl": self.impl, "ms": dict(self.ms), "rejected": dict(self.rejected)}  # fmt: skip

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Entry:
        spec = SPECS[item["op"]].from_json(json.dumps(item["spec"]))
        return cls(dict(item["machine"]), item["op"], spec, item["pass"], str(item["impl"]),
                   dict(item.get("ms", {})), dict(item.get("rejected", {})))  # fmt: skip


def entry_key(
    machine: Mapping[str, str], op: str, spec: ConvSpec | PoolSpec, pass_: str
) -> tuple[str, str, str, str]:
    """The key of a measurement: the machine and the call's description as stable JSON, the op, the pass."""
    return (json.dumps(dict(machine), sort_keys=True, separators=(",", ":")), op, spec.to_json(), pass_)


# ---- where the table is ---------------------------------------------------------------------------

_TABLE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("jaxconv_tuning_table", default=None)


def default_path() -> Path:
    """The user's tuning cache: ``$JAXCONV_TUNING_CACHE`` if set, else ``tuning.json`` under
    ``$XDG_CACHE_HOME/jaxconv`` (``~/.cache/jaxconv``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxconv" / "tuning.json"


def active_path() -> Path:
    """The table ``auto`` reads and :func:`jaxconv.tune` writes now: :func:`use_table`'s, else
    :func:`default_path`."""
    return _TABLE.get() or default_path()


@contextlib.contextmanager
def use_table(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Within the block, ``impl="auto"`` reads (and :func:`jaxconv.tune` writes) the table at ``path``, e.g.
    a team's shared one, instead of the user's cache. Calls traced inside the block keep its picks.

    Examples:
      >>> with use_table("/tmp/team-table.json") as path:
      ...     active_path() == path
      True
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"use_table: path must be a str or os.PathLike, got {type(path).__name__}")
    token = _TABLE.set(Path(path).expanduser())
    try:
        yield _TABLE.get()  # type: ignore[misc]
    finally:
        _TABLE.reset(token)


# ---- the machine ------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The host CPU's model name, family and model numbers (Linux's ``/proc/cpuinfo``; elsewhere what
    :mod:`platform` says) and the threads this process may run on, which XLA's CPU thread pool uses."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor's block is enough
                fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or host_platform.processor() or host_platform.machine() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:  # one marketing name covers several generations
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} x {threads} threads"


@functools.cache
def machine(backend: str) -> dict[str, str] | None:
    """What an entry measured on ``backend`` is valid for: the device (a CPU's model name and thread count,
    an accelerator's ``device_kind``) and the versions of jax, jaxlib and jaxconv; ``None`` where this
    process has no ``backend`` device."""
    import importlib.metadata

    import jax

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # e.g. jaxconv run from a source tree
            return "unknown"

    try:
        devices = jax.devices(backend)
    except RuntimeError:
        return None
    device = cpu_name() if backend == "cpu" else devices[0].device_kind
    return {"platform": backend, "device": device, "jax": jax.__version__,
            "jaxlib": version("jaxlib"), "jaxconv": version("jaxconv")}  # fmt: skip


# ---- reading and writing ----------------------------------------------------------------------------


def parse(text: str, path: Path) -> list[Entry]:
    """The entries of a table's text; :class:`TableError` naming ``path`` if it is not one."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TableError(f'{path} is not a jaxconv tuning table (no "format": {FORMAT!r})')
        if data.get("version") != VERSION:
            raise TableError(f"{path} is a version {data.get('version')!r} tuning table; this jaxconv reads "
                             f"version {VERSION}")  # fmt: skip
        return [Entry.from_json(item) for item in data["entries"]]
    except TableError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise TableError(f"{path} is not a readable jaxconv tuning table: {e}") from e


def read(path: str | os.PathLike[str]) -> list[Entry]:
    """The entries in the table at ``path`` (none if there is no file); :class:`TableError` if the file is
    not a tuning table."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return parse(text, path)


def write(path: str | os.PathLike[str], entries: Iterable[Entry]) -> Path:
    """Merges ``entries`` into the table at ``path`` (a new entry replaces one with the same
    :attr:`Entry.key`) and returns the path.

    Holds an exclusive lock on ``<path>.lock`` while it reads, merges and renames a temporary file over
    the table, so concurrent writers each see the other's entries and a reader never sees half a file.

    Raises:
      TableError: if the file there is not a tuning table; it is left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = {entry.key: entry for entry in read(path)}
        merged.update((entry.key, entry) for entry in entries)
        lines = ",\n".join(json.dumps(entry.to_json(), sort_keys=True) for entry in merged.values())
        text = f'{{"format": "{FORMAT}", "version": {VERSION}, "entries": [\n{lines}\n]}}'  # an entry a line
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _cached_entries.cache_clear()
    return path


# ---- lookup at trace time ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _cached_entries(
    path: Path, stamp: tuple[int, int]
) -> dict[tuple[str, str, str, str], Entry] | TableError:
    """The table at ``path`` as its stamp (modification time, size) left it: read once per change."""
    try:
        return {entry.key: entry for entry in read(path)}
    except TableError as e:
        return e


_warned: set[tuple[Path, tuple[int, int]]] = set()


def entries_at(path: Path) -> Mapping[tuple[str, str, str, str], Entry]:
    """The table at ``path`` by key, re-read when the file changes; empty, with one warning per version
    of the file, when it is not a tuning table."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    found = _cached_entries(path, stamp)
    if isinstance(found, TableError):
        if (path, stamp) not in _warned:
            _warned.add((path, stamp))
            warnings.warn(f"jaxconv: ignoring the tuning table: {found}; impl='auto' uses its rule",
                          stacklevel=2)  # fmt: skip
        return {}
    return found


def lookup(backend: str, op: str, spec: ConvSpec | PoolSpec, pass_: str) -> Entry | None:
    """The entry measured on this machine for ``op``'s call ``spec`` on ``backend``, in the active table:
    the one for ``pass_`` if there is one, else the other pass's; ``None`` if neither."""
    where = machine(backend)
    if where is None:
        return None
    entries = entries_at(active_path())
    if not entries:
        return None
    keys = [entry_key(where, op, spec, p) for p in sorted(PASSES, key=lambda p: p != pass_)]
    return next((entries[key] for key in keys if key in entries), None)
