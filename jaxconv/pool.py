"""Max and average pooling (the book's section 6.5) with PyTorch's options.

The functions validate and canonicalise the window, stride, padding and ``ceil_mode``, run the
windows' max or sum through the pooling core of the chosen ``impl`` (:mod:`jaxconv.impls`:
``"xla"`` is ``lax.reduce_window``, ``"manual"`` the book's ``pool2d`` vmapped, ``"im2col"`` /
``"shift_add"`` the window's tap slices), and divide averages here, by the count PyTorch divides by.
``return_indices`` and :func:`jaxconv.max_unpool2d` live in :mod:`jaxconv.pool_indices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import impls
from jaxconv._checks import LAYOUTS, PadPairs, Pair, check_array, check_choice, check_int, to_pair
from jaxconv.impls import IMPL_CHOICES
from jaxconv.layout import channel_axis, spatial_of
from jaxconv.pool_indices import max_with_indices
from jaxconv.shapes import Padding, check_pool_padding, effective_kernel, output_size, resolve_padding
from jaxconv.spec import PoolSpec

MODES = ("max", "avg")


def _avg_divisor(
    input_hw: Sequence[int],
    window: Pair,
    stride: Pair,
    pads: PadPairs,
    ceil_extra: Pair,
    count_include_pad: bool,
) -> np.ndarray:
    """How many elements each average divides by, ``(OH, OW)``: static, so computed in NumPy.

    A window counts the padded input it covers (``count_include_pad``) or only the real input;
    never the overhang that ``ceil_mode`` adds past the padding (PyTorch's rule).
    """
    counts = []
    for n, k, (lo, hi), s, extra in zip(input_hw, window, pads, stride, ceil_extra, strict=True):
        o = (n + lo + hi + extra - k) // s + 1
        start = np.arange(o) * s - lo  # first input index of each window, in unpadded coordinates
        low, high = (-lo, n + hi) if count_include_pad else (0, n)
        counts.append(np.minimum(start + k, high) - np.maximum(start, low))
    return np.outer(counts[0], counts[1]).astype(np.float32)


def _ceil_extra(input_hw: Pair, extent: Pair, stride: Pair, pads: PadPairs) -> Pair:
    """Rows/columns to add at the bottom/right so the output size rounds up (``ceil_mode``),
    except that a last window starting past the input and its left padding is dropped (PyTorch)."""
    extra = []
    for n, k, s, (lo, hi) in zip(input_hw, extent, stride, pads, strict=True):
        out = -(-(n + lo + hi - k) // s) + 1
        if (out - 1) * s >= n + lo:
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (n + lo + hi)))
    return (extra[0], extra[1])


def _pool(
    fn: str,
    mode: str,
    x: jax.Array,
    kernel_size: int | Pair,
    stride: int | Pair | None,
    padding: Padding,
    layout: str,
    impl: str,
    *,
    count_include_pad: bool = True,
    ceil_mode: bool = False,
    dilation: int | Pair = 1,
    divisor_override: int | None = None,
    return_indices: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    impl = check_choice(fn, "impl", impl, IMPL_CHOICES)
    x = check_array(fn, "x", x, (3, 4))
    for name, flag in (("count_include_pad", count_include_pad), ("ceil_mode", ceil_mode),
                       ("return_indices", return_indices)):  # fmt: skip
        if not isinstance(flag, bool):
            raise TypeError(f"{fn}: {name} must be a bool, got {flag!r}")
    if divisor_override is not None:
        divisor_override = check_int(fn, "divisor_override", divisor_override, minimum=1)
    window = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    dilation_hw = to_pair(fn, "dilation", dilation, minimum=1)
    stride_hw = window if stride is None else to_pair(fn, "stride", stride, minimum=1)
    extent = effective_kernel(window, dilation_hw)
    batched = x.ndim == 4
    xb = x if batched else x[None]
    input_hw = spatial_of(xb.shape, layout)
    pads = resolve_padding(fn, padding, input_hw, extent, stride_hw)
    check_pool_padding(fn, pads, window)
    output_size(fn, input_hw, extent, pads, stride_hw)
    extra = _ceil_extra(input_hw, extent, stride_hw, pads) if ceil_mode else (0, 0)
    grown = ((pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1]))
    if return_indices:
        y, indices = max_with_indices(xb, window, stride_hw, grown, dilation_hw, layout)
        return (y, indices) if batched else (y[0], indices[0])
    spec = PoolSpec(
        batch=xb.shape[0], channels=xb.shape[channel_axis(layout)], input_hw=input_hw, window=window,
        stride=stride_hw, pads=grown, dilation=dilation_hw, mode=mode, layout=layout, dtype=xb.dtype.name,
    )  # fmt: skip
    y = impls.pool(impl, xb, spec)
    if mode == "avg":
        if divisor_override is not None:
            y = y / jnp.asarray(divisor_override, y.dtype)
        else:
            divisor = jnp.asarray(
                _avg_divisor(input_hw, window, stride_hw, pads, extra, count_include_pad), y.dtype
            )
            y = y / (divisor[None, :, :, None] if layout == "NHWC" else divisor[None, None])
        y = y.astype(xb.dtype)
    return y if batched else y[0]


@overload
def max_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array: ...


@overload
def max_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[True],
    layout: str = "NCHW",
    impl: str = "auto",
) -> tuple[jax.Array, jax.Array]: ...


def max_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Max pooling over each channel.

    Args:
      x: ``(N, C, H, W)`` or ``(C, H, W)`` (``NHWC``: ``(N, H, W, C)`` or ``(H, W, C)``), float.
      kernel_size: window, int or pair.
      stride: int or pair; defaults to the window, as in the book and PyTorch.
      padding: int or pair per side, ``((top, bottom), (left, right))``, "valid" or "same"; at most
        half the window on each side. Pads with ``-inf``, so a pad is never the maximum.
      dilation: int or pair, >= 1: spacing between window elements (PyTorch's max-pool dilation).
        JAX cannot differentiate ``impl="xla"`` (``reduce_window``) with dilation; ``"auto"`` picks
        ``"shift_add"`` then, which it can.
      ceil_mode: round the output size up instead of down (PyTorch's ``ceil_mode``): a last,
        partial window is kept if it starts inside the input or its left/top padding.
      return_indices: also return, per output, the flat index ``h * W + w`` of the maximum in the
        unpadded input (int32, PyTorch's convention; for :func:`jaxconv.max_unpool2d`). Computed from the
        window taps whatever ``impl``.
      layout: ``"NCHW"`` or ``"NHWC"``.
      impl: ``"auto"`` (default, see :mod:`jaxconv.impls.auto`), ``"xla"`` (``lax.reduce_window``),
        ``"manual"`` (the book's vmapped definition), ``"im2col"`` (stacked window taps reduced
        once) or ``"shift_add"`` (a running max/sum over the taps); ``"banded"``, ``"winograd"``
        and ``"pallas"``, convolution forms, pool as ``"shift_add"``.

    Returns:
      ``(N, C, OH, OW)`` in the input's layout, ``(OH, OW) = pool_output_shape(...)``; with
      ``return_indices``, ``(values, indices)``.

    Examples:
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> max_pool2d(x, 3, padding=1, stride=2)
      Array([[[[ 5.,  7.],
               [13., 15.]]]], dtype=float32)
    """
    return _pool("max_pool2d", "max", x, kernel_size, stride, padding, layout, impl, dilation=dilation,
                 ceil_mode=ceil_mode, return_indices=return_indices)  # fmt: skip


def avg_pool2d(
    x: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: Padding = 0,
    count_include_pad: bool = True,
    ceil_mode: bool = False,
    divisor_override: int | None = None,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array:
    """Average pooling over each channel; arguments as :func:`max_pool2d`.

    ``count_include_pad=True`` (PyTorch's default) divides every window by its full size, padded
    zeros included; ``False`` divides by the number of real input elements in the window.
    ``divisor_override`` (an int >= 1) divides every window sum by that number instead.

    Examples:
      >>> avg_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2)
      Array([[[ 2.5,  4.5],
              [10.5, 12.5]]], dtype=float32)
    """
    y = _pool("avg_pool2d", "avg", x, kernel_size, stride, padding, layout, impl, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor_override)  # fmt: skip
    assert not isinstance(y, tuple)
    return y


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
