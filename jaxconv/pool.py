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
from typing import Literal, overload

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
    check_int,
    to_pair,
)
from jaxconv.auto import pool_impl
from jaxconv.layout import from_nchw, spatial_of, to_nchw
from jaxconv.shapes import Padding, check_pool_padding, effective_kernel, output_size, resolve_padding
from jaxconv.taps import pool_taps, tap_slices

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


_STATIC = ("mode", "window", "stride", "pads", "dilation", "layout")


@partial(jax.jit, static_argnames=_STATIC)
def pool_xla(
    x: jax.Array, *, mode: str, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair, layout: str
) -> jax.Array:
    """The windows' max (``x.dtype``) or sum (accumulation dtype) through ``lax.reduce_window``."""
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    dims, strides, padding, dilations = [1] * 4, [1] * 4, [(0, 0)] * 4, [1] * 4
    for axis, k, s, p, d in zip(spatial, window, stride, pads, dilation, strict=True):
        dims[axis], strides[axis], padding[axis], dilations[axis] = k, s, p, d
    if mode == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, padding, window_dilation=dilations)
    acc = accumulation_dtype(x.dtype)
    return lax.reduce_window(x.astype(acc), 0.0, lax.add, dims, strides, padding, window_dilation=dilations)


def _window_reduce(
    x: jax.Array, i: jax.Array, j: jax.Array, *, mode: str, window: Pair, stride: Pair, dilation: Pair
) -> jax.Array:
    """The book's pooling at one output position of one channel ``x (H, W)`` (already padded):
    the window's max, or its sum (divided by the window count afterwards)."""
    extent = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))
    patch = lax.dynamic_slice(x, (i * stride[0], j * stride[1]), extent)[:: dilation[0], :: dilation[1]]
    return patch.max() if mode == "max" else patch.sum(dtype=accumulation_dtype(x.dtype))


@partial(jax.jit, static_argnames=_STATIC)
def pool_manual(
    x: jax.Array, *, mode: str, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair, layout: str
) -> jax.Array:
    """The windows' max or sum from the book's definition, vmapped over positions, channels, batch."""
    x = to_nchw(x, layout)
    fill = -jnp.inf if mode == "max" else 0.0  # max-pool never picks a pad
    x = jnp.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    extent = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))
    oh, ow = output_size("pool2d", x.shape[2:], extent, ((0, 0), (0, 0)), stride)

    def one_channel(xc: jax.Array) -> jax.Array:
        at = partial(_window_reduce, xc, mode=mode, window=window, stride=stride, dilation=dilation)
        return jax.vmap(jax.vmap(at, in_axes=(None, 0)), in_axes=(0, None))(jnp.arange(oh), jnp.arange(ow))

    return from_nchw(jax.vmap(jax.vmap(one_channel))(x), layout)


# Hand-written variants by the window's tap slices (see :mod:`jaxconv.taps`).
pool_im2col = jax.jit(partial(pool_taps, stacked=True), static_argnames=_STATIC)
pool_shift_add = jax.jit(partial(pool_taps, stacked=False), static_argnames=_STATIC)

# A max has no matmul, so pooling has no band or Winograd form: "banded" and "winograd" (convolution
# formulations) pool by the running tap reduction of shift_add, so a model can pass one impl to all layers.
CORES = {
    "xla": pool_xla,
    "manual": pool_manual,
    "im2col": pool_im2col,
    "shift_add": pool_shift_add,
    "banded": pool_shift_add,
    "winograd": pool_shift_add,
}


def _ceil_extra(fn: str, input_hw: Pair, extent: Pair, stride: Pair, pads: PadPairs) -> Pair:
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
    extra = _ceil_extra(fn, input_hw, extent, stride_hw, pads) if ceil_mode else (0, 0)
    grown = ((pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1]))
    if return_indices:
        y, indices = _max_with_indices(xb, window, stride_hw, grown, dilation_hw, layout)
        return (y, indices) if batched else (y[0], indices[0])
    if impl == "auto":
        impl = pool_impl(
            jax.default_backend(), input_hw=input_hw, window=window, stride=stride_hw, pads=grown
        )
        # JAX has no gradient for a dilated reduce_window max: the taps have one.
        impl = "shift_add" if dilation_hw != (1, 1) else impl
    y = CORES[impl](
        xb, mode=mode, window=window, stride=stride_hw, pads=grown, dilation=dilation_hw, layout=layout
    )
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


