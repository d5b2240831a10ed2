"""The manual-vs-XLA race: every convolution implementation timed on the same layer shapes.

``jaxconv bench`` (or :func:`run`) times each implementation forward and forward+backward (the output
and the gradients with respect to input and weight, as a training step needs them), median of
``repeats`` runs after compilation, with the implementations interleaved so that drift of a shared
machine hits all alike, each round in another order (:func:`round_orders`: each runs after every
other equally often, since what ran just before slows some); the book's manual impl, whose memory
churn slows whatever follows it, is timed alone afterwards.
A contestant whose compiled footprint (:func:`footprint`, XLA's own buffer assignment) would not fit
in the memory the backend has free (:func:`available_memory`) is skipped before its first call and
listed with the reason, rather than left to the kernel's OOM killer.
It reports GFLOP/s, the fraction of a float32 matmul's rate measured in the same run, compile time,
the error against XLA's NCHW result in float32 and bfloat16, and the speed-ups over XLA and PyTorch:
the ratio of the medians, and the median and middle half of their per-round values
(:func:`paired_speedups`). PyTorch joins when
importable.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.util
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import host_memory, xla_options
from jaxconv.auto import conv_impl
from jaxconv.conv import conv2d
from jaxconv.shapes import conv_output_shape


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One convolution layer: ``(batch, in_channels, H, W)`` through ``out_channels`` square kernels."""

    name: str
    batch: int
    in_channels: int
    out_channels: int
    size: int
    kernel: int
    padding: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        for field in ("batch", "in_channels", "out_channels", "size", "kernel", "stride"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"ConvShape: {field} must be an int >= 1, got {getattr(self, field)!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"ConvShape: padding must be an int >= 0, got {self.padding!r}")
        conv_output_shape((self.size, self.size), self.kernel, padding=self.padding, stride=self.stride)

    @classmethod
    def parse(cls, text: str) -> ConvShape:
        """``"N,C,O,H,K[,P[,S]]"``, e.g. ``"256,6,16,14,5"`` (LeNet's second layer)."""
        parts = text.split(",")
        if not 5 <= len(parts) <= 7 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"shape must be N,C,O,H,K[,P[,S]] with integers, got {text!r}")
        n, c, o, h, k, *rest = (int(p) for p in parts)
        return cls(text, n, c, o, h, k, *rest)

    @property
    def output_size(self) -> int:
        return conv_output_shape(
            (self.size, self.size), self.kernel, padding=self.padding, stride=self.stride
        )[0]

    @property
    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (the backward pass is twice this)."""
        return 2 * self.batch * self.out_channels * self.output_size**2 * self.in_channels * self.kernel**2

    def describe(self) -> str:
        return (
            f"{self.batch}, {self.in_channels}->{self.out_channels}, {self.size}², "
            f"k{self.kernel} p{self.padding} s{self.stride}"
        )


STANDARD_SHAPES = (
    ConvShape("lenet_conv1", 256, 1, 6, 28, 5, 2),
    ConvShape("lenet_conv2", 256, 6, 16, 14, 5),
    ConvShape("book_100", 8, 100, 100, 64, 5, 2),
    ConvShape("resnet_3x3", 32, 64, 64, 56, 3, 1),
    ConvShape("resnet_3x3_s2", 32, 64, 64, 56, 3, 1, 2),
    ConvShape("pointwise_1x1", 32, 256, 64, 56, 1),
)

# (label, impl, layout): the contestants. "auto" is timed as whatever it picks.
CANDIDATES = (
    ("xla NCHW", "xla", "NCHW"),
    ("xla NHWC", "xla", "NHWC"),
    ("manual", "manual", "NCHW"),
    ("im2col NHWC", "im2col", "NHWC"),
    ("shift_add NHWC", "shift_add", "NHWC"),
    ("banded NHWC", "banded", "NHWC"),
    ("winograd NHWC", "winograd", "NHWC"),
    ("auto NCHW", "auto", "NCHW"),
)
TORCH = "torch NCHW"


def round_orders(labels: Sequence[str], rounds: int) -> list[list[str]]:
    """The order in which each of ``rounds`` timing rounds runs ``labels``: rows of a Williams design.

    What ran just before a contestant changes its time. On the 2-core CPU of docs/performance.md a JAX
    call made right after a PyTorch call took 14.2 ms instead of 8.9 ms (LeNet conv2, forward+backward; 20 ms
    of sleep in between removed the difference). Rotating one order (A B C, B C A, ...) keeps every
    contestant behind the same one in every round but the first; a Williams design (a Latin square
    balanced for carryover) puts each contestant behind every other equally often: once per ``n``
    rounds for an even number ``n`` of labels, twice per ``2 n`` for an odd one. Each contestant also
    runs at each position equally often. Rounds beyond a full design repeat it from the start.

    Args:
      labels: the contestants, distinct.
      rounds: how many rounds, >= 0.

    Returns:
      ``rounds`` lists, each a permutation of ``labels``.

    Examples:
      >>> round_orders("ABCD", 4)
      [['A', 'B', 'D', 'C'], ['B', 'C', 'A', 'D'], ['C', 'D', 'B', 'A'], ['D', 'A', 'C', 'B']]
    """
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"round_orders: labels must be distinct, got {labels}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
        raise ValueError(f"round_orders: rounds must be an int >= 0, got {rounds!r}")
    n = len(labels)
    if n == 0:
        return [[] for _ in range(rounds)]
    first, low, high = [0], 1, n - 1  # 0, 1, n-1, 2, n-2, ...: successive differences all distinct
    while low <= high:
        first.append(low)
        low += 1
        if low <= high:
            first.append(high)
            high -= 1
    square = [[(k + shift) % n for k in first] for shift in range(n)]
    if n % 2:  # an odd square needs its mirror image to balance who follows whom
        square += [row[::-1] for row in square]
    return [[labels[k] for k in square[r % len(square)]] for r in range(rounds)]


def paired_speedups(reference_seconds: Sequence[float], contestant_seconds: Sequence[float]) -> dict:
    """How much faster a contestant ran than a reference timed in the same rounds, round by round.

    Round ``r`` timed both, one shortly after the other, so ``reference_seconds[r] /
    contestant_seconds[r]`` sees the machine in one state; the ratio of the two medians can pair a
    fast spell of one with a slow spell of the other. On the shared 2-core VM of docs/performance.md the
    step time of one contestant moved 6.2-8.7 ms within a minute, so the spread of the per-round ratios is
    reported beside their median.

    Args:
      reference_seconds: the reference's time in each round, all > 0.
      contestant_seconds: the contestant's, the same number of rounds, all > 0.

    Returns:
      ``{"median", "q25", "q75", "min", "max"}`` of the per-round speed-ups (> 1: the contestant is
      faster); ``q25``-``q75`` is the middle half of the rounds (linear interpolation).

    Raises:
      ValueError: if the lengths differ, either is empty, or a time is not positive.

    Examples:
      >>> paired_speedups([2.0, 4.0, 3.0], [1.0, 1.0, 3.0])["median"]
      2.0
    """
    ref, con = np.asarray(reference_seconds, float), np.asarray(contestant_seconds, float)
    if ref.ndim != 1 or ref.shape != con.shape or ref.size == 0:
        raise ValueError(
            "paired_speedups: need the same number (>= 1) of rounds for both, "
            f"got {ref.shape} and {con.shape}"
        )
    if not (np.all(ref > 0) and np.all(con > 0)):
        raise ValueError("paired_speedups: every round's time must be > 0")
    ratios = ref / con
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75),
            "min": float(ratios.min()), "max": float(ratios.max())}  # fmt: skip


def _inputs(shape: ConvShape, layout: str, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    kx, kw = jax.random.split(jax.random.key(0))
    n, c, o, h, k = shape.batch, shape.in_channels, shape.out_channels, shape.size, shape.kernel
    x = jax.random.normal(kx, (n, c, h, h))
    w = jax.random.normal(kw, (o, c, k, k)) / np.sqrt(c * k * k)
    if layout == "NHWC":
        x, w = x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    return x.astype(dtype), w.astype(dtype)


def _cotangent(shape: ConvShape, layout: str, dtype: jnp.dtype) -> jax.Array:
    """A random output gradient: a constant one (``y.sum()``) would let XLA simplify the backward pass."""
    o, m = shape.out_channels, shape.output_size
    dims = (shape.batch, o, m, m) if layout == "NCHW" else (shape.batch, m, m, o)
    return jax.random.normal(jax.random.key(2), dims).astype(dtype)


def _jax_steps(
    shape: ConvShape, impl: str, layout: str, compiler_options: dict[str, str]
) -> tuple[jax.stages.Wrapped, jax.stages.Wrapped]:
    """Jitted ``forward(x, w)`` and ``forward_backward(x, w, g) -> (y, dx, dw)`` for one implementation,
    compiled with ``compiler_options``.

    ``y`` is returned because a training step needs it for the next layer: a convolution is linear in
    each argument, so its gradients alone do not need the forward pass and XLA would drop it, timing
    two passes against PyTorch's three.
    """

    def forward(x: jax.Array, w: jax.Array) -> jax.Array:
        return conv2d(x, w, stride=shape.stride, padding=shape.padding, layout=layout, impl=impl)

    def forward_backward(x: jax.Array, w: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        y, pullback = jax.vjp(forward, x, w)
        return (y, *pullback(g))

    return (
        jax.jit(forward, compiler_options=compiler_options),
        jax.jit(forward_backward, compiler_options=compiler_options),
    )


def _torch_steps(shape: ConvShape) -> tuple[Callable, Callable, tuple]:
    torch: Any = importlib.import_module("torch")  # the optional peer; not a dependency

    x = torch.randn(shape.batch, shape.in_channels, shape.size, shape.size)
    w = torch.randn(shape.out_channels, shape.in_channels, shape.kernel, shape.kernel)
    w /= np.sqrt(shape.in_channels * shape.kernel**2)
    g = torch.randn(shape.batch, shape.out_channels, shape.output_size, shape.output_size)
    conv = torch.nn.functional.conv2d

    def forward(x: Any, w: Any) -> Any:
        with torch.no_grad():
            return conv(x, w, stride=shape.stride, padding=shape.padding)

    def forward_backward(x: Any, w: Any) -> tuple:
        x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
        conv(x, w, stride=shape.stride, padding=shape.padding).backward(g)
        return x.grad, w.grad

    return forward, forward_backward, (x, w)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


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


# glibc's one heap, tuned to keep freed memory (jaxconv.host_memory), fragments under multi-gigabyte
# buffers: the book's manual impl on the 1x1 layer, 13.4 GB of temporaries by XLA's estimate, peaked
# at 24 GB of resident memory tuned and 14 GB as glibc came (2026-11-25). Budget twice the estimate.
TUNED_HEAP_GROWTH = 2.0


def footprint(compiled: jax.stages.Compiled) -> int | None:
    """Bytes one call of ``compiled`` holds at its peak by XLA's buffer assignment (arguments, outputs
    and temporaries); ``None`` where the backend does not say."""
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):
        return None
    if stats is None:
        return None
    return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes


def available_memory() -> int | None:
    """Bytes the first device (the one the bench runs on) can still hand out: on CPU the kernel's
    ``MemAvailable`` (Linux), elsewhere the device's limit less what it holds; ``None`` where neither
    is known."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    stats = device.memory_stats()
    if not stats or "bytes_limit" not in stats:
        return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)


