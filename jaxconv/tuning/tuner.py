"""``jaxconv.tune`` and ``jaxconv.explain``: measuring ``auto``'s picks for your function on your machine.

:func:`tune` traces a function once (abstractly: nothing runs), collects every jaxconv convolution and
pooling call that asks for ``impl="auto"`` (:mod:`jaxconv.tuning.calls`), times each distinct call's
candidates (:func:`jaxconv.tuning.measure.measure`) and writes the winners to the tuning table
(:mod:`jaxconv.tuning.table`), which ``auto`` reads at trace time from then on. :func:`explain` says, per
call, what ``auto`` runs and why. docs/guide/tuning.md shows both on real models.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxconv.spec import ConvSpec, PoolSpec
from jaxconv.timing.memory_budget import available_memory
from jaxconv.timing.rounds import paired_speedups, round_orders
from jaxconv.tuning import calls as calls_module
from jaxconv.tuning import lookup, measure, table

# Where the rule's pick times within this fraction of the fastest, the tuned pick stays the rule's: a
# near-tie decided by a shared machine's noise would make two tunings of one model pick differently.
RULE_MARGIN = 0.03
# In the step check, a tuned pick stays only if the step without it runs more than this fraction slower.
STEP_MARGIN = 0.01
# Calls of the whole step per timing round: enough for this many seconds, so a short step is not noise.
STEP_ROUND_SECONDS = 0.1


def describe(op: str, spec: ConvSpec | PoolSpec) -> str:
    """A call in a line: operand shape, window, options that differ from the defaults.

    Examples:
      >>> describe("conv", ConvSpec(batch=32, in_channels=64, out_channels=128, input_hw=(56, 56),
      ...                           kernel=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)), layout="NHWC"))
      'conv 32x64x56x56 -> 128, 3x3 s2 p1 NHWC'
      >>> describe("pool", PoolSpec(batch=256, channels=6, input_hw=(28, 28), window=(2, 2), stride=(2, 2)))
      'max pool 256x6x28x28, 2x2 s2 NCHW'
    """

    def pair(name: str, value: tuple[int, int], default: int) -> str:
        if value == (default, default):
            return ""
        return f" {name}{value[0]}" if value[0] == value[1] else f" {name}{value[0]},{value[1]}"

    pads = spec.pads
    flat = {pads[0][0], pads[0][1], pads[1][0], pads[1][1]}
    pad = "" if flat == {0} else (f" p{flat.pop()}" if len(flat) == 1 else f" p{pads}")
    tail = f" {spec.layout}" + ("" if spec.dtype == "float32" else f" {spec.dtype}")
    if isinstance(spec, PoolSpec):
        shape = f"{spec.batch}x{spec.channels}x{spec.input_hw[0]}x{spec.input_hw[1]}"
        window = (
            f"{spec.window[0]}x{spec.window[1]}"
            + pair("s", spec.stride, 0)
            + pad
            + pair("d", spec.dilation, 1)
        )
        return f"{spec.mode} pool {shape}, {window}{tail}"
    shape = f"{spec.batch}x{spec.in_channels}x{spec.input_hw[0]}x{spec.input_hw[1]}"
    options = (
        pair("s", spec.stride, 1) + pad + pair("d", spec.dilation, 1) + pair("up", spec.input_dilation, 1)
    )
    options += (f" g{spec.groups}" if spec.groups != 1 else "") + (" transposed" if spec.transposed else "")
    return f"conv {shape} -> {spec.out_channels}, {spec.kernel[0]}x{spec.kernel[1]}{options}{tail}"


@dataclasses.dataclass(frozen=True)
class CallReport:
    """One distinct call of a tuned or explained function, and what ``auto`` does with it."""

    op: str
    spec: ConvSpec | PoolSpec
    pass_: str
    count: int  # how many times the function makes this call
    asked: str  # the impl the call asks for
    rule: str  # what the hand-written rule runs
    runs: str  # what runs: the tuned winner, the rule's pick, or the impl asked for
    source: str  # "tuned" (measured now), "table" (an earlier measurement), "rule", or "given"
    ms: Mapping[str, float] = dataclasses.field(default_factory=dict)
    rejected: Mapping[str, str] = dataclasses.field(default_factory=dict)
    pick: str = "auto"  # the impl auto runs: a registry name, or "auto" for the rule's own pick

    @property
    def call(self) -> str:
        return describe(self.op, self.spec)

    @property
    def key(self) -> tuple[str, str, str]:
        return lookup.pick_key(self.op, self.spec, self.pass_)


@dataclasses.dataclass(frozen=True)
class Report(Sequence[CallReport]):
    """What :func:`tune` or :func:`explain` found, one row per distinct call; prints as a table."""

    rows: tuple[CallReport, ...]
    table_path: Path | None = None
    # The whole function timed in context (Tuner.in_context): each variant's median ms per call, and
    # what it changed against the rule; empty where it was not timed.
    step_ms: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __getitem__(self, index: int) -> CallReport:  # type: ignore[override]
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def to_markdown(self) -> str:
        """The rows as a Markdown table: call, pass, how often, the rule's pick, what runs and why, and
        each timed candidate's median milliseconds, fastest first."""
        lines = [
            "| call | pass | calls | rule | runs | because | candidates (ms) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            times = ", ".join(f"{name} {ms:.3g}" for name, ms in sorted(row.ms.items(), key=lambda kv: kv[1]))
            lines.append(f"| {row.call} | {row.pass_} | {row.count} | {row.rule} | {row.runs} | {row.source} "
                         f"| {times or '-'} |")  # fmt: skip
        return "\n".join(lines)

    def __str__(self) -> str:
        head = ("call", "pass", "n", "rule", "runs", "because", "candidates (ms, fastest first)")
        body = []
        for row in self.rows:
            times = "  ".join(f"{name} {ms:.3g}" for name, ms in sorted(row.ms.items(), key=lambda kv: kv[1]))
            body.append((row.call, row.pass_, str(row.count), row.rule, row.runs, row.source, times or "-"))
        widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head) - 1)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=False)) + "  " + r[-1]
                 for r in (head, *body)]  # fmt: skip
        if self.step_ms:
            lines.append("in the step (ms): " + ", ".join(f"{k} {v:.3g}" for k, v in self.step_ms.items()))
        if self.table_path is not None:
            lines.append(f"(tuning table: {self.table_path})")
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


