"""Depthwise and grouped convolutions as stencils: no matmul, no dense work.

A grouped convolution with ``Cg`` input channels per group computes, at every output position,

    y[n, p, q, g, o] = sum over taps (i, j) and c < Cg of x[n, p*s + i*d, q*s + j*d, g, c] * w[i, j, c, g, o]

A depthwise layer (``Cg = 1``, MobileNet's 3x3, ConvNeXt's 7x7) is ``kh * kw`` shifted, per-channel
scaled copies of the input, summed: a stencil. Written as ``kh * kw * Cg`` broadcast multiply-adds of
tap slices (:func:`jaxconv.impls.taps.tap_slices`), XLA fuses the forward pass into one loop over the
output that reads the input from cache, and so does autodiff's input gradient (the slices' transposes,
summed). A matmul per group (XLA's grouped convolution, or a batched einsum) does ``Cg`` multiply-adds
per call on tiny matrices; densifying the kernel (``banded``, ``winograd``) does ``G`` times the work.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) raises JAX's custom-VJP ``TypeError``, as
:mod:`jaxconv.impls.pallas` does: a custom JVP whose weight tangent runs a loop over the images, which
JAX then transposes, computed the same gradients several times slower (docs/performance.md).

The weight gradient is ``kh * kw * Cg`` reductions of ``x * dy`` over the batch and the image. Left to
autodiff, XLA's CPU backend hands each to a library reduction that takes a contiguous operand, so every
tap's slice of the input is first copied out of it. Here (a custom VJP) a loop over the images sums each
image's rows into a ``(kh * kw * Cg, OW, C)`` accumulator, fused, reading the image from cache.

The channels are laid out as planes, one array ``(N, H, W, G)`` per channel of a group, so the groups lie
on the minor axis that XLA's CPU loops vectorize along. With more input or output channels per group than
``MAX_STENCIL_CHANNELS`` (:func:`runs_stencil`) the core runs ``shift_add``'s per-tap products instead: the
stencil unrolls ``kh * kw`` times the product of the two, which for a dense layer of many outputs takes
XLA minutes to compile.
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

# Up to this many input channels per group the stencil ran faster than shift_add's products per tap (4
# per group, a ResNeXt layer); more were not measured (docs/performance.md, "Depthwise, grouped,
# dilated and transposed layers").
MAX_STENCIL_CHANNELS = 4


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


def _planes(a: jax.Array, groups: int) -> jax.Array:
    """``(..., G * k)`` channels (group-major, as lax groups them) as ``k`` planes ``(k, ..., G)``: one
    array per channel of a group, the groups on the minor axis, which XLA's CPU loops vectorize along.
    A reshape where ``k`` is 1 (a depthwise layer)."""
    k = a.shape[-1] // groups
    a = a.reshape(*a.shape[:-1], groups, k)
    return jnp.moveaxis(a, -1, 0)


def _unplanes(a: jax.Array) -> jax.Array:
    """The inverse of :func:`_planes`: ``(k, ..., G)`` -> ``(..., G * k)``."""
    a = jnp.moveaxis(a, 0, -1)
    return a.reshape(*a.shape[:-2], a.shape[-2] * a.shape[-1])


def _forward(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    """``x (N, H, W, C)``, ``w (kh, kw, Cg, O)`` -> ``(N, OH, OW, O)``: output plane ``o`` of every group is
    the sum over taps and input planes ``c`` of the tap's slice of plane ``c`` times the kernel's
    ``(G,)`` vector ``w[i, j, c, :, o]``. The padding is fused into the taps' loop, not materialised."""
    groups, (kh, kw) = spec.groups, spec.kernel
    planes = _planes(jnp.pad(x, ((0, 0), *spec.pads, (0, 0))), groups)  # (Cg, N, Hp, Wp, G)
    taps = jnp.moveaxis(_planes(w, groups), 0, -2)  # (kh, kw, Cg, O/G, G)
    views = [tap_slices(plane, spec.kernel, spec.stride, spec.dilation) for plane in planes]
    outputs = []
    for o in range(taps.shape[3]):
        y = None
        for t in range(kh * kw):
            for c, plane_views in enumerate(views):
                term = plane_views[t] * taps[t // kw, t % kw, c, o][None, None, None, :]
                y = term if y is None else y + term
        outputs.append(y)
    return _unplanes(jnp.stack(outputs))


def _weight_gradient(x: jax.Array, dy: jax.Array, spec: ConvSpec) -> jax.Array:
    """``dL/dw (kh, kw, Cg, O)`` from ``x (N, H, W, C)`` and ``dy (N, OH, OW, O)``, an image at a time,
    padded there (see the module's docstring)."""
    groups, (kh, kw), cpg = spec.groups, spec.kernel, spec.in_channels_per_group
    x_planes, dy_planes = _planes(x, groups), _planes(dy, groups)  # (Cg, N, H, W, G), (O/G, N, OH, OW, G)
    opg = dy_planes.shape[0]

    def add_image(n: jax.Array, total: jax.Array) -> jax.Array:
        image = lax.dynamic_index_in_dim(x_planes, n, axis=1, keepdims=True)
        image = jnp.pad(image, ((0, 0), (0, 0), *spec.pads, (0, 0)))
        dy_image = lax.dynamic_index_in_dim(dy_planes, n, axis=1, keepdims=False)  # (O/G, OH, OW, G)
        views = [tap_slices(plane, spec.kernel, spec.stride, spec.dilation) for plane in image]
        parts = [
            jnp.sum(views[c][t][0] * dy_image[o], axis=0)  # (OW, G)
            for t in range(kh * kw) for c in range(cpg) for o in range(opg)
        ]  # fmt: skip
        return total + jnp.stack(parts)

    zero = jnp.zeros((kh * kw * cpg * opg, dy.shape[2], groups), x.dtype)
    total = lax.fori_loop(0, x.shape[0], add_image, zero).sum(axis=1)  # (kh * kw * Cg * O/G, G)
    return total.reshape(kh, kw, cpg, opg, groups).swapaxes(3, 4).reshape(kh, kw, cpg, spec.out_channels)


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