def _too_big(compiled: Sequence[jax.stages.Compiled], budget: int | None) -> str | None:
    """Why these executables should not run within ``budget`` bytes, or ``None`` if they fit (or
    nothing is known)."""
    sizes = [size for size in map(footprint, compiled) if size is not None]
    if budget is None or not sizes:
        return None
    growth = TUNED_HEAP_GROWTH if host_memory.tuned() and jax.default_backend() == "cpu" else 1.0
    need = max(sizes) * growth
    if need <= budget:
        return None
    times = f" x {growth:g} for the tuned heap" if growth != 1.0 else ""
    return f"needs {max(sizes) / 1e9:.1f} GB by XLA's estimate{times}, {budget / 1e9:.1f} GB free"


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
        reason = _too_big([compiled, forward.lower(x, w).compile()], free_memory())
        if reason is not None:
            skipped.append({"shape": shape.name, "impl": label, "reason": reason})
            if reference is None:  # without the reference there is nothing to check the others against
                rest = [c[0] for c in candidates[1:]] + ([TORCH] if with_torch else [])
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
        forward, forward_backward, args = _torch_steps(shape)
        forward_backward(*args)
        rows[TORCH] = {"shape": shape.name, "layer": shape.describe(), "impl": TORCH, "runs": TORCH,
                       "forward": [], "forward_backward": []}  # fmt: skip
        calls[TORCH] = (forward, forward_backward, args)
    # The book's manual impl allocates gigabytes on the big shapes; whatever runs after it pays for the
    # allocator's page faults (10x on the 1x1 layer). So it is timed alone, after the interleaved rounds.
    rounds = round_orders([label for label in calls if label != "manual"], repeats)
    if "manual" in calls:
        rounds += [["manual"]] * repeats
    for order in rounds:  # drift of a shared machine, and each contestant's wake, hit all alike
        for label in order:
            forward, forward_backward, args = calls[label]
            for key, fn in (("forward", forward), ("forward_backward", forward_backward)):
                start = time.perf_counter()
                jax.block_until_ready(fn(*args))
                rows[label][key].append(time.perf_counter() - start)
    for label, row in rows.items():  # the rounds' spread, against peers timed in the same rounds
        for peer, key in (("xla NCHW", "speedup_vs_xla"), (TORCH, "speedup_vs_torch")):
            if peer in rows and "manual" not in (label, peer):  # manual runs alone, in rounds of its own
                spread = paired_speedups(rows[peer]["forward_backward"], row["forward_backward"])
                row[f"{key}_round_median"] = spread["median"]
                row[f"{key}_q25"], row[f"{key}_q75"] = spread["q25"], spread["q75"]
    for row in rows.values():
        for key, passes in (("forward", 1), ("forward_backward", 3)):
            row[f"{key}_ms"] = 1e3 * statistics.median(row.pop(key))
            row[f"{key}_gflops"] = passes * shape.flops / row[f"{key}_ms"] / 1e6
    return list(rows.values()), skipped


