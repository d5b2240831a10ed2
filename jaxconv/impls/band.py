"""Convolution as stacked input rows times the kernel's band matrix: the doubly-blocked Toeplitz form.

Output row ``p`` needs only the ``kh`` input rows ``p * s + i * d``, and along a row the kernel acts
as a banded matrix ``(W * C, OW * O)``. A whole-row band multiplies mostly by zero on wide rows, so
the row is cut into tiles of ``T`` output columns reading ``span`` input columns; every tile uses the
same band ``(kh * span * C, T * O)``, and the stacked rows of all tiles ``(N * OH * tiles, kh * span
* C)`` meet it in one matmul whose output is already ``NHWC``. ``T = 1`` would be im2col; wider
tiles copy ``T * kw / span`` times less of the input for up to 2x the multiplications (the tile
rule, :func:`band_tile`), and the backward pass is two matmuls and row pads, with no patch scatter.
With few output channels (LeNet) the copies saved are worth more than the zeros multiplied.
It never calls ``lax.conv*``; autodiff gives the gradients.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._checks import Precision
from jaxconv.impls.common import (
    CORE_STATIC,
    dense_grouped_kernel,
    finish,
    overlapping_tiles,
    to_nhwc,
)
from jaxconv.impls.patch_product import patch_product
from jaxconv.spec import ConvSpec

# A band tile covers this many times the kernel's extent of input columns: wider tiles multiply
# by more zeros, narrower ones copy more (one tile per output column is im2col). 2 (at least half
# the multiplications useful) measured best on LeNet's layers (docs/performance.md, "The layer bench").
BAND_SPAN_PER_EXTENT = 2


def band_tile(out_width: int, kw: int, stride: int, dilation: int) -> int:
    """Output columns per band tile.

    The widest tile whose input span stays within ``BAND_SPAN_PER_EXTENT`` kernel extents is the
    limit. Below it, the widest tile that divides the row exactly, if one is at least half the
    limit; otherwise the limit's number of tiles spread evenly over the row, the last tile's extra
    columns padding.

    An exact tile leaves no padding columns to slice off the output and pad back onto its gradient,
    and ran faster forward+backward than the even spread (docs/performance.md, "The layer bench").

    Examples:
      >>> band_tile(10, 5, 1, 1)  # LeNet's second layer: 2 tiles of 5 columns, span 9
      5
      >>> band_tile(28, 5, 1, 1)  # its first: 7 tiles of 4, span 8 (6 would leave 2 columns over)
      4
      >>> band_tile(13, 5, 1, 1)  # nothing in 3..6 divides 13: 3 tiles of 5, the last 2 columns padding
      5
    """
    extent = (kw - 1) * dilation + 1
    widest = max(1, int((BAND_SPAN_PER_EXTENT - 1) * extent) // stride + 1)
    for tile in range(min(widest, out_width), -(-widest // 2) - 1, -1):
        if out_width % tile == 0:
            return tile
    tiles = -(-out_width // widest)
    return -(-out_width // tiles)


def band_span(tile: int, kw: int, stride: int, dilation: int) -> int:
    """Input columns a tile of ``tile`` output columns reads."""
    return (tile - 1) * stride + (kw - 1) * dilation + 1


def band_selector(width: int, out_width: int, kw: int, stride: int, dilation: int) -> np.ndarray:
    """``S (W, OW, kw)`` with ``S[v, q, j] = 1`` where input column ``v`` meets tap ``j`` at output
    column ``q`` (``v = q * stride + j * dilation``), else 0."""
    q, j = np.meshgrid(np.arange(out_width), np.arange(kw), indexing="ij")
    sel = np.zeros((width, out_width, kw), np.float32)
    sel[q * stride + j * dilation, q, j] = 1.0
    return sel


def band_matrix(w: jax.Array, width: int, out_width: int, stride: int, dilation: int) -> jax.Array:
    """The kernel ``w (kh, kw, C, O)`` spread into the band ``(kh * W * C, OW * O)`` that maps ``kh``
    stacked input rows ``(kh, W, C)`` to one output row ``(OW, O)``.

    Entry ``((i, v, c), (q, o))`` is ``w[i, j, c, o]`` where ``v = q * stride + j * dilation``, else
    0. Each entry is one kernel value or zero, so the selector product is exact (``HIGHEST``).
    """
    kh, kw, c, o = w.shape
    sel = jnp.asarray(band_selector(width, out_width, kw, stride, dilation), w.dtype)
    band = jnp.einsum("ijco,vqj->ivcqo", w, sel, precision=lax.Precision.HIGHEST)
    return band.reshape(kh * width * c, out_width * o)


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_banded(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution as stacked input rows times the kernel's band matrix; options canonical.

    The output row is cut into tiles of ``band_tile`` columns; all tiles share one band, so they
    are rows of one matmul ``(N * OH * tiles, kh * span * C) @ (kh * span * C, tile * O)``.
    """
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    dtype = x.dtype
    x, w = to_nhwc(x, w, layout)
    w = dense_grouped_kernel(w, groups)
    kh, kw, _, o = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    n, h, width, c = x.shape
    oh, ow = spec.output_hw
    tile = band_tile(ow, kw, stride[1], dilation[1])
    tiles = -(-ow // tile)
    span = band_span(tile, kw, stride[1], dilation[1])
    x = overlapping_tiles(x, tiles, tile * stride[1], span, axis=2)  # (N, H, tiles, span, C)
    rows = [
        lax.slice_in_dim(x, i * dilation[0], i * dilation[0] + (oh - 1) * stride[0] + 1, stride[0], axis=1)
        for i in range(kh)
    ]  # row i holds, at output row p, input row p * s + i * d: (N, OH, tiles, span, C)
    stacked = jnp.stack(rows, axis=3).reshape(n * oh * tiles, kh * span * c)
    band = band_matrix(w, span, tile, stride[1], dilation[1])
    y = patch_product(stacked, band, precision=precision)
    y = y.reshape(n, oh, tiles * tile, o)[:, :, :ow]
    return finish(y, b, dtype, layout)