def _trace(fn: Callable[..., Any], args: tuple, kwargs: dict) -> list[calls_module.Call]:
    """The calls ``fn(*args, **kwargs)`` makes, traced abstractly; JAX's caches are cleared when a first
    trace sees none (a jitted function traced before for these shapes runs no Python)."""
    with calls_module.recording() as seen:
        jax.eval_shape(fn, *args, **kwargs)
    if seen:
        return seen
    jax.clear_caches()
    with calls_module.recording() as seen:
        jax.eval_shape(fn, *args, **kwargs)
    return seen


def _distinct(seen: Sequence[calls_module.Call]) -> dict[calls_module.Call, int]:
    counts: dict[calls_module.Call, int] = {}
    for call in seen:
        counts[call] = counts.get(call, 0) + 1
    return counts


def _concrete(args: tuple, kwargs: dict) -> bool:
    """Whether every leaf of the arguments is an array with data (not a ``jax.ShapeDtypeStruct``)."""
    leaves = jax.tree.leaves((args, kwargs))
    return all(isinstance(leaf, jax.Array | np.ndarray | np.generic | int | float | bool) for leaf in leaves)


def _claimed_gain(row: CallReport) -> float:
    """Milliseconds per call of ``fn`` that a row's tuned pick saved against the rule's, timed alone."""
    rule = row.ms.get(measure.rule_impl(jax.default_backend(), row.op, row.spec))
    return row.count * (rule - row.ms[row.pick]) if rule is not None and row.pick in row.ms else 0.0