def _picked(shape: ConvShape, impl: str, layout: str) -> str:
    if impl != "auto":
        return impl
    return conv_impl(
        jax.default_backend(),
        x_shape=(shape.batch, shape.in_channels, shape.size, shape.size),
        out_channels=shape.out_channels,
        kernel=(shape.kernel, shape.kernel),
        groups=1,
        output_hw=(shape.output_size,) * 2,
        stride=(shape.stride,) * 2,
    )


def run(shapes: Sequence[ConvShape] = STANDARD_SHAPES, impls: Sequence[str] | None = None, repeats: int = 5,
        with_torch: bool | None = None, progress: Callable[[str], None] = print,
        free_memory: Callable[[], int | None] = available_memory, cpu_compiler_options: bool = True,
        ) -> dict:  # fmt: skip
    """Benchmarks ``shapes``; returns ``{"device", "matmul_gflops", "glibc_malloc_tuned",
    "compiler_options", "rows", "skipped"}`` (one row per shape x impl timed; ``skipped``:
    ``{"shape", "impl", "reason"}`` for those whose compiled footprint exceeded ``free_memory()``, see
    :func:`bench_shape`). Whether malloc is tuned is the caller's choice (:mod:`jaxconv.host_memory`).

    The JAX contestants are compiled with :func:`jaxconv.xla_options.compiler_options` (on CPU,
    YNNPACK takes the dots, each with the elementwise ops around it; jaxconv's training steps hand it
    each dot alone, which ran Winograd's layers 0.79-0.95x as fast), the same for every
    implementation; ``cpu_compiler_options=False`` compiles them with XLA's defaults, as a
    plain ``jax.jit`` of your own does. On the 2-core CPU of docs/performance.md's tables the options made
    the winograd and xla contestants' forward+backward up to 1.4x and 2.4x faster.

    ``impls`` filters the candidates by impl name (``"xla"``, ``"manual"``, ``"im2col"``,
    ``"shift_add"``, ``"banded"``, ``"winograd"``, ``"auto"``, ``"torch"``); xla NCHW always runs, as
    the reference.
    """
    wanted = set(impls) if impls is not None else None
    candidates = [c for c in CANDIDATES if wanted is None or c[1] in wanted or c[0] == "xla NCHW"]
    if with_torch is None:
        with_torch = torch_available() and (wanted is None or "torch" in wanted)
    options = xla_options.compiler_options() if cpu_compiler_options else {}
    peak = matmul_gflops()
    progress(f"{jax.devices()[0].device_kind}: float32 matmul {peak:.0f} GFLOP/s (its best run)")
    rows, skipped = [], []
    for shape in shapes:
        progress(f"{shape.name} ({shape.describe()}) ...")
        timed, left_out = bench_shape(shape, candidates, repeats, with_torch, free_memory, options)
        skipped += left_out
        rows += timed
        _ratios([r for r in rows if r["shape"] == shape.name])
    # A slow spell of a shared machine at the start would lower the yardstick: measured at both ends.
    peak = max(peak, matmul_gflops())
    for row in rows:
        row["peak_fraction"] = row["forward_backward_gflops"] / peak
    return {"device": str(jax.devices()[0]), "backend": jax.default_backend(), "matmul_gflops": peak,
            "repeats": repeats, "glibc_malloc_tuned": host_memory.tuned(), "compiler_options": options,
            "rows": rows, "skipped": skipped}  # fmt: skip