@partial(jax.jit, static_argnames=("window", "stride", "pads", "dilation", "layout"))
def _max_with_indices(
    x: jax.Array, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair, layout: str
) -> tuple[jax.Array, jax.Array]:
    """Max pooling and, per output, the flat index ``h * W + w`` of its maximum in the unpadded
    input (PyTorch's ``return_indices``; the first maximum in row-major window order wins ties)."""
    x = to_nchw(x, layout)
    n, c, h, w = x.shape
    flat = jnp.broadcast_to(jnp.arange(h * w, dtype=jnp.int32).reshape(1, 1, h, w), x.shape)
    padded = jnp.pad(x, ((0, 0), (0, 0), *pads), constant_values=-jnp.inf).transpose(0, 2, 3, 1)
    where = jnp.pad(flat, ((0, 0), (0, 0), *pads), constant_values=-1).transpose(0, 2, 3, 1)
    values = tap_slices(padded, window, stride, dilation)
    positions = tap_slices(where, window, stride, dilation)
    best, best_at = values[0], positions[0]
    for value, at in zip(values[1:], positions[1:], strict=True):
        better = value > best
        best, best_at = jnp.where(better, value, best), jnp.where(better, at, best_at)
    return from_nchw(best.transpose(0, 3, 1, 2), layout), from_nchw(best_at.transpose(0, 3, 1, 2), layout)


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
        unpadded input (int32, PyTorch's convention; for :func:`max_unpool2d`). Computed from the
        window taps whatever ``impl``.
      layout: ``"NCHW"`` or ``"NHWC"``.
      impl: ``"auto"`` (default, see :mod:`jaxconv.auto`), ``"xla"`` (``lax.reduce_window``),
        ``"manual"`` (the book's vmapped definition), ``"im2col"`` (stacked window taps reduced
        once) or ``"shift_add"`` (a running max/sum over the taps); ``"banded"`` and
        ``"winograd"``, convolution forms, pool as ``"shift_add"``.

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


def max_unpool2d(
    x: jax.Array,
    indices: jax.Array,
    kernel_size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    output_size: Sequence[int] | None = None,
    layout: str = "NCHW",
) -> jax.Array:
    """Puts each pooled value back where :func:`max_pool2d` (``return_indices=True``) found it;
    zeros elsewhere (PyTorch's ``max_unpool2d``).

    Args:
      x, indices: ``(N, C, H, W)`` (or unbatched, or ``NHWC``), the pooled values and their int
        flat indices into the ``(OH, OW)`` output.
      kernel_size, stride, padding: the pooling's; they give the default output size
        ``(H - 1) * stride - 2 * padding + kernel_size``.
      output_size: ``(OH, OW)`` (or with leading batch/channel sizes, as PyTorch accepts), to
        undo a pooling that rounded its input size down.

    Examples:
      >>> x = jnp.array([[[[1.0, 5.0], [3.0, 2.0]]]])
      >>> y, i = max_pool2d(x, 2, stride=1, return_indices=True)
      >>> max_unpool2d(y, i, 2, stride=1)
      Array([[[[0., 5.],
               [0., 0.]]]], dtype=float32)
    """
    fn = "max_unpool2d"
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    x = check_array(fn, "x", x, (3, 4))
    if not isinstance(indices, jax.Array | np.ndarray) or not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{fn}: indices must be an integer array, got {type(indices).__name__}")
    if indices.shape != x.shape:
        raise ValueError(f"{fn}: indices must have x's shape {tuple(x.shape)}, got {tuple(indices.shape)}")
    window = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    stride_hw = window if stride is None else to_pair(fn, "stride", stride, minimum=1)
    pad_hw = to_pair(fn, "padding", padding, minimum=0)
    batched = x.ndim == 4
    xb, ib = (
        to_nchw(x if batched else x[None], layout),
        to_nchw(jnp.asarray(indices if batched else indices[None]), layout),
    )
    n, c, h, w = xb.shape
    default = tuple(
        (m - 1) * s - 2 * p + k for m, s, p, k in zip((h, w), stride_hw, pad_hw, window, strict=True)
    )
    if output_size is None:
        out_hw = default
    else:
        out_hw = tuple(int(v) for v in tuple(output_size)[-2:])
        for axis, o, d, s in zip("HW", out_hw, default, stride_hw, strict=True):
            if not d - s < o < d + s:
                raise ValueError(
                    f"{fn}: output_size {tuple(output_size)} along {axis} must be within the stride {s} of "
                    f"the default size {d}"
                )
    flat = jnp.zeros((n * c, out_hw[0] * out_hw[1]), xb.dtype)
    rows = jnp.arange(n * c)[:, None]
    flat = flat.at[rows, ib.reshape(n * c, h * w)].set(xb.reshape(n * c, h * w), mode="drop")
    y = from_nchw(flat.reshape(n, c, *out_hw), layout)
    return y if batched else y[0]
