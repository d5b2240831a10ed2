"""Depthwise and grouped convolutions as stencils: no matmul, no dense work.

A grouped convolution with ``Cg`` input channels per group computes, at every output position,

    y[n, p, q, g, o] = sum over taps (i, j) and c < Cg of x[n, p*s + i*d, q*s + j*d, g, c] * w[i, j, c, g, o]

A depthwise layer (``Cg = 1``, MobileNet's 3x3, ConvNeXt's 7x7) is ``kh * kw`` shifted, per-channel
scaled copies of the input, summed: a stencil. Written as ``kh * kw * Cg`` broadcast multiply-adds of
tap slices (:func:`jaxconv.impls.taps.tap_slices`), XLA fuses the forward pass into one loop over the
output that reads the input from cache. A matmul per group (XLA's grouped convolution, or a batched
einsum) does ``Cg`` multiply-adds per call on tiny matrices; densifying the kernel (``banded``,
``winograd``) does ``G`` times the work.

Every term is a whole ``(N, OH, OW, O)`` array times a kernel vector over the output channels, which lie
on the minor axis that XLA's CPU loops vectorize along: with ``Cg > 1`` the input is first gathered into
``Cg`` arrays of the output's width (:func:`_gathered`), array ``i`` holding each output channel's
``i``-th input channel.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) raises JAX's custom-VJP ``TypeError``, as
:mod:`jaxconv.impls.pallas` does: a custom JVP whose weight tangent runs a loop over the images, which
JAX then transposes, computed the same gradients several times slower (docs/performance.md).

The input gradient is the transposed convolution, itself a stencil (:func:`_input_gradient`); with few
terms autodiff's form, the slices' transposes summed in one fused loop, runs as fast or faster
(:data:`MAX_AUTODIFF_TERMS`).

The weight gradient is ``kh * kw * Cg`` reductions of ``x * dy`` over the batch and the image. Left to
autodiff, XLA's CPU backend hands each to a library reduction that takes a contiguous operand, so every
tap's slice of the input is first copied out of it. Here (a custom VJP) a loop over blocks of
the images' rows sums each block's products into a ``(kh * kw * Cg, OW, O)`` accumulator, fused, reading
the block from cache.

With more input or output channels per group than ``MAX_STENCIL_CHANNELS`` (:func:`runs_stencil`) the
core runs ``shift_add``'s per-tap products instead: the stencil unrolls ``kh * kw * Cg`` terms per
output, which for a dense layer of many channels takes XLA minutes to compile.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import Precision
from jaxconv.impls.common import CORE_STATIC, finish, to_nhwc
from jaxconv.impls.taps import conv2d_shift_add, tap_slices
from jaxconv.spec import ConvSpec

# Up to this many input channels per group the stencil ran faster than shift_add's products per tap (4
# per group, a ResNeXt layer); more were not measured (docs/performance.md, "Depthwise, grouped,
# dilated and transposed layers").
MAX_STENCIL_CHANNELS = 4
# A stencil of at most this many terms per output (``kh * kw * Cg``: a depthwise 3x3) runs its input
# gradient by autodiff (the slices' transposes, summed); with more terms (a 4x4 or 7x7 depthwise, a 3x3
# with 4 channels per group) the explicit transposed stencil ran faster (docs/performance.md, "Depthwise,
# grouped, dilated and transposed layers").
MAX_AUTODIFF_TERMS = 9
# The weight gradient's loop takes blocks of output rows that fill about this many bytes of ``dy`` and as
# many again per gathered input: the three depthwise layers measured ran fastest with 28 of their 56
# output rows (1.2-1.8 MiB; 7 or 8, 14 and 56 were slower), the grouped one with 7 rows (1 MiB), where
# this rule gives it 14, 10-20% slower (the same section).
WEIGHT_GRADIENT_BLOCK_BYTES = 2**21


def runs_stencil(spec: ConvSpec) -> bool:
    """Whether the ``stencil`` core runs ``spec`` as a stencil (else it runs ``shift_add``): at most
    ``MAX_STENCIL_CHANNELS`` input and output channels per group.

    Examples:
      >>> depthwise = ConvSpec(batch=32, in_channels=144, out_channels=144, input_hw=(56, 56), kernel=(3, 3),
      ...                      groups=144)
      >>> runs_stencil(depthwise), runs_stencil(depthwise.replace(in_channels=3, out_channels=64, groups=1))
      (True, False)
    """
    return max(spec.in_channels_per_group, spec.out_channels // spec.groups) <= MAX_STENCIL_CHANNELS


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_stencil(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, spec: ConvSpec, precision: Precision = None
) -> jax.Array:
    """Batched grouped convolution as a stencil of broadcast multiply-adds; options canonical.

    ``x (N, C, H, W)`` / ``w (O, C/G, kh, kw)`` in NCHW, ``(N, H, W, C)`` / ``(kh, kw, C/G, O)`` in NHWC
    -> ``y`` in the layout. Products are exact elementwise ones, so ``precision`` has nothing to choose.
    """
    if not runs_stencil(spec):
        return conv2d_shift_add(x, w, b, spec=spec, precision=precision)
    dtype = x.dtype
    x, w = to_nhwc(x, w, spec.layout)
    y: jax.Array = _stencil(x, w, spec)  # type: ignore[assignment]  # custom_vjp loses the type
    return finish(y, b, dtype, spec.layout)


def _gathered(a: jax.Array, spec: ConvSpec) -> list[jax.Array]:
    """``a (..., C)`` -> ``Cg`` arrays ``(..., O)``: array ``i`` holds, in output channel ``o``'s place, the
    input channel ``i`` of ``o``'s group (``(o // (O/G)) * Cg + i``). The stencil then multiplies
    whole arrays by kernel vectors ``w[ki, kj, i, :]``, every output channel on the minor axis that XLA's
    CPU loops vectorize along. A depthwise layer's (``Cg = O/G = 1``) is ``a`` itself."""
    groups, cpg = spec.groups, spec.in_channels_per_group
    opg = spec.out_channels // groups
    if cpg == 1 and opg == 1:
        return [a]
    a = a.reshape(*a.shape[:-1], groups, cpg)
    return [jnp.repeat(a[..., i], opg, axis=-1) for i in range(cpg)]