def _ratios(rows: list[dict]) -> None:
    """Speed-ups of each row over xla NCHW and over torch (>1: faster), forward+backward."""
    by_label = {r["impl"]: r for r in rows}
    for row in rows:
        for peer, key in (("xla NCHW", "speedup_vs_xla"), (TORCH, "speedup_vs_torch")):
            other = by_label.get(peer)
            row[key] = other["forward_backward_ms"] / row["forward_backward_ms"] if other else None


def _options_text(options: dict[str, str] | None) -> str:
    """How the JAX contestants were compiled, for the table's header (``None``: not recorded)."""
    if options is None:
        return "unrecorded options"
    if not options:
        return "XLA's default options"
    return "jaxconv's XLA options (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"


def _with_rounds(row: dict, key: str) -> str:
    """``"0.76 (0.70-0.80)"``: the median of a speed-up's per-round values and their middle half, where
    the rounds paired it; otherwise the ratio of the medians, ``"0.76"``.

    The ratio of the medians can fall outside the middle half of the rounds (LeNet's conv1 against
    PyTorch: 2.71 beside 3.33-5.25, PyTorch's times skewed by what ran before it), so the number
    printed before an interval is the per-round median, the interval's own centre.
    """
    value, center = row.get(key), row.get(f"{key}_round_median")
    low, high = row.get(f"{key}_q25"), row.get(f"{key}_q75")
    if center is not None and low is not None and high is not None:
        return f"{center:.2f} ({low:.2f}-{high:.2f})"
    return "" if value is None else f"{value:.2f}"


