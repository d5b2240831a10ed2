"""What the hand-written convolution cores share: their static options, the NHWC working layout, the
bias-and-cast epilogue, grouped kernels made dense, and overlapping tiles of an axis.

Every core has one keyword signature, ``core(x, w, b, *, spec, precision)``, the call described by a
:class:`jaxconv.spec.ConvSpec`, jitted with both static (:data:`CORE_STATIC`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._checks import Pair, accumulation_dtype

# The static keyword arguments of every convolution core (the call's description and the precision), and
# of every pooling core.
CORE_STATIC = ("spec", "precision")
POOL_STATIC = ("spec",)


def valid_output_hw(padded_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    """``(OH, OW)`` of a valid correlation over an already padded input."""
    sizes = zip(padded_hw, kernel, stride, dilation, strict=True)
    oh, ow = ((n - (k - 1) * d - 1) // s + 1 for n, k, s, d in sizes)
    return oh, ow


def to_nhwc(x: jax.Array, w: jax.Array, layout: str) -> tuple[jax.Array, jax.Array]:
    """``x`` to ``NHWC`` and ``w`` to ``HWIO`` whatever the layout, in the accumulation dtype.

    Half-precision operands are widened before the matmuls: XLA's CPU dot has no bf16 x bf16 -> f32.
    """
    acc = accumulation_dtype(x.dtype)
    x, w = x.astype(acc), w.astype(acc)
    if layout == "NCHW":
        return x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    return x, w


def finish(
    y: jax.Array, b: jax.Array | None, dtype: jnp.dtype, layout: str, *, y_in_layout: bool = False
) -> jax.Array:
    """Adds the bias to ``y``, casts back to the input dtype, returns in ``layout``. ``y`` is
    ``(N, OH, OW, O)``, or already in ``layout`` with ``y_in_layout=True``."""
    y_layout = layout if y_in_layout else "NHWC"
    if b is not None:
        bias = b.astype(y.dtype)
        if y_layout == "NCHW":
            y = y + bias[None, :, None, None]
        else:
            # Added to the (N * OH * OW, O) view: XLA's CPU loop fusion of the bias with a following
            # sigmoid then runs over that 2-D shape, whose exp it vectorizes; over (N, OH, OW, O) it
            # did not (docs/performance.md, "Measurements behind the code's rules").
            y = (y.reshape(math.prod(y.shape[:-1]), y.shape[-1]) + bias[None, :]).reshape(y.shape)
    y = y.astype(dtype)
    return y.transpose(0, 3, 1, 2) if y_layout != layout else y


def dense_grouped_kernel(w: jax.Array, groups: int) -> jax.Array:
    """A grouped kernel ``(kh, kw, C / groups, O)`` as the dense ``(kh, kw, C, O)`` it acts as:
    block-diagonal, input channel ``c`` feeding only its group's outputs. Unchanged for 1 group."""
    if groups == 1:
        return w
    cpg, o = w.shape[2:]
    mask = np.kron(np.eye(groups, dtype=np.float32), np.ones((cpg, o // groups), np.float32))
    return jnp.tile(w, (1, 1, groups, 1)) * jnp.asarray(mask, w.dtype)[None, None]


def overlapping_tiles(x: jax.Array, tiles: int, step: int, span: int, axis: int) -> jax.Array:
    """Splits ``axis`` of ``x`` into ``(tiles, span)``: tile ``k`` holds entries ``k * step`` to
    ``k * step + span - 1``, zero beyond the axis' end. Tiles overlap by ``span - step`` entries: each
    is a block of a reshape plus the head of the next block (one slice per block when that is too
    short), so the gradient is a reshape plus a few pads rather than one pad per tile position.

    Examples:
      >>> overlapping_tiles(jnp.arange(7.0), tiles=2, step=4, span=6, axis=0)
      Array([[0., 1., 2., 3., 4., 5.],
             [4., 5., 6., 0., 0., 0.]], dtype=float32)
    """
    length = x.shape[axis]
    blocks = tiles + -(-(span - step) // step)  # enough step-wide blocks to reach the last tile's end
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, max(0, blocks * step - length))
    x = lax.slice_in_dim(jnp.pad(x, widths), 0, blocks * step, axis=axis)
    blocked = x.reshape(*x.shape[:axis], blocks, step, *x.shape[axis + 1 :])
    parts = [lax.slice_in_dim(blocked, 0, tiles, axis=axis)]
    for k in range(1, blocks - tiles + 1):  # the heads of the next blocks, a block at a time
        head = lax.slice_in_dim(blocked, 0, min(step, span - k * step), axis=axis + 1)
        parts.append(lax.slice_in_dim(head, k, k + tiles, axis=axis))
    return lax.slice_in_dim(jnp.concatenate(parts, axis=axis + 1), 0, span, axis=axis + 1)
