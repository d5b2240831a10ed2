"""Where each maximum of max pooling came from, and putting pooled values back there.

:func:`jaxconv.max_pool2d` ``(..., return_indices=True)`` returns, per output, the flat index
``h * W + w`` of its maximum in the unpadded input (PyTorch's convention); :func:`max_unpool2d`
scatters pooled values back to those indices (PyTorch's ``max_unpool2d``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._checks import LAYOUTS, PadPairs, Pair, check_array, check_choice, to_pair
from jaxconv.impls.taps import tap_slices
from jaxconv.layout import from_nchw, to_nchw


@partial(jax.jit, static_argnames=("window", "stride", "pads", "dilation", "layout"))
def max_with_indices(
    x: jax.Array, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair, layout: str
) -> tuple[jax.Array, jax.Array]:
    """Max pooling of a batched ``x`` and, per output, the flat index ``h * W + w`` of its maximum in
    the unpadded input (PyTorch's ``return_indices``; the first maximum in row-major window order wins
    ties). Options canonical: ``pads`` already hold ``ceil_mode``'s extra rows and columns.

    Returns ``(values, indices int32)``, both ``(N, C, OH, OW)`` in ``layout``. Computed from the
    window's tap slices whatever the ``impl`` (one running comparison per tap).
    """
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
    """Puts each pooled value back where :func:`jaxconv.max_pool2d` (``return_indices=True``) found it;
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
      >>> y, i = jc.max_pool2d(x, 2, stride=1, return_indices=True)
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