def format_table(result: dict) -> str:
    """A plain-text table: one line per shape x implementation."""
    head = (
        f"{'shape':<15} {'impl':<15} {'runs':<10} {'fwd ms':>8} {'fwd+bwd ms':>11} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'vs xla':>7} {'vs torch (rounds)':>17} {'compile s':>9} {'rel err':>8} "
        f"{'bf16 err':>8}"
    )
    lines = [
        f"device {result['device']}, matmul {result['matmul_gflops']:.0f} GFLOP/s (its best), median of "
        f"{result['repeats']}, forward+backward = output and grads wrt input and weight, glibc malloc "
        f"{'tuned' if result.get('glibc_malloc_tuned') else 'as it came'} (jaxconv.host_memory), "
        f"JAX contestants compiled with {_options_text(result.get('compiler_options'))}; "
        f"vs xla: the ratio of the medians; vs torch: the per-round ratios' median (their middle half)",
        head,
    ]

    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    for r in result["rows"]:
        lines.append(
            f"{r['shape']:<15} {r['impl']:<15} {r['runs']:<10} {r['forward_ms']:>8.1f} "
            f"{r['forward_backward_ms']:>11.1f} {r['forward_backward_gflops']:>8.1f} "
            f"{100 * r['peak_fraction']:>6.1f}% {num(r['speedup_vs_xla'], '.2f'):>7} "
            f"{_with_rounds(r, 'speedup_vs_torch'):>17} {num(r.get('compile_s'), '.2f'):>9} "
            f"{num(r.get('max_rel_err_f32'), '.0e'):>8} {num(r.get('max_rel_err_bf16'), '.0e'):>8}"
        )
    lines += [f"{r['shape']:<15} {r['impl']:<15} skipped: {r['reason']}" for r in result.get("skipped", [])]
    return "\n".join(lines)


