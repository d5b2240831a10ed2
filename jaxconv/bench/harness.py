"""The manual-vs-XLA race: every convolution implementation timed on the same layer shapes.

``jaxconv bench`` (or :func:`run`) times each implementation forward and forward+backward (the output
and the gradients with respect to input and weight, as a training step needs them), median of
``repeats`` runs after compilation, with the implementations interleaved so that drift of a shared
machine hits all alike, each round in another order (:func:`jaxconv.timing.rounds.round_orders`: each runs
after every other equally often, since what ran just before slows some); the book's manual impl,
whose memory churn slows whatever follows it, is timed alone afterwards.
A contestant whose compiled footprint (XLA's own buffer assignment) would not fit in the memory the
backend has free is skipped before its first call and listed with the reason, rather than left to
the kernel's OOM killer (:mod:`jaxconv.timing.memory_budget`).
It reports GFLOP/s, the fraction of a float32 matmul's rate measured in the same run, compile time,
the error against XLA's NCHW result in float32 and bfloat16, and the speed-ups over XLA and PyTorch:
the ratio of the medians, and the median and middle half of their per-round values
(:func:`jaxconv.timing.rounds.paired_speedups`). PyTorch joins when importable. Tables and charts:
:mod:`jaxconv.bench.report`.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import host_memory, xla_options
from jaxconv.bench import torch_peer
from jaxconv.bench.layers import STANDARD_SHAPES, ConvShape
from jaxconv.conv import conv2d
from jaxconv.impls import INTERPRETED_ON_CPU, REGISTRY
from jaxconv.impls.auto import describe_pick
from jaxconv.timing.memory_budget import available_memory, too_big
from jaxconv.timing.rounds import PAUSE_SECONDS, paired_speedups, round_orders
from jaxconv.transpose import conv_transpose2d
from jaxconv.tuning.tuner import Tuner, explain


def candidates() -> tuple[tuple[str, str, str], ...]:
    """``(label, impl, layout)`` of every contestant, read from the registry: xla also in NCHW, the
    reference, first; ``"auto"`` last, in both layouts, timed as whatever it picks."""
    return (
        ("xla NCHW", "xla", "NCHW"),
        *((impl.label, name, impl.bench_layout) for name, impl in REGISTRY.items()),
        ("auto NCHW", "auto", "NCHW"),
        ("auto NHWC", "auto", "NHWC"),  # the layout of Flax models, which plug jaxconv in
    )


def _timed_alone() -> set[str]:
    """Contestants whose memory churn slows whatever runs after them: timed alone, after the rounds."""
    return {impl.label for impl in REGISTRY.values() if impl.timed_alone}


TORCH = "torch NCHW"
TORCH_NHWC = "torch NHWC"  # PyTorch's channels_last memory format


def _inputs(shape: ConvShape, layout: str, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    kx, kw = jax.random.split(jax.random.key(0))
    n, c, h = shape.batch, shape.in_channels, shape.size
    x = jax.random.normal(kx, (n, c, h, h))
    w_shape = shape.weight_shape
    w = jax.random.normal(kw, w_shape) / np.sqrt(w_shape[1] * shape.kernel**2)
    if layout == "NHWC":
        x, w = x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    return x.astype(dtype), w.astype(dtype)


def _cotangent(shape: ConvShape, layout: str, dtype: jnp.dtype) -> jax.Array:
    """A random output gradient: a constant one (``y.sum()``) would let XLA simplify the backward pass."""
    o, m = shape.out_channels, shape.output_size
    dims = (shape.batch, o, m, m) if layout == "NCHW" else (shape.batch, m, m, o)
    return jax.random.normal(jax.random.key(2), dims).astype(dtype)


def _step_functions(shape: ConvShape, impl: str, layout: str) -> tuple[Callable, Callable]:
    """``forward(x, w)`` and ``forward_backward(x, w, g) -> (y, dx, dw)`` for one implementation, not jitted.

    ``y`` is returned because a training step needs it for the next layer: a convolution is linear in
    each argument, so its gradients alone do not need the forward pass and XLA would drop it, timing
    two passes against PyTorch's three.
    """

    def forward(x: jax.Array, w: jax.Array) -> jax.Array:
        options = dict(stride=shape.stride, padding=shape.padding, dilation=shape.dilation,
                       groups=shape.groups, layout=layout, impl=impl)  # fmt: skip
        if shape.transposed:
            return conv_transpose2d(x, w, output_padding=shape.output_padding, **options)  # type: ignore[arg-type]
        return conv2d(x, w, **options)  # type: ignore[arg-type]

    def forward_backward(x: jax.Array, w: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        y, pullback = jax.vjp(forward, x, w)
        return (y, *pullback(g))

    return forward, forward_backward


def _jax_steps(
    shape: ConvShape, impl: str, layout: str, compiler_options: dict[str, str]
) -> tuple[jax.stages.Wrapped, jax.stages.Wrapped]:
    """:func:`_step_functions`, jitted with ``compiler_options``."""
    forward, forward_backward = _step_functions(shape, impl, layout)
    return (
        jax.jit(forward, compiler_options=compiler_options),
        jax.jit(forward_backward, compiler_options=compiler_options),
    )


def _torch_steps(shape: ConvShape, channels_last: bool = False) -> tuple[Callable, Callable, tuple]:
    """PyTorch's conv2d (or conv_transpose2d) forward and forward+backward on JAX's device
    (:mod:`jaxconv.bench.torch_peer`), in NCHW or, with ``channels_last``, PyTorch's NHWC memory format
    (faster for depthwise layers on a CPU, where oneDNN prefers it)."""
    torch, where = torch_peer.torch(), torch_peer.device()
    x = torch.randn(shape.batch, shape.in_channels, shape.size, shape.size, device=where)
    w = torch.randn(*shape.weight_shape, device=where)
    w /= np.sqrt(shape.weight_shape[1] * shape.kernel**2)
    g = torch.randn(shape.batch, shape.out_channels, shape.output_size, shape.output_size, device=where)
    if channels_last:
        x, w, g = (a.contiguous(memory_format=torch.channels_last) for a in (x, w, g))
    options = dict(stride=shape.stride, padding=shape.padding, dilation=shape.dilation, groups=shape.groups)
    if shape.transposed:
        conv = functools.partial(torch.nn.functional.conv_transpose2d, output_padding=shape.output_padding,
                                 **options)  # fmt: skip
    else:
        conv = functools.partial(torch.nn.functional.conv2d, **options)

    def forward(x: Any, w: Any) -> Any:
        with torch.no_grad():
            y = conv(x, w)
        torch_peer.synchronize(where)
        return y

    def forward_backward(x: Any, w: Any) -> tuple:
        x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
        y = conv(x, w)
        y.backward(g)
        torch_peer.synchronize(where)
        return y, x.grad, w.grad

    return forward, forward_backward, (x, w)


def torch_available() -> bool:
    return torch_peer.available()


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The float32 matmul rate of this backend (GFLOP/s), the yardstick for the convs: the best of
    ``repeats`` timed runs, since the yardstick is what the machine can do (a median on a shared VM
    reads its slow spells)."""
    if size < 1 or repeats < 1:
        raise ValueError(f"matmul_gflops: size and repeats must be >= 1, got size={size}, repeats={repeats}")
    a = jax.random.normal(jax.random.key(1), (size, size))
    matmul = jax.jit(jnp.matmul)
    matmul(a, a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def _error(y: jax.Array, reference: np.ndarray, layout: str) -> tuple[float, float]:
    """Max absolute error and max error relative to the reference's largest magnitude."""
    y32 = np.asarray(y.astype(jnp.float32))
    if layout == "NHWC":
        y32 = y32.transpose(0, 3, 1, 2)
    ref = np.asarray(reference)
    err = float(np.abs(y32 - ref).max())
    return err, err / float(np.abs(ref).max())


def bench_shape(shape: ConvShape, candidates: Sequence[tuple[str, str, str]], repeats: int,
                with_torch: bool, free_memory: Callable[[], int | None] = available_memory,
                compiler_options: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """Times every candidate on one shape, interleaved; the JAX ones compiled with
    ``compiler_options`` (default: jaxconv's, :func:`jaxconv.xla_options.compiler_options`).

    Returns:
      ``(rows, skipped)``: one result row per candidate timed, and ``{"shape", "impl", "reason"}`` for
      each candidate whose compiled footprint does not fit in the bytes ``free_memory()`` reports
      just before it (``None``: no limit). The first candidate is the reference for the errors; if it
      does not fit, nothing runs.
    """
    if compiler_options is None:
        compiler_options = xla_options.compiler_options()
    rows: dict[str, dict] = {}
    skipped: list[dict] = []
    calls: dict[str, tuple[Callable, Callable, tuple]] = {}
    reference = None
    for label, impl, layout in candidates:
        x, w = _inputs(shape, layout, jnp.float32)
        forward, forward_backward = _jax_steps(shape, impl, layout, compiler_options)
        start = time.perf_counter()
        g = _cotangent(shape, layout, jnp.float32)
        compiled = forward_backward.lower(x, w, g).compile()
        compile_s = time.perf_counter() - start
        reason = too_big([compiled, forward.lower(x, w).compile()], free_memory())
        if reason is not None:
            skipped.append({"shape": shape.name, "impl": label, "reason": reason})
            if reference is None:  # without the reference there is nothing to check the others against
                rest = [c[0] for c in candidates[1:]] + ([TORCH, TORCH_NHWC] if with_torch else [])
                why = f"the reference, {label}, does not fit"
                skipped += [{"shape": shape.name, "impl": other, "reason": why} for other in rest]
                return [], skipped
            continue
        y = forward(x, w)
        if reference is None:  # the first candidate, xla NCHW, is the reference
            reference = np.asarray(y) if layout == "NCHW" else np.asarray(y).transpose(0, 3, 1, 2)
        abs32, rel32 = _error(y, reference, layout)
        xb, wb = _inputs(shape, layout, jnp.bfloat16)
        abs16, rel16 = _error(forward(xb, wb), reference, layout)
        jax.block_until_ready(forward_backward(x, w, g))
        picked = _picked(shape, impl, layout)
        rows[label] = {
            "shape": shape.name, "layer": shape.describe(), "impl": label, "runs": picked,
            "compile_s": compile_s, "max_abs_err_f32": abs32, "max_rel_err_f32": rel32,
            "max_abs_err_bf16": abs16, "max_rel_err_bf16": rel16, "forward": [], "forward_backward": [],
        }  # fmt: skip
        calls[label] = (forward, lambda x, w, fb=forward_backward, g=g: fb(x, w, g), (x, w))
    if with_torch:
        for label, channels_last in ((TORCH, False), (TORCH_NHWC, True)):
            forward, forward_backward, args = _torch_steps(shape, channels_last)
            forward_backward(*args)
            rows[label] = {"shape": shape.name, "layer": shape.describe(), "impl": label, "runs": label,
                           "forward": [], "forward_backward": []}  # fmt: skip
            calls[label] = (forward, forward_backward, args)
    # The book's manual impl allocates gigabytes on the big shapes; whatever runs after it pays for the
    # allocator's page faults. So such contestants are timed alone, after the interleaved rounds.
    alone = _timed_alone()
    rounds = round_orders([label for label in calls if label not in alone], repeats)
    rounds += [[label] for label in calls if label in alone for _ in range(repeats)]
    for order in rounds:  # drift of a shared machine, and each contestant's wake, hit all alike
        for label in order:
            time.sleep(PAUSE_SECONDS)  # no contestant starts while the last one's threads still spin
            forward, forward_backward, args = calls[label]
            for key, fn in (("forward", forward), ("forward_backward", forward_backward)):
                start = time.perf_counter()
                jax.block_until_ready(fn(*args))
                rows[label][key].append(time.perf_counter() - start)
    for label, row in rows.items():  # the rounds' spread, against peers timed in the same rounds
        for peer, key in (
            ("xla NCHW", "speedup_vs_xla"),
            (TORCH, "speedup_vs_torch"),
            (TORCH_NHWC, "speedup_vs_torch_nhwc"),
        ):
            if peer in rows and not {label, peer} & alone:  # those run in rounds of their own
                spread = paired_speedups(rows[peer]["forward_backward"], row["forward_backward"])
                row[f"{key}_round_median"] = spread["median"]
                row[f"{key}_q25"], row[f"{key}_q75"] = spread["q25"], spread["q75"]
    for row in rows.values():
        for key, passes in (("forward", 1), ("forward_backward", 3)):
            row[f"{key}_ms"] = 1e3 * statistics.median(row.pop(key))
            row[f"{key}_gflops"] = passes * shape.flops / row[f"{key}_ms"] / 1e6
    return list(rows.values()), skipped


def _picked(shape: ConvShape, impl: str, layout: str) -> str:
    """What a contestant runs: its impl, or ``auto``'s pick, the tuning table's with the rule's beside it."""
    if impl != "auto":
        return impl
    x, w = _inputs(shape, layout, jnp.float32)
    rows = explain(_step_functions(shape, impl, layout)[1], x, w, _cotangent(shape, layout, jnp.float32))
    tuned = [row for row in rows if row.source == "table"]
    if not tuned:
        return describe_pick(jax.default_backend(), shape.spec(layout))
    return f"{tuned[0].runs} (tuned; rule: {tuned[0].rule})"


def tune_shapes(shapes: Sequence[ConvShape], layouts: Sequence[str], compiler_options: dict[str, str],
                tuner: Tuner | None = None) -> list:  # fmt: skip
    """Tunes ``auto``'s forward+backward call of each shape in each layout into the active tuning table
    (``jaxconv bench --tune``), before the race compiles anything; returns the tuner's reports."""
    tuner = tuner or Tuner(compiler_options=compiler_options, progress=False)
    reports = []
    for shape in shapes:
        for layout in layouts:
            x, w = _inputs(shape, layout, jnp.float32)
            fb = _step_functions(shape, "auto", layout)[1]
            reports.append(tuner.tune(fb, x, w, _cotangent(shape, layout, jnp.float32)))
    return reports


def run(shapes: Sequence[ConvShape] = STANDARD_SHAPES, impls: Sequence[str] | None = None, repeats: int = 5,
        with_torch: bool | None = None, progress: Callable[[str], None] = print,
        free_memory: Callable[[], int | None] = available_memory, cpu_compiler_options: bool = True,
        tune: bool = False) -> dict:  # fmt: skip
    """Benchmarks ``shapes``; returns ``{"device", "matmul_gflops", "glibc_malloc_tuned",
    "compiler_options", "rows", "skipped", "not_timed"}`` (one row per shape x impl timed; ``skipped``:
    ``{"shape", "impl", "reason"}`` for those whose compiled footprint exceeded ``free_memory()``, see
    :func:`bench_shape`; ``not_timed``: ``{"impl", "reason"}`` for the Pallas kernel on a CPU, which
    runs there in Pallas's interpreter, unless ``impls`` names it). Whether malloc is tuned is the
    caller's choice (:mod:`jaxconv.host_memory`).

    The JAX contestants are compiled with :func:`jaxconv.xla_options.compiler_options` (on CPU,
    YNNPACK takes the dots, each with the elementwise ops around it), the same for every
    implementation; ``cpu_compiler_options=False`` compiles them with XLA's defaults, as a
    plain ``jax.jit`` of your own does (docs/performance.md compares the two).

    ``impls`` filters the candidates by impl name (any of :data:`jaxconv.IMPLS`, ``"auto"``,
    ``"torch"``); xla NCHW always runs, as the reference. ``auto`` runs what the tuning table says where
    it has the call, the rule's pick elsewhere; ``tune=True`` first tunes ``auto``'s calls of every shape
    into the table (:func:`tune_shapes`), so the race shows the tuned pick (its ``runs`` column names the
    rule's beside it).
    """
    wanted = set(impls) if impls is not None else None
    chosen = [c for c in candidates() if wanted is None or c[1] in wanted or c[0] == "xla NCHW"]
    interpreted = jax.default_backend() == "cpu" and wanted is None
    reason = "runs in Pallas's interpreter on CPU (correct, not fast); --impls pallas times it"
    not_timed = [{"impl": label, "reason": reason} for label, impl, _ in chosen
                 if interpreted and impl in INTERPRETED_ON_CPU]  # fmt: skip
    chosen = [c for c in chosen if not (interpreted and c[1] in INTERPRETED_ON_CPU)]
    if with_torch is None:
        with_torch = torch_available() and (wanted is None or "torch" in wanted)
    options = xla_options.compiler_options() if cpu_compiler_options else {}
    if tune:
        layouts = [layout for _, impl, layout in chosen if impl == "auto"]
        for report in tune_shapes(shapes, layouts, options):
            progress(str(report))
    peak = matmul_gflops()
    progress(f"{jax.devices()[0].device_kind}: float32 matmul {peak:.0f} GFLOP/s (its best run)")
    rows, skipped = [], []
    for shape in shapes:
        progress(f"{shape.name} ({shape.describe()}) ...")
        timed, left_out = bench_shape(shape, chosen, repeats, with_torch, free_memory, options)
        skipped += left_out
        rows += timed
        _ratios([r for r in rows if r["shape"] == shape.name])
    # A slow spell of a shared machine at the start would lower the yardstick: measured at both ends.
    peak = max(peak, matmul_gflops())
    for row in rows:
        row["peak_fraction"] = row["forward_backward_gflops"] / peak
    return {"device": str(jax.devices()[0]), "backend": jax.default_backend(), "matmul_gflops": peak,
            "repeats": repeats, "glibc_malloc_tuned": host_memory.tuned(), "compiler_options": options,
            "rows": rows, "skipped": skipped, "not_timed": not_timed}  # fmt: skip


def _ratios(rows: list[dict]) -> None:
    """Speed-ups of each row over xla NCHW and over torch (>1: faster), forward+backward."""
    by_label = {r["impl"]: r for r in rows}
    for row in rows:
        for peer, key in (
            ("xla NCHW", "speedup_vs_xla"),
            (TORCH, "speedup_vs_torch"),
            (TORCH_NHWC, "speedup_vs_torch_nhwc"),
        ):
            other = by_label.get(peer)
            row[key] = other["forward_backward_ms"] / row["forward_backward_ms"] if other else None
