"""Cross-correlation, XLA and by hand side by side (the book's sections 6.2 and 6.4).

Independent implementations of the same maths (two more, built on kernel taps, in
:mod:`jaxconv.taps`):

* ``xla``: one ``lax.conv_general_dilated``, XLA's fused convolution.
* ``manual``: the book's definition, ``Y[i, j] = (X[i:i+kh, j:j+kw] * K).sum()``, written for one
  output position and one channel, then lifted with ``jax.vmap`` over output positions, input
  channels (then summed, as the book's ``corr2d_multi_in``), output channels, groups and batch.
  It never calls ``lax.conv*``; the tests check its HLO has no convolution.

The private cores take canonical, validated options (pairs, explicit pads) and are jitted with
those options static. The public book-named functions validate, then call them.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import (
    IMPL_CHOICES,
    PadPairs,
    Pair,
    Precision,
    accumulation_dtype,
    check_array,
    check_choice,
    check_same_dtype,
)
from jaxconv.auto import conv_impl
from jaxconv.band import conv2d_banded
from jaxconv.layout import dimension_numbers, from_nchw, to_nchw, weight_to_oihw
from jaxconv.shapes import effective_kernel, output_size
from jaxconv.taps import conv2d_im2col, conv2d_shift_add
from jaxconv.winograd import conv2d_winograd

# ---- the book's definition, one position at a time -------------------------------------------


def _window_dot(
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
    at = partial(_window_dot, x, k, stride=stride, dilation=dilation, precision=precision)
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


# ---- the two batched cores behind conv2d ----------------------------------------------------

_STATIC = ("stride", "pads", "dilation", "groups", "layout", "precision")


@partial(jax.jit, static_argnames=_STATIC)
def conv2d_xla(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    stride: Pair,
    pads: PadPairs,
    dilation: Pair,
    groups: int,
    layout: str,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution through ``lax.conv_general_dilated``; options already canonical."""
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=dimension_numbers(layout),
        feature_group_count=groups,
        precision=precision,
    )
    if b is not None:
        y = y + (b[None, :, None, None] if layout == "NCHW" else b[None, None, None, :])
    return y


