"""Max and average pooling, XLA and by hand side by side (the book's section 6.5).

* ``xla``: one ``lax.reduce_window``.
* ``manual``: the book's ``pool2d``, ``Y[i, j] = X[window at (i, j)].max()`` (or ``.mean()``),
  written for one position of one channel and vmapped over positions, channels and batch.
  It never calls ``reduce_window``.
* ``im2col`` / ``shift_add``: the window's tap slices (:mod:`jaxconv.taps`) stacked and reduced
  once, or folded one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._checks import (
    IMPL_CHOICES,
    LAYOUTS,
    PadPairs,
    Pair,
    accumulation_dtype,
    check_array,
    check_choice,
    to_pair,
)
from jaxconv.auto import pool_impl
from jaxconv.layout import from_nchw, spatial_of, to_nchw
from jaxconv.shapes import Padding, check_pool_padding, output_size, resolve_padding
from jaxconv.taps import pool_taps

MODES = ("max", "avg")


def _avg_divisor(
    input_hw: Sequence[int], window: Pair, stride: Pair, pads: PadPairs, count_include_pad: bool
) -> np.ndarray:
    """How many elements each average divides by, ``(OH, OW)``: static, so computed in NumPy."""
    out = output_size("avg_pool2d", input_hw, window, pads, stride)
    if count_include_pad:
        return np.full(out, window[0] * window[1], dtype=np.float32)
    counts = []
    for n, k, (lo, _), s, o in zip(input_hw, window, pads, stride, out, strict=True):
        start = np.arange(o) * s - lo  # first input index of each window, in unpadded coordinates
        counts.append(np.minimum(start + k, n) - np.maximum(start, 0))
    return np.outer(counts[0], counts[1]).astype(np.float32)


_STATIC = ("mode", "window", "stride", "pads", "layout", "count_include_pad")


@partial(jax.jit, static_argnames=_STATIC)
def pool_xla(
    x: jax.Array,
    *,
    mode: str,
    window: Pair,
    stride: Pair,
    pads: PadPairs,
    layout: str,
    count_include_pad: bool,
) -> jax.Array:
    """Batched pooling through ``lax.reduce_window``; options already canonical."""
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    dims, strides, padding = [1] * 4, [1] * 4, [(0, 0)] * 4
    for axis, k, s, p in zip(spatial, window, stride, pads, strict=True):
        dims[axis], strides[axis], padding[axis] = k, s, p
    if mode == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, padding)
    acc = accumulation_dtype(x.dtype)
    total = lax.reduce_window(x.astype(acc), 0.0, lax.add, dims, strides, padding)
    divisor = _avg_divisor(spatial_of(x.shape, layout), window, stride, pads, count_include_pad)
    divisor = jnp.asarray(divisor, acc)
    divisor = divisor[None, :, :, None] if layout == "NHWC" else divisor[None, None]
    return (total / divisor).astype(x.dtype)


def _window_reduce(
    x: jax.Array, i: jax.Array, j: jax.Array, *, mode: str, window: Pair, stride: Pair
) -> jax.Array:
    """The book's pooling at one output position of one channel ``x (H, W)`` (already padded):
    the window's max, or its sum (divided by the window count afterwards)."""
    patch = lax.dynamic_slice(x, (i * stride[0], j * stride[1]), window)
    return patch.max() if mode == "max" else patch.sum(dtype=accumulation_dtype(x.dtype))


@partial(jax.jit, static_argnames=_STATIC)
def pool_manual(
    x: jax.Array,
    *,
    mode: str,
    window: Pair,
    stride: Pair,
    pads: PadPairs,
    layout: str,
    count_include_pad: bool,
) -> jax.Array:
    """Batched pooling from the book's definition, vmapped over positions, channels and batch."""
    x = to_nchw(x, layout)
    input_hw = x.shape[2:]
    fill = -jnp.inf if mode == "max" else 0.0  # max-pool never picks a pad
    x = jnp.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    oh, ow = output_size("pool2d", x.shape[2:], window, ((0, 0), (0, 0)), stride)

    def one_channel(xc: jax.Array) -> jax.Array:
        at = partial(_window_reduce, xc, mode=mode, window=window, stride=stride)
        return jax.vmap(jax.vmap(at, in_axes=(None, 0)), in_axes=(0, None))(jnp.arange(oh), jnp.arange(ow))

    y = jax.vmap(jax.vmap(one_channel))(x)
    if mode == "avg":
        divisor = _avg_divisor(input_hw, window, stride, pads, count_include_pad)
        y = y / jnp.asarray(divisor, y.dtype)[None, None]
    return from_nchw(y.astype(x.dtype), layout)