def write(result: dict, out: str | Path) -> list[Path]:
    """Writes ``bench.json``, ``bench.csv`` and ``bench.png`` (fwd+bwd ms per shape) under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.csv", out / "bench.png"]
    paths[0].write_text(json.dumps(result, indent=2))
    first = ["shape", "impl", "runs", "layer"]
    fields = first + sorted({k for r in result["rows"] for k in r} - set(first))
    with paths[1].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result["rows"])
    skipped = result.get("skipped", [])
    shapes = list(dict.fromkeys([r["shape"] for r in result["rows"]] + [r["shape"] for r in skipped]))
    labels = list(dict.fromkeys(r["impl"] for r in result["rows"]))
    columns = min(3, len(shapes))
    grid_rows = -(-len(shapes) // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(4.2 * columns, 3.0 * grid_rows), squeeze=False)
    colours = {"auto": "tab:orange", "torch": "tab:gray", "manual": "tab:red"}
    for ax, shape in zip(axes.flat, shapes, strict=False):
        rows = {r["impl"]: r for r in result["rows"] if r["shape"] == shape}
        left_out = [r["impl"] for r in skipped if r["shape"] == shape]
        if left_out:  # a missing bar must not read as a contestant that was never entered
            note = "skipped (memory): " + ", ".join(left_out)
            ax.text(
                0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="tab:red"
            )
        if not rows:
            ax.set_title(f"{shape}: nothing fitted in memory", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        present = [label for label in labels if label in rows]
        times = [rows[label]["forward_backward_ms"] for label in present]
        bars = ax.barh(present, times, color=[colours.get(label.split()[0], "tab:blue") for label in present])
        ax.bar_label(
            bars, labels=[f"{t:,.0f}" if t >= 100 else f"{t:.1f}" for t in times], fontsize=6, padding=2
        )
        ax.set_xscale("log")  # the book's manual impl is 10x slower on wide layers; keep the rest readable
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # the bars carry their values
        ax.margins(x=0.25)
        ax.invert_yaxis()
        ax.set_title(f"{shape}: {rows[present[0]]['layer']}", fontsize=8)
        ax.set_xlabel("forward+backward ms, log scale (lower is faster)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shapes) :]:
        ax.axis("off")
    fig.suptitle(f"jaxconv bench on {result['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    return paths