class _StepTimer:
    """The whole function compiled under several sets of picks, and pairs of them timed in interleaved
    rounds (each call of a round repeated to fill :data:`STEP_ROUND_SECONDS`)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict,
                 compiler_options: Mapping[str, str] | None, rounds: int) -> None:  # fmt: skip
        self.fn, self.args, self.kwargs, self.rounds = fn, args, kwargs, rounds
        self.options = dict(compiler_options or {})
        self.runs: dict[str, tuple[Callable[[], Any], int]] = {}
        self.ms: dict[str, float] = {}

    def add(self, label: str, picks: Mapping[tuple[str, str, str], str]) -> None:
        """Compiles ``fn`` under ``picks`` (a fresh trace: picks are read while tracing) and warms it up."""
        jax.clear_caches()
        with lookup.with_picks(picks):
            lowered = jax.jit(self.fn, compiler_options=self.options).lower(*self.args, **self.kwargs)
        compiled = lowered.compile()
        start = time.perf_counter()
        jax.block_until_ready(compiled(*self.args, **self.kwargs))
        repeat = max(1, int(STEP_ROUND_SECONDS / max(time.perf_counter() - start, 1e-6)))
        self.runs[label] = (partial(_repeated, compiled, self.args, self.kwargs, repeat), repeat)

    def ratio(self, reference: str, label: str) -> float:
        """Times the two in interleaved rounds; the median per-round speed-up of ``label`` over
        ``reference`` (> 1: ``label`` is faster). Each keeps its median of these rounds."""
        seconds: dict[str, list[float]] = {reference: [], label: []}
        for order in round_orders([reference, label], 2 * self.rounds):
            for name in order:
                run, repeat = self.runs[name]
                start = time.perf_counter()
                run()
                seconds[name].append((time.perf_counter() - start) / repeat)
        self.ms.update({name: 1e3 * statistics.median(s) for name, s in seconds.items()})
        return paired_speedups(seconds[reference], seconds[label])["median"]

    def medians(self) -> dict[str, float]:
        """Each variant's median milliseconds per call of ``fn``, from the last rounds it ran in."""
        return dict(self.ms)


def _repeated(compiled: Any, args: tuple, kwargs: dict, repeat: int) -> None:
    jax.block_until_ready([compiled(*args, **kwargs) for _ in range(repeat)])


def _winner(result: measure.Measurement, rule: str) -> str | None:
    """The fastest candidate, or the rule's pick (a registry name, or ``"auto"`` for its phases) where it
    is within :data:`RULE_MARGIN` of the fastest."""
    fastest = result.fastest
    if fastest is None:
        return None
    if rule in result.seconds and result.seconds[rule] <= (1 + RULE_MARGIN) * result.seconds[fastest]:
        return rule
    return fastest


