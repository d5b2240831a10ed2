"""Depthwise and grouped convolutions as stencils: no matmul, no dense work.

A grouped convolution with ``Cg`` input channels per group computes, at every output position,

    y[n, p, q, g, o] = sum over taps (i, j) and c < Cg of x[n, p*s + i*d, q*s + j*d, g, c] * w[i, j, c, g, o]

A depthwise layer (``Cg = 1``, MobileNet's 3x3, ConvNeXt's 7x7) is ``kh * kw`` shifted, per-channel
scaled copies of the input, summed: a stencil. Written as ``kh * kw * Cg`` broadcast multiply-adds of
tap slices (:func:`jaxconv.impls.taps.tap_slices`), XLA fuses the forward pass into one loop over the
output that reads the input from cache, and so does autodiff's input gradient (the slices' transposes,
summed). A matmul per group (XLA's grouped convolution, or a batched einsum) does ``Cg`` multiply-adds
per call on tiny matrices; densifying the kernel (``banded``, ``winograd``) does ``G`` times the work.

The weight gradient is ``kh * kw * Cg`` reductions of ``x * dy`` over the batch and the image. Left to
autodiff, XLA's CPU backend hands each to a library reduction that takes a contiguous operand, so every
tap's slice of the input is first copied out of it. Here (a custom VJP) a loop over the images sums each
image's rows into a ``(kh * kw * Cg, OW, C)`` accumulator, fused, reading the image from cache.

With more channels per group than ``MAX_STENCIL_CHANNELS`` the core runs ``shift_add``'s per-tap
products instead: the broadcasts that line a group's input channels up with its outputs cost more than
the products they replace.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import Precision
from jaxconv.impls.common import CORE_STATIC, finish, to_nhwc
from jaxconv.impls.taps import conv2d_shift_add, tap_slices
from jaxconv.spec import ConvSpec

# Above this many input channels per group the stencil's kh*kw*Cg broadcast multiply-adds per output lose
# to shift_add's products per tap: with 4 per group they already did (docs/performance.md, "Depthwise,
# grouped, dilated and transposed layers").
MAX_STENCIL_CHANNELS = 1


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_stencil(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, spec: ConvSpec, precision: Precision = None
) -> jax.Array:
    """Batched grouped convolution as a stencil of broadcast multiply-adds; options canonical.

    ``x (N, C, H, W)`` / ``w (O, C/G, kh, kw)`` in NCHW, ``(N, H, W, C)`` / ``(kh, kw, C/G, O)`` in NHWC
    -> ``y`` in the layout. Products are exact elementwise ones, so ``precision`` has nothing to choose.
    """
    if spec.in_channels_per_group > MAX_STENCIL_CHANNELS:
        return conv2d_shift_add(x, w, b, spec=spec, precision=precision)
    dtype = x.dtype
    x, w = to_nhwc(x, w, spec.layout)
    y: jax.Array = _stencil(x, w, spec)  # type: ignore[assignment]  # custom_vjp loses the type
    return finish(y, b, dtype, spec.layout)


def _channel(view: jax.Array, c: int, spec: ConvSpec) -> jax.Array:
    """Input channel ``c`` of every group of ``view (..., C)``, each repeated for its group's outputs:
    ``(..., O)``, lined up with the output channels (the identity for a depthwise layer). Channels stay
    the minor axis, which XLA's CPU loops vectorize along."""
    groups, cpg, opg = spec.groups, spec.in_channels_per_group, spec.out_channels // spec.groups
    if cpg == 1 and opg == 1:
        return view
    picked = view.reshape(*view.shape[:-1], groups, cpg)[..., c, None]  # (..., G, 1)
    return jnp.broadcast_to(picked, (*picked.shape[:-1], opg)).reshape(*view.shape[:-1], groups * opg)


def _forward(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    """``x (N, H, W, C)``, ``w (kh, kw, Cg, O)`` -> ``(N, OH, OW, O)``. The padding is fused into the
    taps' loop, not materialised."""
    kw = spec.kernel[1]
    x = jnp.pad(x, ((0, 0), *spec.pads, (0, 0)))
    y = None
    for t, view in enumerate(tap_slices(x, spec.kernel, spec.stride, spec.dilation)):
        for c in range(w.shape[2]):
            term = _channel(view, c, spec) * w[t // kw, t % kw, c][None, None, None, :]
            y = term if y is None else y + term
    assert y is not None  # a kernel has at least one tap
    return y


def _weight_gradient(x: jax.Array, dy: jax.Array, spec: ConvSpec) -> jax.Array:
    """``dL/dw (kh, kw, Cg, O)`` from ``x (N, H, W, C)`` and ``dy (N, OH, OW, O)``, an image at a time,
    padded there (see the module's docstring)."""
    (kh, kw), cpg = spec.kernel, spec.in_channels_per_group

    def add_image(n: jax.Array, total: jax.Array) -> jax.Array:
        image = jnp.pad(lax.dynamic_index_in_dim(x, n, keepdims=True), ((0, 0), *spec.pads, (0, 0)))
        dy_image = lax.dynamic_index_in_dim(dy, n, keepdims=False)  # (OH, OW, O)
        parts = []
        for view in tap_slices(image, spec.kernel, spec.stride, spec.dilation):
            for c in range(cpg):
                parts.append(jnp.sum(_channel(view[0], c, spec) * dy_image, axis=0))  # (OW, O)
        return total + jnp.stack(parts)

    zero = jnp.zeros((kh * kw * cpg, *dy.shape[2:]), x.dtype)
    total = lax.fori_loop(0, x.shape[0], add_image, zero)
    return total.sum(axis=1).reshape(kh, kw, cpg, spec.out_channels)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _stencil(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    return _forward(x, w, spec)


def _stencil_fwd(x: jax.Array, w: jax.Array, spec: ConvSpec) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _forward(x, w, spec), (x, w)


def _stencil_bwd(
    spec: ConvSpec, saved: tuple[jax.Array, jax.Array], dy: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, w = saved
    _, input_vjp = jax.vjp(lambda x: _forward(x, w, spec), x)  # the slices' transposes, fused
    (dx,) = input_vjp(dy)
    return dx, _weight_gradient(x, dy, spec).astype(w.dtype)


_stencil.defvjp(_stencil_fwd, _stencil_bwd)