@partial(jax.jit, static_argnames=_STATIC)
def conv2d_manual(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    stride: Pair,
    pads: PadPairs,
    dilation: Pair,
    groups: int,
    layout: str,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution from the book's definition: the vmapped window dot product.

    Groups split the channels into ``groups`` independent multi-input-multi-output problems,
    vmapped like the batch.
    """
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


CORES = {
    "xla": conv2d_xla,
    "manual": conv2d_manual,
    "im2col": conv2d_im2col,
    "shift_add": conv2d_shift_add,
    "banded": conv2d_banded,
    "winograd": conv2d_winograd,
}


# ---- the book's functions ---------------------------------------------------------------------


def _check_book_args(fn: str, x: jax.Array, k: jax.Array, impl: str) -> None:
    """Checks ``x (C, H, W)`` against ``k (O, C, kh, kw)`` for a valid, stride-1 correlation."""
    check_choice(fn, "impl", impl, IMPL_CHOICES)
    check_same_dtype(fn, X=x, K=k)
    if x.shape[0] != k.shape[1]:
        raise ValueError(
            f"{fn}: K has {k.shape[1]} input channels but X has {x.shape[0]} "
            f"(X: {tuple(x.shape)}, K: {tuple(k.shape)})"
        )
    output_size(fn, x.shape[1:], k.shape[2:], ((0, 0), (0, 0)), (1, 1))


def _book_conv(fn: str, x: jax.Array, k: jax.Array, impl: str) -> jax.Array:
    """Valid, stride-1 correlation of ``x (C, H, W)`` with ``k (O, C, kh, kw)`` -> ``(O, OH, OW)``."""
    _check_book_args(fn, x, k, impl)
    if impl == "auto":
        impl = conv_impl(jax.default_backend(), x_shape=(1, *x.shape), out_channels=k.shape[0],
                         kernel=k.shape[2:], groups=1, itemsize=x.dtype.itemsize)  # fmt: skip
    core = CORES[impl]
    y = core(x[None], k, None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1, layout="NCHW")
    return y[0]


def corr2d(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """2-D cross-correlation of one channel: the book's ``corr2d``.

    Args:
      X: input ``(H, W)``, floating point.
      K: kernel ``(kh, kw)``, same dtype.
      impl: ``"auto"`` (default), ``"xla"`` (``lax.conv_general_dilated``), ``"manual"`` (the
        vmapped definition), ``"im2col"``, ``"shift_add"``, ``"banded"`` or ``"winograd"``; as
        :func:`jaxconv.conv2d`.

    Returns:
      ``(H - kh + 1, W - kw + 1)``.

    Raises:
      TypeError: non-array or non-float input, mixed dtypes.
      ValueError: wrong number of dimensions, kernel larger than the input, unknown impl.

    Examples:
      >>> X = jnp.arange(9.0).reshape(3, 3)
      >>> K = jnp.arange(4.0).reshape(2, 2)
      >>> corr2d(X, K)
      Array([[19., 25.],
             [37., 43.]], dtype=float32)
    """
    X = check_array("corr2d", "X", X, (2,))
    K = check_array("corr2d", "K", K, (2,))
    return _book_conv("corr2d", X[None], K[None, None], impl)[0]


def convolve2d(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """Strict 2-D convolution: cross-correlation with ``K`` flipped in both axes.

    Shapes as :func:`corr2d`; this is the operation the book contrasts with cross-correlation.

    Examples:
      >>> X = jnp.arange(9.0).reshape(3, 3)
      >>> convolve2d(X, jnp.arange(4.0).reshape(2, 2))
      Array([[ 5., 11.],
             [23., 29.]], dtype=float32)
    """
    X = check_array("convolve2d", "X", X, (2,))
    K = check_array("convolve2d", "K", K, (2,))
    return _book_conv("convolve2d", X[None], K[None, None, ::-1, ::-1], impl)[0]


def corr2d_multi_in(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """Cross-correlation summed over input channels: ``X (C, H, W)``, ``K (C, kh, kw)`` -> ``(OH, OW)``.

    Examples:
      >>> X = jnp.stack([jnp.arange(9.0).reshape(3, 3), jnp.arange(1.0, 10.0).reshape(3, 3)])
      >>> K = jnp.stack([jnp.arange(4.0).reshape(2, 2), jnp.arange(1.0, 5.0).reshape(2, 2)])
      >>> corr2d_multi_in(X, K)
      Array([[ 56.,  72.],
             [104., 120.]], dtype=float32)
    """
    X = check_array("corr2d_multi_in", "X", X, (3,))
    K = check_array("corr2d_multi_in", "K", K, (3,))
    return _book_conv("corr2d_multi_in", X, K[None], impl)[0]


def corr2d_multi_in_out(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """One multi-input correlation per output channel.

    ``X (C, H, W)``, ``K (O, C, kh, kw)`` -> ``(O, H - kh + 1, W - kw + 1)``.
    """
    X = check_array("corr2d_multi_in_out", "X", X, (3,))
    K = check_array("corr2d_multi_in_out", "K", K, (4,))
    return _book_conv("corr2d_multi_in_out", X, K, impl)


def corr2d_multi_in_out_1x1(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """A 1x1 convolution as one matrix product: ``X (C, H, W)``, ``K (O, C, 1, 1)`` -> ``(O, H, W)``.

    ``impl="xla"`` is the book's formulation, ``K.reshape(O, C) @ X.reshape(C, H * W)``, one XLA
    dot; every other impl runs :func:`corr2d_multi_in_out`'s (``"manual"``: the vmapped
    definition with 1x1 windows). All equal :func:`corr2d_multi_in_out`.
    """
    fn = "corr2d_multi_in_out_1x1"
    X = check_array(fn, "X", X, (3,))
    K = check_array(fn, "K", K, (4,))
    if K.shape[2:] != (1, 1):
        raise ValueError(f"{fn}: K must be (O, C, 1, 1), got {tuple(K.shape)}")
    if impl != "xla":
        return _book_conv(fn, X, K, impl)
    _check_book_args(fn, X, K, impl)
    c, h, w = X.shape
    return (K.reshape(K.shape[0], c) @ X.reshape(c, h * w)).reshape(K.shape[0], h, w)