@dataclasses.dataclass(frozen=True)
class Tuner:
    """How :func:`tune` measures: its options, with the defaults :func:`jaxconv.tune` uses.

    - ``rounds``: interleaved timing rounds per call after the warm-up (each candidate keeps its median).
    - ``table``: the tuning table to write (default: the active one, :func:`jaxconv.tuning.active_path`).
    - ``save``: whether to write the winners to ``table``.
    - ``retune``: measure calls the table already has an entry for (default: reuse the entry).
    - ``progress``: show a progress bar (tqdm).
    - ``compiler_options``: XLA options the candidates compile with (default: XLA's, as a plain
      ``jax.jit``).
    - ``timer``: ``timer(impl, run) -> seconds`` for one call (tests pass a fake one).
    - ``free_memory``: bytes free now, or ``None``; a candidate whose compiled footprint exceeds it is
      skipped.
    - ``in_context``: where ``fn``'s arguments are concrete arrays, time the whole ``fn`` too and keep a
      tuned pick only where the step runs faster with it than with the rule's (a call timed alone can
      win by a margin it loses beside its neighbours).
    """

    rounds: int = 5
    table: str | os.PathLike[str] | None = None
    save: bool = True
    retune: bool = False
    progress: bool = True
    compiler_options: Mapping[str, str] | None = None
    timer: measure.Timer = measure.wall_time
    free_memory: Callable[[], int | None] = available_memory
    in_context: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.rounds, int) or isinstance(self.rounds, bool) or self.rounds < 1:
            raise ValueError(f"Tuner: rounds must be an int >= 1, got {self.rounds!r}")
        if self.table is not None and not isinstance(self.table, str | os.PathLike):
            raise TypeError(f"Tuner: table must be a path or None, got {type(self.table).__name__}")

    @property
    def path(self) -> Path:
        return Path(self.table).expanduser() if self.table is not None else table.active_path()

    def tune_calls(self, found: Mapping[calls_module.Call, int]) -> Report:
        """Measures the ``auto`` calls among ``found`` (call -> how many times it is made) that the table
        lacks (all of them with ``retune``), writes the winners, and reports every call."""
        backend = jax.default_backend()
        where = table.machine(backend)
        path = self.path
        if self.save:
            table.read(path)  # a file that is not a tuning table stops us here, before any timing
        known = {} if self.retune else table.entries_at(path)
        todo = [call for call in found if call.impl == "auto"]
        rows, entries = [], []
        bar = tqdm(todo, desc="jaxconv tune", unit="call", disable=not self.progress or not todo)
        for call in bar:
            bar.set_postfix_str(describe(call.op, call.spec), refresh=True)
            key = table.entry_key(where or {}, call.op, call.spec, call.pass_)
            rule = measure.rule_pick(backend, call.op, call.spec)
            if key in known:
                entry = known[key]
                runs = rule if entry.impl == "auto" else entry.impl
                rows.append(CallReport(call.op, call.spec, call.pass_, found[call], call.impl, rule, runs,
                                       "table", entry.ms, entry.rejected, entry.impl))  # fmt: skip
                continue
            result = measure.measure(call.op, call.spec, call.pass_, rounds=self.rounds, timer=self.timer,
                                     free_memory=self.free_memory, compiler_options=self.compiler_options,
                                     backend=backend)  # fmt: skip
            winner = _winner(result, measure.rule_impl(backend, call.op, call.spec))
            ms = {name: 1e3 * s for name, s in result.seconds.items()}
            if winner is None or where is None:
                rows.append(CallReport(call.op, call.spec, call.pass_, found[call], call.impl, rule, rule,
                                       "rule", ms, result.rejected))  # fmt: skip
                continue
            entries.append(
                table.Entry(where, call.op, call.spec, call.pass_, winner, ms, dict(result.rejected))
            )
            runs = rule if winner == "auto" else winner
            rows.append(CallReport(call.op, call.spec, call.pass_, found[call], call.impl, rule, runs,
                                   "tuned", ms, result.rejected, winner))  # fmt: skip
        for call, count in found.items():
            if call.impl != "auto":
                rows.append(
                    CallReport(call.op, call.spec, call.pass_, count, call.impl, "-", call.impl, "given")
                )
        if self.save and entries:
            table.write(path, entries)
        return Report(tuple(rows), path if self.save else None)

    def tune(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Report:
        """:func:`jaxconv.tune` with these options."""
        if not callable(fn):
            raise TypeError(f"tune: fn must be callable, got {type(fn).__name__}")
        if self.save:
            table.read(self.path)  # a file that is not a tuning table stops us here, before any work
        jax.clear_caches()  # so that jitted functions inside fn run their Python, and are seen
        with table.use_table(self.path):
            report = self.tune_calls(_distinct(_trace(fn, args, kwargs)))
            if self.in_context and _concrete(args, kwargs):
                report = self._in_context(report, fn, args, kwargs)
        jax.clear_caches()  # so that fn, traced again, runs the winners
        return report

    def _in_context(self, report: Report, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Report:
        """Times the whole ``fn`` with the picks just tuned against the rule's, then, one call at a time
        (the biggest claimed gain first), with that call's pick turned back to the rule's and turned to
        its runner-up alone; the call keeps whichever makes the step fastest, the rule's on a tie within
        :data:`STEP_MARGIN` (a call timed alone can win by a margin it loses beside its neighbours).
        Writes the changed picks; picks already in the table are left as they are."""
        backend = jax.default_backend()
        changed = [row for row in report if row.source == "tuned"
                   and row.pick != measure.rule_impl(backend, row.op, row.spec)]  # fmt: skip
        if not changed:
            return report
        picks = {row.key: row.pick for row in changed}
        timer = _StepTimer(fn, args, kwargs, self.compiler_options, self.rounds)
        timer.add("rule", {key: "auto" for key in picks})
        timer.add("tuned", picks)
        timer.ratio("rule", "tuned")
        best, moved = "tuned", {}
        for row in sorted(changed, key=lambda r: -_claimed_gain(r)):
            rule = measure.rule_impl(backend, row.op, row.spec)
            runner_up = [n for n in sorted(row.ms, key=row.ms.__getitem__) if n not in (row.pick, rule)][:1]
            for alternative in ["auto", *runner_up]:
                label = f"{row.call} as {'the rule' if alternative == 'auto' else alternative}"
                trial = {**picks, row.key: alternative}
                timer.add(label, trial)
                # The rule's pick needs only to be no slower; another impl, faster.
                needed = 1 - STEP_MARGIN if alternative == "auto" else 1 + STEP_MARGIN
                if timer.ratio(best, label) >= needed:
                    picks, best = trial, label
            if picks[row.key] != row.pick:
                moved[row.key] = picks[row.key]
        step_ms = timer.medians()
        if moved:
            self._move(report, moved, step_ms)
        rows = []
        for row in report:
            if row.key in moved:
                pick = moved[row.key]
                runs = row.rule if pick == "auto" else pick
                row = dataclasses.replace(row, runs=runs, pick=pick, source="tuned in the step")
            rows.append(row)
        return Report(tuple(rows), report.table_path, step_ms)

    def _move(self, report: Report, moved: Mapping[tuple[str, str, str], str],
              step_ms: Mapping[str, float]) -> None:  # fmt: skip
        """Writes the picks the step check changed, each with why its first pick lost."""
        where = table.machine(jax.default_backend())
        if not self.save or where is None:
            return
        times = ", ".join(f"{label} {ms:.3g}" for label, ms in step_ms.items())
        why = f"slower in the step it was tuned in (ms: {times})"
        entries = [table.Entry(where, row.op, row.spec, row.pass_, moved[row.key], row.ms,
                               {**row.rejected, row.pick: why})
                   for row in report if row.key in moved]  # fmt: skip
        table.write(self.path, entries)


def tune(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Report:
    """Measures which implementation runs each of ``fn``'s convolution and pooling calls fastest on this
    machine, and makes ``impl="auto"`` pick it from then on.

    ``fn(*args, **kwargs)`` is traced once, abstractly (``args`` may be arrays or
    ``jax.ShapeDtypeStruct``); each distinct call that asks for ``impl="auto"`` (the default of every op
    and layer, and of ``jc.conv_general_dilated`` plugged into a Flax model) has its candidates timed,
    forward+backward where ``fn`` differentiates it and forward alone where not
    (:func:`jaxconv.tuning.measure.measure`: warm-up, a check against XLA's numbers, interleaved rounds,
    medians). The winners go to the tuning table (``~/.cache/jaxconv/tuning.json``,
    ``$JAXCONV_TUNING_CACHE``, or :func:`jaxconv.tuning.use_table`'s), keyed by this machine's device and
    the jax, jaxlib and jaxconv versions; calls the table already holds are not timed again. JAX's caches
    are cleared before and after, so a jitted ``fn`` traced again picks the winners. Options:
    :class:`jaxconv.tuning.Tuner`.

    Returns:
      A :class:`jaxconv.tuning.Report`: per call the rule's pick, what runs now and the candidates'
      times; ``print`` it for a table.

    Examples:
      >>> import jax.numpy as jnp, jaxconv as jc
      >>> loss = lambda w, x: jc.conv2d(x, w, padding=1).sum()
      >>> report = jc.tuning.Tuner(save=False, progress=False, rounds=1).tune(
      ...     jax.grad(loss), jnp.ones((4, 3, 3, 3)), jnp.ones((8, 3, 16, 16)))
      >>> [(row.call, row.pass_) for row in report]
      [('conv 8x3x16x16 -> 4, 3x3 p1 NCHW', 'forward+backward')]
    """
    return Tuner().tune(fn, *args, **kwargs)


def explain(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Report:
    """What ``impl="auto"`` runs for each of ``fn``'s convolution and pooling calls on JAX's default
    backend, and why: ``table`` (the active tuning table's measured winner), ``rule`` (the hand-written
    rule, :mod:`jaxconv.impls.auto`), or ``given`` (the call names its impl). Times nothing.

    Examples:
      >>> import jax.numpy as jnp, jaxconv as jc
      >>> x, w = jnp.ones((256, 6, 14, 14)), jnp.ones((16, 6, 5, 5))
      >>> with jc.tuning.use_table("/nonexistent/table.json"):
      ...     report = jc.explain(lambda x, w: jc.conv2d(x, w), x, w)
      >>> [(row.call, row.runs, row.source) for row in report]
      [('conv 256x6x14x14 -> 16, 5x5 NCHW', 'banded', 'rule')]
    """
    if not callable(fn):
        raise TypeError(f"explain: fn must be callable, got {type(fn).__name__}")
    backend = jax.default_backend()
    rows = []
    for call, count in _distinct(_trace(fn, args, kwargs)).items():
        if call.impl != "auto":
            rows.append(CallReport(call.op, call.spec, call.pass_, count, call.impl, "-", call.impl, "given"))
            continue
        rule = measure.rule_pick(backend, call.op, call.spec)
        entry = table.lookup(backend, call.op, call.spec, call.pass_)
        if entry is None:
            rows.append(CallReport(call.op, call.spec, call.pass_, count, call.impl, rule, rule, "rule"))
        else:
            runs = rule if entry.impl == "auto" else entry.impl
            rows.append(CallReport(call.op, call.spec, call.pass_, count, call.impl, rule, runs, "table",
                                   entry.ms, entry.rejected))  # fmt: skip
    return Report(tuple(rows), table.active_path())


_MISS_TUNER: contextvars.ContextVar[Tuner | None] = contextvars.ContextVar("jaxconv_miss_tuner", default=None)


@contextlib.contextmanager
def tune_on_miss(tuner: Tuner | bool = True) -> Iterator[None]:
    """Within the block, a call that ``auto`` traces and the table lacks is tuned there and then (and
    written to the table) instead of falling back to the rule; ``JAXCONV_TUNE_ON_MISS=1`` does the same
    for a whole process. Off by default: it makes the first trace of a model take seconds per call.

    Args:
      tuner: ``True``, or the :class:`Tuner` to measure with (its table, default the active one); ``False``
        turns tuning on a miss off within the block.
    """
    if not isinstance(tuner, Tuner | bool):
        raise TypeError(f"tune_on_miss: tuner must be a Tuner or a bool, got {type(tuner).__name__}")
    token = lookup.TUNING_ON_MISS.set(bool(tuner))
    tuner_token = _MISS_TUNER.set(tuner if isinstance(tuner, Tuner) else None)
    try:
        yield
    finally:
        _MISS_TUNER.reset(tuner_token)
        lookup.TUNING_ON_MISS.reset(token)


def _tune_one(op: str, spec: ConvSpec | PoolSpec, pass_: str) -> table.Entry | None:
    """Tunes one call that missed the table at trace time, in a thread of its own (outside the trace being
    built), and returns its new entry."""
    path = table.active_path()
    tuner = dataclasses.replace(_MISS_TUNER.get() or Tuner(), progress=False)
    tuner = dataclasses.replace(tuner, table=tuner.table or path)
    call = calls_module.Call(op, spec, "auto", pass_)

    def work() -> None:
        lookup.TUNING_ON_MISS.set(False)  # this thread's own context: no tuning within tuning
        tuner.tune_calls({call: 1})

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(work).result()
    with table.use_table(tuner.path):
        return table.lookup(jax.default_backend(), op, spec, pass_)


lookup.set_miss_handler(_tune_one)