def _pad_config(spec: ConvSpec) -> list[tuple[int, int, int]]:
    """``lax.pad``'s config for an ``(N, H, W, C)`` input padded by ``spec.pads`` (negative pads crop)."""
    return [(0, 0, 0), *((lo, hi, 0) for lo, hi in spec.pads), (0, 0, 0)]


def _terms(spec: ConvSpec) -> int:
    """The stencil's multiply-adds per output element: ``kh * kw * Cg``."""
    return math.prod(spec.kernel) * spec.in_channels_per_group


def _forward(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    """``x (N, H, W, C)``, ``w (kh, kw, Cg, O)`` -> ``(N, OH, OW, O)``: the sum over taps and ``i < Cg`` of
    the tap's slice of the ``i``-th gathered input (:func:`_gathered`) times ``w[ki, kj, i, :]``. The
    padding is fused into the taps' loop, not materialised (negative pads crop)."""
    padded = lax.pad(x, jnp.zeros((), x.dtype), _pad_config(spec))
    kw = spec.kernel[1]
    y = None
    for i, part in enumerate(_gathered(padded, spec)):
        for t, view in enumerate(tap_slices(part, spec.kernel, spec.stride, spec.dilation)):
            term = view * w[t // kw, t % kw, i][None, None, None, :]
            y = term if y is None else y + term
    assert y is not None
    return y


def _input_gradient(dy: jax.Array, w: jax.Array, spec: ConvSpec, input_hw: tuple[int, int]) -> jax.Array:
    """``dL/dx (N, H, W, C)``, ``input_hw = (H, W)``, from ``dy (N, OH, OW, O)``: the transposed
    convolution, itself a stencil.

    ``dy`` spread by the stride (``s - 1`` zeros between neighbours) and padded so that every input
    position sees the taps that reached it, correlated with the flipped kernel whose roles of ``Cg`` and
    ``O/G`` are swapped; with dilation ``d`` and stride 1. Autodiff's form (the slices' transposes,
    summed) gives the same numbers; see :data:`MAX_AUTODIFF_TERMS` for which runs where.
    """
    groups, (kh, kw), cpg = spec.groups, spec.kernel, spec.in_channels_per_group
    opg = spec.out_channels // groups
    flipped = w[::-1, ::-1].reshape(kh, kw, cpg, groups, opg).transpose(0, 1, 4, 3, 2)
    flipped = flipped.reshape(kh, kw, opg, spec.in_channels)
    config = [(0, 0, 0)]
    for (top, _), s, extent, size, out in zip(
        spec.pads, spec.stride, spec.kernel_extent, input_hw, dy.shape[1:3], strict=True
    ):
        config.append((extent - 1 - top, size - 1 - (out - 1) * s + top, s - 1))
    config.append((0, 0, 0))
    spread = lax.pad(dy, jnp.zeros((), dy.dtype), config)
    transposed = ConvSpec(batch=spec.batch, in_channels=spec.out_channels, out_channels=spec.in_channels,
                          input_hw=(spread.shape[1], spread.shape[2]), kernel=spec.kernel,
                          dilation=spec.dilation, groups=groups, layout="NHWC", dtype=spec.dtype)  # fmt: skip
    return _forward(spread, flipped, transposed)


def _sum_rows(a: jax.Array) -> jax.Array:
    """``a`` summed over its first axis, by a reduction XLA's CPU backend keeps in its own loops.

    With XLA's default options a plain sum goes to a YNNPACK reduction, which takes a contiguous operand,
    so the product being summed is first written out in full; a reducer written ``u - (-v)`` (the same
    sum, exactly) is not matched as one, and XLA fuses the product into its reduction loop: a 7x7
    depthwise layer's weight gradient ran 4x faster so (docs/performance.md, "Depthwise, grouped, dilated
    and transposed layers"). A later XLA that sees through it runs the plain sum's speed again.
    """
    return lax.reduce(a, jnp.zeros((), a.dtype), lambda total, v: total - (-v), (0,))


def _weight_gradient(
    x: jax.Array, dy: jax.Array, spec: ConvSpec, block_bytes: int = WEIGHT_GRADIENT_BLOCK_BYTES
) -> jax.Array:
    """``dL/dw (kh, kw, Cg, O)`` from ``x (N, H, W, C)`` and ``dy (N, OH, OW, O)``: a loop over blocks of
    output rows (``block_bytes`` of ``dy`` and of each gathered input), each block's products per tap
    summed over its rows into a ``(kh * kw * Cg, OW, O)`` accumulator, fused, reading the block from cache
    (see the module's docstring)."""
    (kh, kw), (sh, _), (dh, _), cpg = spec.kernel, spec.stride, spec.dilation, spec.in_channels_per_group
    n, oh, ow, o = dy.shape
    if dy.size == 0:
        return jnp.zeros((kh, kw, cpg, o), x.dtype)

    def block_sums(x_block: jax.Array, dy_block: jax.Array) -> jax.Array:
        """``x_block (1, rows', W', C)`` padded, ``dy_block (rows, OW, O)`` -> ``(kh * kw * Cg, OW, O)``."""
        return jnp.stack([
            _sum_rows(view[0] * dy_block)
            for part in _gathered(x_block, spec)
            for view in tap_slices(part, spec.kernel, spec.stride, spec.dilation)
        ])  # fmt: skip

    row_bytes = (1 + cpg) * ow * o * dy.dtype.itemsize  # a row of dy and of each gathered input
    rows = max(1, min(oh, block_bytes // row_bytes))
    per_image = -(-oh // rows)
    rows = -(-oh // per_image)  # as many blocks, evened out, so that the last one rounds up least
    extra = per_image * rows - oh  # zero rows of dy (and the input rows they meet) round it up
    dy = jnp.pad(dy, ((0, 0), (0, extra), (0, 0), (0, 0)))
    pad_config = _pad_config(spec)
    pad_config[1] = (pad_config[1][0], pad_config[1][1] + extra * sh, 0)
    padded = lax.pad(x, jnp.zeros((), x.dtype), pad_config)
    span = (rows - 1) * sh + (kh - 1) * dh + 1  # the input rows one block of output rows reads

    def add_block(k: jax.Array, total: jax.Array) -> jax.Array:
        image, block = k // per_image, k % per_image
        window = (1, span, padded.shape[2], padded.shape[3])
        x_block = lax.dynamic_slice(padded, (image, block * rows * sh, 0, 0), window)
        dy_block = lax.dynamic_slice(dy, (image, block * rows, 0, 0), (1, rows, ow, o))[0]
        return total + block_sums(x_block, dy_block)

    total = lax.fori_loop(0, n * per_image, add_block, jnp.zeros((cpg * kh * kw, ow, o), x.dtype))
    return total.sum(axis=1).reshape(cpg, kh, kw, o).transpose(1, 2, 0, 3)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _stencil(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    return _forward(x, w, spec)


def _stencil_fwd(x: jax.Array, w: jax.Array, spec: ConvSpec) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _forward(x, w, spec), (x, w)


def _stencil_bwd(
    spec: ConvSpec, saved: tuple[jax.Array, jax.Array], dy: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, w = saved
    if _terms(spec) <= MAX_AUTODIFF_TERMS:
        _, input_vjp = jax.vjp(lambda x: _forward(x, w, spec), x)  # the slices' transposes, fused
        (dx,) = input_vjp(dy)
    else:
        dx = _input_gradient(dy, w, spec, (x.shape[1], x.shape[2]))
    return dx, _weight_gradient(x, dy, spec).astype(w.dtype)


_stencil.defvjp(_stencil_fwd, _stencil_bwd)
