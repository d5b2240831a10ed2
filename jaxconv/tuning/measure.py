"""Timing every implementation that can run one call, on this machine: the measurement behind a tuned pick.

For one call (an op, its description, its pass) :func:`measure` compiles each candidate
(:func:`candidates`), skips one whose compiled footprint would not fit in free memory (as the bench does,
:mod:`jaxconv.timing.memory_budget`), runs each once (the warm-up) and checks its output, and its
gradients where the call is differentiated, against XLA's: a candidate beyond the dtype's tolerance is
rejected, as XLA's own autotuner rejects a kernel whose output differs from the reference. One far
slower than the fastest at warm-up is dropped before the rounds. The rest run in interleaved rounds
(:func:`jaxconv.timing.rounds.round_orders`), and each keeps its median.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import impls
from jaxconv.impls import REGISTRY
from jaxconv.impls.auto import describe_pick, pool_impl
from jaxconv.impls.stencil import MAX_STENCIL_CHANNELS, runs_stencil
from jaxconv.spec import ConvSpec, PoolSpec
from jaxconv.timing.memory_budget import available_memory, too_big
from jaxconv.timing.rounds import round_orders
from jaxconv.tuning.lookup import rule_only

# Largest error against XLA's result, relative to its largest magnitude, that a candidate may have:
# a few rounding steps of the dtype over a long sum; a wrong convolution is off by order one.
TOLERANCE = {"float64": 1e-8, "float32": 5e-4, "float16": 1e-2, "bfloat16": 5e-2}
# A candidate slower than this many times the fastest at warm-up cannot win: it skips the rounds.
DROP_FACTOR = 10.0
# The backends' kernels written for them; the CPU races the hand-written ones.
ACCELERATOR_CANDIDATES = ("xla", "pallas")

Timer = Callable[[str, Callable[[], Any]], float]


def wall_time(impl: str, run: Callable[[], Any]) -> float:
    """Seconds one call of ``run`` takes, waiting for its results (``impl`` is its name, unused here;
    a test's fake timer decides by it)."""
    start = time.perf_counter()
    jax.block_until_ready(run())
    return time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One call's candidates: each one's median seconds, and why others were left out."""

    seconds: Mapping[str, float]
    rejected: Mapping[str, str]
    rule: str  # what the hand-written rule picks (a name of the registry or "phases: ...")

    @property
    def fastest(self) -> str | None:
        return min(self.seconds, key=self.seconds.__getitem__) if self.seconds else None


def rule_pick(backend: str, op: str, spec: ConvSpec | PoolSpec) -> str:
    """What the hand-written rule runs for the call, in words (:func:`jaxconv.impls.auto.describe_pick`)."""
    if isinstance(spec, PoolSpec):
        return pool_impl(backend, spec)
    return describe_pick(backend, spec)


def rule_impl(backend: str, op: str, spec: ConvSpec | PoolSpec) -> str:
    """The registry name the rule's pick amounts to as a candidate: the rule's core, or, for a call it runs
    as phases, ``"auto"`` itself (no single impl runs it as the rule does)."""
    if isinstance(spec, PoolSpec):
        return pool_impl(backend, spec)
    pick = rule_pick(backend, op, spec)
    return pick if pick in REGISTRY else "auto"


def candidates(backend: str, op: str, spec: ConvSpec | PoolSpec) -> tuple[list[str], dict[str, str]]:
    """The impls worth timing for the call on ``backend``, and why each other registered impl is not.

    On a CPU: every registered impl that runs natively there, except the book's ``manual`` (a reference,
    slower by orders of magnitude), ``stencil`` where it hands over to ``shift_add``
    (:func:`jaxconv.impls.stencil.runs_stencil`), and, for pooling, impls that share another's pooling
    core. On a GPU or TPU: ``xla`` and ``pallas``, the kernels written for them.
    """
    chosen: list[str] = []
    left: dict[str, str] = {}
    cores: dict[int, str] = {}
    for name, impl in REGISTRY.items():
        why = None
        if backend != "cpu" and name not in ACCELERATOR_CANDIDATES:
            why = f"not raced on {backend} (there: {', '.join(ACCELERATOR_CANDIDATES)})"
        elif backend in impl.interpreted_on:
            why = f"runs in an interpreter on {backend}"
        elif name == "manual":
            why = "the book's definition: a reference, not a contender"
        elif isinstance(spec, ConvSpec):
            why = impl.refusal(name, spec)
            if why is None and name == "stencil" and not runs_stencil(spec):
                why = f"runs shift_add above {MAX_STENCIL_CHANNELS} input or output channels per group"
        elif id(impl.pool) in cores:
            why = f"pools with {cores[id(impl.pool)]}'s core"
        if why is None:
            chosen.append(name)
            cores.setdefault(id(impl.pool), name)
        else:
            left[name] = why
    if isinstance(spec, ConvSpec) and backend == "cpu" and rule_impl(backend, op, spec) == "auto":
        chosen.append("auto")  # the rule's own mix (a transposed call's phases), which no one impl is
    return chosen, left


def _arrays(op: str, spec: ConvSpec | PoolSpec) -> tuple[tuple[jax.Array, ...], jax.Array]:
    """Random operands of the call in its dtype, and a random output gradient (a constant one would let
    XLA simplify the backward pass)."""
    dtype = jnp.dtype(spec.dtype)
    keys = jax.random.split(jax.random.key(0), 3)
    if isinstance(spec, PoolSpec):
        x = jax.random.normal(keys[0], spec.x_shape, dtype)
        y = jax.eval_shape(lambda x: impls.pool("xla", x, spec), x)
        return (x,), jax.random.normal(keys[2], y.shape, dtype)
    x = jax.random.normal(keys[0], spec.x_shape, dtype)
    fan_in = max(1, spec.in_channels_per_group * spec.kernel[0] * spec.kernel[1])
    w = (jax.random.normal(keys[1], spec.w_shape, jnp.float32) / np.sqrt(fan_in)).astype(dtype)
    y = jax.eval_shape(lambda x, w: impls.conv("xla", x, w, None, spec), x, w)
    return (x, w), jax.random.normal(keys[2], y.shape, dtype)


def step(impl: str, op: str, spec: ConvSpec | PoolSpec, pass_: str,
         compiler_options: Mapping[str, str] | None = None) -> jax.stages.Wrapped:  # fmt: skip
    """The jitted call under ``impl``: ``f(*operands, g) -> y`` forward, ``(y, *gradients)`` with the
    backward pass. ``y`` is kept in the forward+backward step because a model's next layer needs it."""

    def forward(*operands: jax.Array) -> jax.Array:
        if isinstance(spec, PoolSpec):
            return impls.pool(impl, operands[0], spec)
        return impls.conv(impl, operands[0], operands[1], None, spec)

    def run(*args: jax.Array) -> Any:
        *operands, g = args
        if pass_ == "forward":
            return forward(*operands)
        y, pullback = jax.vjp(forward, *operands)
        return (y, *pullback(g))

    return jax.jit(run, compiler_options=dict(compiler_options or {}))


