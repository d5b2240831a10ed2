"""``impl="manual"``: the book's definitions, one output position at a time, lifted with ``jax.vmap``.

* Cross-correlation (sections 6.2 and 6.4): ``Y[i, j] = (X[i:i+kh, j:j+kw] * K).sum()``, written for
  one output position and one channel (:func:`window_dot`), then vmapped over output positions,
  input channels (then summed, as the book's ``corr2d_multi_in``), output channels, groups and batch.
* Pooling (section 6.5): the book's ``pool2d``, ``Y[i, j] = X[window at (i, j)].max()`` (or the
  window's sum, divided by the caller), for one position of one channel, vmapped the same way.

It is the independent implementation: it never calls ``lax.conv*`` or ``reduce_window`` (a test
checks its HLO), so every other impl can be checked against it.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import Pair, Precision, accumulation_dtype
from jaxconv.impls.common import CORE_STATIC, POOL_STATIC
from jaxconv.layout import from_nchw, to_nchw, weight_to_oihw
from jaxconv.shapes import effective_kernel, output_size
from jaxconv.spec import ConvSpec, PoolSpec

# ---- cross-correlation ------------------------------------------------------------------------


def window_dot(
    x: jax.Array, k: jax.Array, i: jax.Array, j: jax.Array, *, stride: Pair, dilation: Pair,
    precision: Precision = None,
) -> jax.Array:  # fmt: skip
    """``Y[i, j]``: the window of ``x (H, W)`` at output position ``(i, j)`` dotted with ``k``.

    Written as a dot product rather than ``(window * k).sum()`` so that ``vmap`` over output
    channels lifts it to a matrix product instead of a broadcast the size of every window times
    every kernel.
    """
    extent = effective_kernel(k.shape, dilation)
    window = lax.dynamic_slice(x, (i * stride[0], j * stride[1]), extent)
    window = window[:: dilation[0], :: dilation[1]]
    acc = accumulation_dtype(x.dtype)
    return jnp.tensordot(window, k, axes=2, precision=precision, preferred_element_type=acc)


def corr2d_manual(
    x: jax.Array, k: jax.Array, *, stride: Pair, dilation: Pair, precision: Precision = None
) -> jax.Array:
    """``x (H, W)`` (already padded), ``k (kh, kw)`` -> ``(OH, OW)``, vmapped over positions."""
    oh, ow = output_size("corr2d", x.shape, effective_kernel(k.shape, dilation), ((0, 0),) * 2, stride)
    at = partial(window_dot, x, k, stride=stride, dilation=dilation, precision=precision)
    along_row = jax.vmap(at, in_axes=(None, 0))
    return jax.vmap(along_row, in_axes=(0, None))(jnp.arange(oh), jnp.arange(ow))


def corr2d_multi_in_manual(
    x: jax.Array, k: jax.Array, *, stride: Pair, dilation: Pair, precision: Precision = None
) -> jax.Array:
    """``x (C, H, W)``, ``k (C, kh, kw)`` -> ``(OH, OW)``: one map per channel, then summed."""
    per_channel = jax.vmap(partial(corr2d_manual, stride=stride, dilation=dilation, precision=precision))
    return per_channel(x, k).sum(axis=0)


def corr2d_multi_in_out_manual(
    x: jax.Array, k: jax.Array, *, stride: Pair, dilation: Pair, precision: Precision = None
) -> jax.Array:
    """``x (C, H, W)``, ``k (O, C, kh, kw)`` -> ``(O, OH, OW)``: one multi-input map per output."""
    per_output = partial(corr2d_multi_in_manual, stride=stride, dilation=dilation, precision=precision)
    return jax.vmap(per_output, in_axes=(None, 0))(x, k)


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_manual(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution from the book's definition: the vmapped window dot product.

    Groups split the channels into ``groups`` independent multi-input-multi-output problems,
    vmapped like the batch.
    """
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    x = jnp.pad(to_nchw(x, layout), ((0, 0), (0, 0), *pads))
    w = weight_to_oihw(w, layout)
    n, c, h, wd = x.shape
    o, cpg, kh, kw = w.shape
    xg = x.reshape(n, groups, c // groups, h, wd)
    wg = w.reshape(groups, o // groups, cpg, kh, kw)
    one_group = partial(corr2d_multi_in_out_manual, stride=stride, dilation=dilation, precision=precision)
    per_group = jax.vmap(one_group, in_axes=(0, 0))
    y = jax.vmap(per_group, in_axes=(0, None))(xg, wg)
    y = y.reshape(n, o, *y.shape[-2:])
    if b is not None:
        y = y + b[None, :, None, None].astype(y.dtype)
    return from_nchw(y.astype(x.dtype), layout)


# ---- pooling ----------------------------------------------------------------------------------


def window_reduce(
    x: jax.Array, i: jax.Array, j: jax.Array, *, mode: str, window: Pair, stride: Pair, dilation: Pair
) -> jax.Array:
    """The book's pooling at one output position of one channel ``x (H, W)`` (already padded):
    the window's max, or its sum (divided by the window count afterwards).

    The max is read at the window's first largest element (``argmax``), so that its gradient goes to
    that one element, as ``reduce_window``'s does, where ``patch.max()``'s would be split among ties.
    """
    extent = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))
    patch = lax.dynamic_slice(x, (i * stride[0], j * stride[1]), extent)[:: dilation[0], :: dilation[1]]
    if mode == "max":
        return patch.ravel()[jnp.argmax(patch)]
    return patch.sum(dtype=accumulation_dtype(x.dtype))


@partial(jax.jit, static_argnames=POOL_STATIC)
def pool_manual(x: jax.Array, *, spec: PoolSpec) -> jax.Array:
    """The windows' max or sum from the book's definition, vmapped over positions, channels, batch."""
    mode, layout = spec.mode, spec.layout
    window, stride, pads, dilation = spec.window, spec.stride, spec.pads, spec.dilation
    x = to_nchw(x, layout)
    fill = -jnp.inf if mode == "max" else 0.0  # max-pool never picks a pad
    x = jnp.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    oh, ow = spec.output_hw

    def one_channel(xc: jax.Array) -> jax.Array:
        at = partial(window_reduce, xc, mode=mode, window=window, stride=stride, dilation=dilation)
        return jax.vmap(jax.vmap(at, in_axes=(None, 0)), in_axes=(0, None))(jnp.arange(oh), jnp.arange(ow))

    return from_nchw(jax.vmap(jax.vmap(one_channel))(x), layout)
