"""``impl="pallas"``: the convolution as a hand-written Pallas kernel, forward and backward.

The implicit-GEMM form of a direct convolution. Each program of the kernel computes one tile of output
positions (``bh`` output rows of one image, all their ``ow`` columns) times a block of ``bo`` output
channels: for each kernel tap and each block of ``bc`` input channels it slices the input window the
tap reads, ``(bh, ow, bc)``, straight from the padded image, multiplies it by the tap's ``(bc, bo)``
weights and accumulates in float32; the epilogue adds the bias and applies the activation. No patch
matrix is materialised. Stride and dilation become contiguous slices by splitting the padded input
into its ``sh * sw`` stride phases first (a reshape and transpose in XLA): tap ``(i, j)`` reads phase
``((i * dh) % sh, (j * dw) % sw)`` at offset ``((i * dh) // sh, (j * dw) // sw)``.

Gradients are kernels too (a ``jax.custom_vjp``): the input gradient is the forward kernel run on the
output gradient spread by the stride and padded (a transposed convolution: the kernel flipped, its
channels swapped), the weight gradient a second kernel, the correlation of the input with the output
gradient, one program per tap and channel block accumulating over the batch. The bias gradient is a
sum. Forward-mode differentiation (``jax.jvp``) is not defined for a ``custom_vjp``; use reverse mode.

Backends, chosen for the platform the computation is lowered for (``lax.platform_dependent``):
``tpu`` lowers through Mosaic, ``cuda`` and ``rocm`` through the Triton backend of Pallas (its
blocks' sizes are powers of two, so the channels and tiles are padded up to them), ``cpu`` runs the
same kernels in Pallas's interpreter (``interpret=True``): correct, not fast. Groups run one kernel
per group. Pooling under ``impl="pallas"`` is shift_add's hand-written pooling, as banded and
winograd pool.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from jaxconv._checks import PadPairs, Pair, Precision, accumulation_dtype
from jaxconv.impls.common import CORE_STATIC, finish, to_nhwc, valid_output_hw
from jaxconv.impls.platform import per_platform
from jaxconv.spec import ConvSpec

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
}
# The platforms a program may be lowered for, and the kernel variant each one gets.
KERNEL_BACKENDS = {"cpu": "interpret", "cuda": "triton", "rocm": "triton", "tpu": "mosaic"}


class Tiles(NamedTuple):
    """How a layer is cut into kernel programs, and the padded sizes the blocks need."""

    bh: int  # output rows per program
    owp: int  # output columns per program (all of them, padded)
    cp: int  # input channels, padded
    bc: int  # input channels per dot
    op: int  # output channels, padded
    bo: int  # output channels per program


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def tiles_for(backend: str, *, oh: int, ow: int, c: int, o: int) -> Tiles:
    """The tiling of an ``(OH, OW)`` output with ``c`` input and ``o`` output channels on ``backend``
    (``"interpret"``, ``"mosaic"`` or ``"triton"``).

    Mosaic (TPU): a program's block ends in ``(columns, channels)``, which must be the whole axis or
    multiples of ``(8, 128)``; the columns are padded to a multiple of 8 so that the ``(rows, columns)``
    tile is one ``(rows * columns, C)`` matrix, output channels over 128 go in blocks of 128, and a
    program takes about 512 output positions (the MXU's rows). Triton (GPU): every block is a power of
    two and a dot's sides at least 16, a program about 128 positions by up to 64 channels.
    The interpreter takes the whole image and all channels in one program.

    Examples:
      >>> tiles_for("mosaic", oh=28, ow=28, c=1, o=6)
      Tiles(bh=16, owp=32, cp=1, bc=1, op=6, bo=6)
      >>> tiles_for("triton", oh=10, ow=10, c=6, o=16)
      Tiles(bh=8, owp=16, cp=16, bc=16, op=16, bo=16)
    """
    if backend == "interpret":
        return Tiles(bh=oh, owp=ow, cp=c, bc=c, op=o, bo=o)
    if backend == "mosaic":
        owp = _round_up(ow, 8)
        bh = max(1, min(oh, 512 // owp))
        op, bo = (o, o) if o <= 128 else (_round_up(o, 128), 128)
        bc = c if c <= 512 else 256
        return Tiles(bh=bh, owp=owp, cp=_round_up(c, bc), bc=bc, op=op, bo=bo)
    if backend == "triton":
        owp = _pow2(ow)
        # about 128 positions a program, and at least the 16 rows a dot needs
        bh = max(16 // owp if owp < 16 else 1, min(_pow2(oh), max(1, 128 // owp)))
        cp = max(16, _pow2(c))
        bc = min(cp, 32)
        op = max(16, _pow2(o))
        return Tiles(bh=bh, owp=owp, cp=cp, bc=bc, op=op, bo=min(op, 64))
    raise ValueError(
        f"tiles_for: backend must be one of {sorted(set(KERNEL_BACKENDS.values()))}, got {backend!r}"
    )


class Geometry(NamedTuple):
    """A valid convolution over an already padded NHWC input, and where each tap reads."""

    stride: Pair
    dilation: Pair
    kernel: Pair
    out_hw: Pair
    taps: tuple[tuple[int, int, int], ...]  # (phase, row offset, column offset) per tap, row-major


def geometry(padded_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Geometry:
    """Each tap's stride phase and offset in the phase-split input, and the output size."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    taps = tuple(
        (((i * dh) % sh) * sw + (j * dw) % sw, (i * dh) // sh, (j * dw) // sw)
        for i in range(kh)
        for j in range(kw)
    )
    return Geometry(stride, dilation, kernel, valid_output_hw(padded_hw, kernel, stride, dilation), taps)


def _phases(x: jax.Array, geo: Geometry, rows: int, cols: int, channels: int) -> jax.Array:
    """``(N, H, W, C)`` padded input to its stride phases ``(N, sh * sw, rows, cols, channels)``,
    zero-filled beyond the input (so every tile a program reads is in bounds)."""
    n, h, w, c = x.shape
    sh, sw = geo.stride
    x = jnp.pad(x, ((0, 0), (0, rows * sh - h), (0, cols * sw - w), (0, channels - c)))
    x = x.reshape(n, rows, sh, cols, sw, channels).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(n, sh * sw, rows, cols, channels)


def _phase_extent(geo: Geometry, padded_hw: Pair, out_rows: int, out_cols: int) -> Pair:
    """Rows and columns of each phase so that the taps' ``out_rows x out_cols`` tiles fit."""
    rows = max(-(-padded_hw[0] // geo.stride[0]), out_rows + max(t[1] for t in geo.taps))
    cols = max(-(-padded_hw[1] // geo.stride[1]), out_cols + max(t[2] for t in geo.taps))
    return rows, cols


def _tiled_input(backend: str, x: jax.Array, geo: Geometry, o: int) -> tuple[Tiles, int, jax.Array]:
    """The tiling of ``geo``'s output with ``o`` channels on ``backend``, the output rows padded to whole
    row tiles, and the padded NHWC ``x`` split into stride phases big enough for every tile's reads."""
    _, h, wd, c = x.shape
    oh, ow = geo.out_hw
    tl = tiles_for(backend, oh=oh, ow=ow, c=c, o=o)
    ohp = _round_up(oh, tl.bh)
    rows, cols = _phase_extent(geo, (h, wd), ohp, tl.owp)
    if backend == "triton":  # every block a power of two
        rows, cols = _pow2(rows), _pow2(cols)
    return tl, ohp, _phases(x, geo, rows, cols, tl.cp)


def _compiler_params(backend: str, semantics: tuple[Any, ...], interpret: bool) -> dict:
    if interpret or backend == "interpret":
        return {"interpret": True}
    if backend == "mosaic":
        from jax.experimental.pallas import tpu as pltpu

        return {"compiler_params": pltpu.CompilerParams(dimension_semantics=semantics)}
    if backend == "triton":
        from jax.experimental.pallas import triton as pltriton

        return {"compiler_params": pltriton.CompilerParams(num_warps=4, num_stages=2)}
    raise ValueError(f"pallas: unknown kernel backend {backend!r}")


def _forward_kernel(x_ref, w_ref, b_ref, o_ref, *, taps, bh, owp, bc, activation, precision):  # noqa: ANN001
    """One program: ``bh`` output rows of one image times ``bo`` output channels."""
    row0 = pl.program_id(1) * bh
    acc = jnp.zeros((bh * owp, o_ref.shape[-1]), o_ref.dtype)  # float32, or float64 under x64
    for t, (phase, r0, c0) in enumerate(taps):
        for c_start in range(0, x_ref.shape[-1], bc):
            window = x_ref[0, phase, pl.ds(row0 + r0, bh), pl.ds(c0, owp), pl.ds(c_start, bc)]
            weights = w_ref[t, pl.ds(c_start, bc), :]
            acc += jnp.dot(
                window.reshape(bh * owp, bc), weights, preferred_element_type=o_ref.dtype, precision=precision
            )
    y = acc + b_ref[...]
    if activation is not None:
        y = ACTIVATIONS[activation](y)
    o_ref[0] = y.reshape(bh, owp, o_ref.shape[-1])


def _forward(
    backend: str, x: jax.Array, w: jax.Array, b: jax.Array, geo: Geometry, activation: str | None,
    precision: Precision, interpret: bool = False,
) -> jax.Array:  # fmt: skip
    """The forward kernel on a padded NHWC ``x`` and an HWIO ``w``: ``(N, OH, OW, O)`` in ``x``'s dtype."""
    n, _, _, c = x.shape
    kh, kw, _, o = w.shape
    oh, ow = geo.out_hw
    tl, ohp, xq = _tiled_input(backend, x, geo, o)
    wq = jnp.pad(w.reshape(kh * kw, c, o), ((0, 0), (0, tl.cp - c), (0, tl.op - o)))
    bq = jnp.pad(b.astype(x.dtype), (0, tl.op - o)).reshape(1, tl.op)
    kernel = partial(
        _forward_kernel,
        taps=geo.taps,
        bh=tl.bh,
        owp=tl.owp,
        bc=tl.bc,
        activation=activation,
        precision=precision,
    )
    y = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((n, ohp, tl.owp, tl.op), x.dtype),
        grid=(n, ohp // tl.bh, tl.op // tl.bo),
        in_specs=[
            pl.BlockSpec((1, *xq.shape[1:]), lambda i, r, k: (i, 0, 0, 0, 0)),
            pl.BlockSpec((kh * kw, tl.cp, tl.bo), lambda i, r, k: (0, 0, k)),
            pl.BlockSpec((1, tl.bo), lambda i, r, k: (0, k)),
        ],
        out_specs=pl.BlockSpec((1, tl.bh, tl.owp, tl.bo), lambda i, r, k: (i, r, 0, k)),
        name="jaxconv_conv_forward",
        **_compiler_params(backend, ("parallel", "parallel", "parallel"), interpret),
    )(xq, wq, bq)
    return y[:, :oh, :ow, :o]


def _div(a: jax.Array, b: int) -> jax.Array:
    """``a // b`` for non-negative ints as C division: jnp's ``//`` adds a sign fix-up that neither
    Mosaic nor Triton lowers for scalars. ``b`` takes ``a``'s dtype (int32 also under x64)."""
    return lax.div(a, jnp.asarray(b, a.dtype))


def _rem(a: jax.Array, b: int) -> jax.Array:
    """``a % b`` for non-negative ints, as :func:`_div`."""
    return lax.rem(a, jnp.asarray(b, a.dtype))


def _wgrad_kernel(x_ref, dy_ref, dw_ref, *, kw, geo, bh, owp, row_tiles, batch_per_program, precision):  # noqa: ANN001
    """One program: the weight gradient of one tap, one input-channel block, one output-channel block,
    accumulated over ``batch_per_program`` images (and, on Mosaic, over the grid's last axis)."""
    t = pl.program_id(0)
    i, j = _div(t, kw), _rem(t, kw)
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    phase = _rem(i * dh, sh) * sw + _rem(j * dw, sw)
    r0, c0 = _div(i * dh, sh), _div(j * dw, sw)

    @pl.when(pl.program_id(3) == 0)
    def _init() -> None:
        dw_ref[...] = jnp.zeros(dw_ref.shape, dw_ref.dtype)

    def step(k: jax.Array, acc: jax.Array) -> jax.Array:
        image, row0 = _div(k, row_tiles), _rem(k, row_tiles) * bh
        window = x_ref[image, phase, pl.ds(row0 + r0, bh), pl.ds(c0, owp), :]
        grads = dy_ref[image, pl.ds(row0, bh), :, :]
        window = window.reshape(bh * owp, window.shape[-1])
        return acc + jnp.dot(
            window.T,
            grads.reshape(bh * owp, grads.shape[-1]),
            preferred_element_type=dw_ref.dtype,
            precision=precision,
        )

    steps = jnp.int32(batch_per_program * row_tiles)  # int32 indices, like program_id, also under x64
    acc = lax.fori_loop(jnp.int32(0), steps, step, jnp.zeros(dw_ref.shape[1:], dw_ref.dtype))
    dw_ref[0] += acc


def _weight_grad(
    backend: str, x: jax.Array, dy: jax.Array, geo: Geometry, precision: Precision, interpret: bool = False
) -> jax.Array:
    """``dw[i, j, c, o] = sum over n, oh, ow of x[n, oh*sh + i*dh, ow*sw + j*dw, c] * dy[n, oh, ow, o]``,
    as a kernel: ``x`` the padded NHWC input, ``dy`` ``(N, OH, OW, O)``; returns HWIO in ``x``'s dtype."""
    n, _, _, c = x.shape
    _, oh, ow, o = dy.shape
    kh, kw = geo.kernel
    tl, ohp, xq = _tiled_input(backend, x, geo, o)
    dyq = jnp.pad(dy, ((0, 0), (0, ohp - oh), (0, tl.owp - ow), (0, tl.op - o)))
    # Mosaic accumulates over the batch along the grid (one image's blocks in VMEM at a time);
    # Triton's programs cannot share an output block, so each loops over the whole batch.
    per_program = 1 if backend == "mosaic" else n
    kernel = partial(
        _wgrad_kernel, kw=kw, geo=geo, bh=tl.bh, owp=tl.owp, row_tiles=ohp // tl.bh,
        batch_per_program=per_program, precision=precision,
    )  # fmt: skip
    dw = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((kh * kw, tl.cp, tl.op), x.dtype),
        grid=(kh * kw, tl.cp // tl.bc, tl.op // tl.bo, n // per_program),
        in_specs=[
            pl.BlockSpec((per_program, *xq.shape[1:4], tl.bc), lambda t, ci, k, m: (m, 0, 0, 0, ci)),
            pl.BlockSpec((per_program, ohp, tl.owp, tl.bo), lambda t, ci, k, m: (m, 0, 0, k)),
        ],
        out_specs=pl.BlockSpec((1, tl.bc, tl.bo), lambda t, ci, k, m: (t, ci, k)),
        name="jaxconv_conv_weight_grad",
        **_compiler_params(backend, ("parallel", "parallel", "parallel", "arbitrary"), interpret),
    )(xq, dyq)
    return dw[:, :c, :o].reshape(kh, kw, c, o)


def _input_grad(
    backend: str, dy: jax.Array, w: jax.Array, geo: Geometry, padded_hw: Pair, precision: Precision,
    interpret: bool = False,
) -> jax.Array:  # fmt: skip
    """The gradient with respect to the padded input, ``(N, H, W, C)``: the forward kernel on ``dy``
    spread by the stride and padded by the dilated kernel's extent, with the kernel flipped and its
    channels swapped (the transposed convolution)."""
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    oh, ow = geo.out_hw
    extent = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    rest = (padded_hw[0] - (oh - 1) * sh - extent[0], padded_hw[1] - (ow - 1) * sw - extent[1])
    rows = (extent[0] - 1, extent[0] - 1 + rest[0], sh - 1)  # (low, high, interior): spread, then padded
    cols = (extent[1] - 1, extent[1] - 1 + rest[1], sw - 1)
    spread = lax.pad(dy, jnp.zeros((), dy.dtype), ((0, 0, 0), rows, cols, (0, 0, 0)))
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)
    inner = geometry((spread.shape[1], spread.shape[2]), geo.kernel, (1, 1), geo.dilation)
    bias = jnp.zeros(flipped.shape[-1], dy.dtype)
    return _forward(backend, spread, flipped, bias, inner, None, precision, interpret)


def _on_platform(
    tiling: str | None, run: Callable[..., Callable[..., jax.Array]], *args: jax.Array
) -> jax.Array:
    """``run(backend, interpret)(*args)``: the kernel variant of the platform the computation is lowered
    for (:func:`jaxconv.impls.platform.per_platform`), or, with ``tiling``, that backend's tiles in the
    interpreter wherever it runs."""
    if tiling is not None:
        return run(tiling, True)(*args)
    return per_platform(
        {platform: run(backend, backend == "interpret") for platform, backend in KERNEL_BACKENDS.items()},
        *args,
    )


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _conv(
    x: jax.Array, w: jax.Array, b: jax.Array, geo: Geometry, activation: str | None, precision: Precision,
    tiling: str | None,
) -> jax.Array:  # fmt: skip
    def run(backend: str, interpret: bool) -> Callable[..., jax.Array]:
        return partial(
            _forward, backend, geo=geo, activation=activation, precision=precision, interpret=interpret
        )

    return _on_platform(tiling, run, x, w, b)


def _conv_fwd(x, w, b, geo, activation, precision, tiling):  # noqa: ANN001, ANN202
    y = _conv(x, w, b, geo, activation, precision, tiling)
    return y, (x, w, y if activation is not None else None)


def _conv_bwd(geo, activation, precision, tiling, residuals, dy):  # noqa: ANN001, ANN202
    x, w, y = residuals
    if activation == "relu":
        dy = jnp.where(y > 0, dy, 0.0)
    elif activation == "sigmoid":
        dy = dy * y * (1.0 - y)
    dy = dy.astype(x.dtype)
    padded_hw = x.shape[1:3]

    def input_grad(backend: str, interpret: bool) -> Callable[..., jax.Array]:
        return partial(
            _input_grad, backend, geo=geo, padded_hw=padded_hw, precision=precision, interpret=interpret
        )

    def weight_grad(backend: str, interpret: bool) -> Callable[..., jax.Array]:
        return partial(_weight_grad, backend, geo=geo, precision=precision, interpret=interpret)

    dx = _on_platform(tiling, input_grad, dy, w)
    dw = _on_platform(tiling, weight_grad, x, dy)
    return dx.astype(x.dtype), dw.astype(w.dtype), dy.sum(axis=(0, 1, 2))


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_pallas_nhwc(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, stride: Pair, pads: PadPairs, dilation: Pair,
    activation: str | None = None, precision: Precision = None, tiling: str | None = None,
) -> jax.Array:  # fmt: skip
    """The kernel on NHWC ``x (N, H, W, C)`` and HWIO ``w (kh, kw, C, O)``, one group, options
    canonical: ``(N, OH, OW, O)`` in the accumulation dtype (float32, or float64), the bias and
    ``activation`` (``None``, ``"relu"``, ``"sigmoid"``) applied in the kernel's epilogue.

    ``tiling`` (``"mosaic"``, ``"triton"``) runs that backend's tiles and blocks in Pallas's interpreter
    on whatever platform this runs, so that a CPU checks the index arithmetic a TPU or GPU runs;
    ``None`` (the default) runs the platform's own kernel.
    """
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(
            f"conv2d_pallas: activation must be None or one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    if tiling is not None and tiling not in ("mosaic", "triton", "interpret"):
        raise ValueError(
            f"conv2d_pallas: tiling must be None, 'mosaic', 'triton' or 'interpret', got {tiling!r}"
        )
    acc = accumulation_dtype(x.dtype)
    x = jnp.pad(x.astype(acc), ((0, 0), *pads, (0, 0)))
    geo = geometry((x.shape[1], x.shape[2]), (w.shape[0], w.shape[1]), stride, dilation)
    bias = jnp.zeros(w.shape[-1], acc) if b is None else b.astype(acc)
    return _conv(x, w.astype(acc), bias, geo, activation, precision, tiling)


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_pallas(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, spec: ConvSpec, precision: Precision = None
) -> jax.Array:
    """Batched convolution through the Pallas kernel. Groups run one kernel each."""
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    dtype = x.dtype
    x, w = to_nhwc(x, w, layout)
    cpg, opg = x.shape[-1] // groups, w.shape[-1] // groups
    parts = [
        conv2d_pallas_nhwc(
            x[..., g * cpg : (g + 1) * cpg],
            w[..., g * opg : (g + 1) * opg],
            None if b is None else b[g * opg : (g + 1) * opg],
            stride=stride,
            pads=pads,
            dilation=dilation,
            precision=precision,
        )  # fmt: skip
        for g in range(groups)
    ]
    y = parts[0] if groups == 1 else jnp.concatenate(parts, axis=-1)
    return finish(y, None, dtype, layout)  # the bias is in the kernel's epilogue