def _relative_error(got: Any, want: Any) -> float:
    worst = 0.0
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = float(np.abs(b64).max(initial=0.0)) or 1.0
        worst = max(worst, float(np.abs(a64 - b64).max(initial=0.0)) / scale)
    return worst


def measure(op: str, spec: ConvSpec | PoolSpec, pass_: str, *, rounds: int = 5, timer: Timer = wall_time,
            free_memory: Callable[[], int | None] = available_memory,
            compiler_options: Mapping[str, str] | None = None,
            backend: str | None = None) -> Measurement:  # fmt: skip
    """Times the candidates for one call on ``backend`` (default: JAX's default backend).

    Args:
      op: ``"conv"`` or ``"pool"``; ``spec`` its :class:`~jaxconv.spec.ConvSpec` or
        :class:`~jaxconv.spec.PoolSpec`.
      pass_: ``"forward"`` or ``"forward+backward"`` (output and gradients, as a training step runs it).
      rounds: interleaved timing rounds after the warm-up, >= 1; each candidate keeps its median.
      timer: ``timer(impl, run) -> seconds`` for one call of ``run`` (:func:`wall_time`).
      free_memory: bytes free now, or ``None`` (no limit).
      compiler_options: XLA options for every candidate's executable (default: XLA's, as a plain
        ``jax.jit`` of a model compiles).
    """
    if op not in ("conv", "pool") or not isinstance(spec, ConvSpec if op == "conv" else PoolSpec):
        raise TypeError(f"measure: op 'conv' takes a ConvSpec and 'pool' a PoolSpec, got {op!r} and "
                        f"{type(spec).__name__}")  # fmt: skip
    if pass_ not in ("forward", "forward+backward"):
        raise ValueError(f"measure: pass_ must be 'forward' or 'forward+backward', got {pass_!r}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"measure: rounds must be an int >= 1, got {rounds!r}")
    backend = backend or jax.default_backend()
    with rule_only():  # "auto" among the candidates is the rule's own pick, whatever a table says
        return _measure(op, spec, pass_, rounds, timer, free_memory, compiler_options, backend)


def _measure(op: str, spec: ConvSpec | PoolSpec, pass_: str, rounds: int, timer: Timer,
             free_memory: Callable[[], int | None], compiler_options: Mapping[str, str] | None,
             backend: str) -> Measurement:  # fmt: skip
    names, rejected = candidates(backend, op, spec)
    operands, g = _arrays(op, spec)
    order = ["xla", *(n for n in names if n != "xla")]
    lowered = {name: step(name, op, spec, pass_, compiler_options).lower(*operands, g) for name in order}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # XLA compiles off the GIL
        compiling = {name: pool.submit(low.compile) for name, low in lowered.items()}
    steps: dict[str, Callable[[], Any]] = {}
    warm: dict[str, float] = {}
    reference = None
    for name in order:
        compiled = compiling[name].result()
        why = too_big([compiled], free_memory())
        if why is not None:
            rejected[name] = why
            continue
        run = partial(compiled, *operands, g)
        out = jax.block_until_ready(run())
        if reference is None:
            reference = out  # xla's, the first
        else:
            error = _relative_error(out, reference)
            if not error <= TOLERANCE.get(spec.dtype, 1e-2):
                rejected[name] = f"differs from xla's result by {error:.1e} of its largest magnitude"
                continue
        warm[name] = timer(name, run)
        steps[name] = run
    if warm:
        fastest = min(warm.values())
        for name, seconds in list(warm.items()):
            if seconds > DROP_FACTOR * fastest:
                rejected[name] = f"over {DROP_FACTOR:g}x the fastest at warm-up"
                del steps[name]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for order in round_orders(list(steps), rounds):
        for name in order:
            times[name].append(timer(name, steps[name]))
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    return Measurement(seconds, rejected, rule_pick(backend, op, spec))