def _pool_by_taps(
    x: jax.Array,
    *,
    mode: str,
    window: Pair,
    stride: Pair,
    pads: PadPairs,
    layout: str,
    count_include_pad: bool,
    stacked: bool,
) -> jax.Array:
    """Pooling as a reduction over the window's tap slices (see :mod:`jaxconv.taps`)."""
    y = pool_taps(x, mode=mode, window=window, stride=stride, pads=pads, layout=layout, stacked=stacked)
    if mode == "avg":
        divisor = _avg_divisor(spatial_of(x.shape, layout), window, stride, pads, count_include_pad)
        divisor = jnp.asarray(divisor, y.dtype)
        y = y / (divisor[None, :, :, None] if layout == "NHWC" else divisor[None, None])
    return y.astype(x.dtype)


pool_im2col = jax.jit(partial(_pool_by_taps, stacked=True), static_argnames=_STATIC)
pool_shift_add = jax.jit(partial(_pool_by_taps, stacked=False), static_argnames=_STATIC)

CORES = {"xla": pool_xla, "manual": pool_manual, "im2col": pool_im2col, "shift_add": pool_shift_add}


def _pool(
    fn: str,
    mode: str,
    x: jax.Array,
    kernel_size: int | Pair,
    stride: int | Pair | None,
    padding: Padding,
    layout: str,
    impl: str,
    count_include_pad: bool = True,
) -> jax.Array:
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    impl = check_choice(fn, "impl", impl, IMPL_CHOICES)

    x = check_array(fn, "x", x, (3, 4))
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{fn}: count_include_pad must be a bool, got {count_include_pad!r}")
    window = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    stride_hw = window if stride is None else to_pair(fn, "stride", stride, minimum=1)
    batched = x.ndim == 4
    xb = x if batched else x[None]
    input_hw = spatial_of(xb.shape, layout)
    pads = resolve_padding(fn, padding, input_hw, window, stride_hw)
    check_pool_padding(fn, pads, window)
    output_size(fn, input_hw, window, pads, stride_hw)
    if impl == "auto":
        impl = pool_impl(jax.default_backend(), input_hw=input_hw, window=window, stride=stride_hw, pads=pads)
    y = CORES[impl](
        xb,
        mode=mode,
        window=window,
        stride=stride_hw,
        pads=pads,
        layout=layout,
        count_include_pad=count_include_pad,
    )
    return y if batched else y[0]


def max_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array:
    """Max pooling over each channel.

    Args:
      x: ``(N, C, H, W)`` or ``(C, H, W)`` (``NHWC``: ``(N, H, W, C)`` or ``(H, W, C)``), float.
      kernel_size: window, int or pair.
      stride: int or pair; defaults to the window, as in the book and PyTorch.
      padding: int or pair per side, ``((top, bottom), (left, right))``, "valid" or "same"; at most
        half the window on each side. Pads with ``-inf``, so a pad is never the maximum.
      layout: ``"NCHW"`` or ``"NHWC"``.
      impl: ``"auto"`` (default, see :mod:`jaxconv.auto`), ``"xla"`` (``lax.reduce_window``),
        ``"manual"`` (the book's vmapped definition), ``"im2col"`` (stacked window taps reduced
        once) or ``"shift_add"`` (a running max/sum over the taps).

    Returns:
      ``(N, C, OH, OW)`` in the input's layout, ``(OH, OW) = pool_output_shape(...)``.

    Examples:
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> max_pool2d(x, 3, padding=1, stride=2)
      Array([[[[ 5.,  7.],
               [13., 15.]]]], dtype=float32)
    """
    return _pool("max_pool2d", "max", x, kernel_size, stride, padding, layout, impl)


def avg_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    count_include_pad: bool = True,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array:
    """Average pooling over each channel; arguments as :func:`max_pool2d`.

    ``count_include_pad=True`` (PyTorch's default) divides every window by its full size, padded
    zeros included; ``False`` divides by the number of real input elements in the window.

    Examples:
      >>> avg_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2)
      Array([[[ 2.5,  4.5],
              [10.5, 12.5]]], dtype=float32)
    """
    return _pool("avg_pool2d", "avg", x, kernel_size, stride, padding, layout, impl, count_include_pad)


def pool2d(X: jax.Array, pool_size: int | Pair, mode: str = "max", *, impl: str = "auto") -> jax.Array:
    """The book's single-channel ``pool2d``: stride 1, no padding.

    Args:
      X: ``(H, W)``, float.
      pool_size: window ``(p_h, p_w)`` or an int.
      mode: ``"max"`` or ``"avg"``.
      impl: as :func:`max_pool2d`.

    Returns:
      ``(H - p_h + 1, W - p_w + 1)``.

    Examples:
      >>> X = jnp.arange(9.0).reshape(3, 3)
      >>> pool2d(X, (2, 2))
      Array([[4., 5.],
             [7., 8.]], dtype=float32)
      >>> pool2d(X, (2, 2), "avg")
      Array([[2., 3.],
             [5., 6.]], dtype=float32)
    """
    X = check_array("pool2d", "X", X, (2,))
    mode = check_choice("pool2d", "mode", mode, MODES)
    y = _pool("pool2d", mode, X[None], pool_size, 1, 0, "NCHW", impl)
    return y[0]
