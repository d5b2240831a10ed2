"""Convolution and pooling as sums over kernel taps: the fast hand-written implementations.

A ``kh x kw`` kernel has ``kh * kw`` taps. Tap ``(i, j)`` meets, at every output position, the
input element ``x[p * s + i * d]``; over all positions that is one strided slice of the padded
input, ``(N, OH, OW, C)``. A convolution is then the kernel's taps applied to their slices:

* ``im2col`` (the book's exercise "convolution as matrix multiplication"): concatenate the tap
  slices along channels into patches ``(N * OH * OW, kh * kw * C)`` and multiply once by the
  kernel reshaped to ``(kh * kw * C, O)``: one big matmul.
* ``shift_add``: one ``(N * OH * OW, C) @ (C, O)`` product per tap, summed: no patch matrix.
* ``banded`` (:mod:`jaxconv.band`): the doubly-blocked Toeplitz form, stacked input rows times the
  kernel spread into a band matrix, built from the same blocks (:func:`overlapping_tiles`).

Pooling is the same slices reduced with ``max`` or ``+`` (stacked for ``im2col``, a running
reduction for ``shift_add``). Neither calls ``lax.conv*`` or ``reduce_window``; autodiff gives the
gradients (a strided slice transposes to a strided pad). Both work in ``NHWC`` internally,
where a tap slice's channels are contiguous, and transpose ``NCHW`` in and out; except im2col of an
ungrouped 1x1 kernel in ``NCHW``, whose patches are the input as it lies (one product per image).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._checks import PadPairs, Pair, Precision, accumulation_dtype
from jaxconv.patch_product import patch_product

_STATIC = ("stride", "pads", "dilation", "groups", "layout", "precision")


def _output_hw(padded_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    """``(OH, OW)`` of a valid correlation over an already padded input."""
    sizes = zip(padded_hw, kernel, stride, dilation, strict=True)
    oh, ow = ((n - (k - 1) * d - 1) // s + 1 for n, k, s, d in sizes)
    return oh, ow


def tap_slices(x: jax.Array, kernel: Pair, stride: Pair, dilation: Pair) -> list[jax.Array]:
    """The ``kh * kw`` strided views of a padded ``x (N, H, W, C)``, each ``(N, OH, OW, C)``.

    Slice ``i * kw + j`` holds, at output position ``(p, q)``, ``x[:, p*s_h + i*d_h, q*s_w + j*d_w]``.
    """
    n, h, w, c = x.shape
    oh, ow = _output_hw((h, w), kernel, stride, dilation)
    views = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            views.append(
                lax.slice(
                    x,
                    (0, top, left, 0),
                    (n, top + (oh - 1) * stride[0] + 1, left + (ow - 1) * stride[1] + 1, c),
                    (1, stride[0], stride[1], 1),
                )
            )
    return views


# XLA's CPU fusion pass (``cpu_instruction_fusion.cc``) never fuses a concatenate of more than this
# many operands, nor one along the minor dimension: those run as a copy of operands it first
# materialises, so a patch matrix concatenated along channels is written twice.
MAX_FUSED_CONCATENATE = 8
# Taps whose channels fill at least this many bytes are stacked in one fusion (:func:`stacked_taps`).
# With fewer, the fused loop and its transpose (the col2im) move a few floats at a time: LeNet's
# 6-channel second layer ran 0.82-0.91x forward+backward through im2col so; 16-100 channels
# 0.99-1.14x, the largest layers the most (docs/performance.md, "The layer bench").
MIN_FUSED_TAP_BYTES = 64


def stacked_taps(x: jax.Array, kernel: Pair, stride: Pair, dilation: Pair) -> jax.Array:
    """The tap slices of a padded ``x (N, H, W, C)`` stacked as ``(N, OH, OW, kh, kw, C)``: the patches
    of im2col, ``(N * OH * OW, kh * kw * C)`` once reshaped, in ``(i, j, c)`` order.

    With ``C`` filling ``MIN_FUSED_TAP_BYTES`` and at most ``MAX_FUSED_CONCATENATE`` taps along each
    axis, built as a concatenate of the kernel's rows along axis 3, each a concatenate of its taps
    along axis 4: neither runs along the minor axis nor has too many operands, so XLA's CPU backend
    fuses the slices and both stacks into one loop that writes the patches once. Concatenated along
    channels (the fallback), each tap slice is copied out first and the copies then concatenated:
    the ResNet stride-2 layer's patches (58 MB) took 14.3 ms so against 5.8 ms.
    """
    views = tap_slices(x, kernel, stride, dilation)
    (kh, kw), c = kernel, x.shape[3]
    if max(kh, kw) > MAX_FUSED_CONCATENATE or c * x.dtype.itemsize < MIN_FUSED_TAP_BYTES:
        return jnp.concatenate(views, axis=-1).reshape(*views[0].shape[:3], kh, kw, c)
    rows = [
        jnp.concatenate([v[:, :, :, None, None, :] for v in views[i * kw : (i + 1) * kw]], axis=4)
        for i in range(kh)
    ]
    return jnp.concatenate(rows, axis=3)


def _to_nhwc(x: jax.Array, w: jax.Array, layout: str) -> tuple[jax.Array, jax.Array]:
    """``x`` to ``NHWC`` and ``w`` to ``HWIO`` whatever the layout, in the accumulation dtype.

    Half-precision operands are widened before the matmuls: XLA's CPU dot has no bf16 x bf16 -> f32.
    """
    acc = accumulation_dtype(x.dtype)
    x, w = x.astype(acc), w.astype(acc)
    if layout == "NCHW":
        return x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    return x, w


def _finish(
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
            # did not (LeNet's conv2: 565 vs 211 us alone; the book recipe's step 1.04-1.06x,
            # docs/performance.md).
            y = (y.reshape(math.prod(y.shape[:-1]), y.shape[-1]) + bias[None, :]).reshape(y.shape)
    y = y.astype(dtype)
    return y.transpose(0, 3, 1, 2) if y_layout != layout else y


@partial(jax.jit, static_argnames=_STATIC)
def conv2d_im2col(
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
    """Batched convolution as patches times kernel; options already canonical (see ``conv2d``).

    An ungrouped 1x1 kernel in ``NCHW`` runs as :func:`_pointwise_nchw`, without transposes.
    """
    if layout == "NCHW" and w.shape[2:] == (1, 1) and groups == 1:
        return _pointwise_nchw(x, w, b, stride=stride, pads=pads, precision=precision)
    dtype = x.dtype
    x, w = _to_nhwc(x, w, layout)
    kh, kw, cpg, o = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    acc = accumulation_dtype(x.dtype)
    taps = stacked_taps(x, (kh, kw), stride, dilation)  # (N, OH, OW, kh, kw, C)
    n, oh, ow, *_, c = taps.shape
    if groups == 1:
        patches = taps.reshape(n * oh * ow, kh * kw * c)
        y = patch_product(patches, w.reshape(kh * kw * c, o), precision=precision)
    else:  # one matmul per group, batched: patches (M, G, T*Cg) x kernel (G, T*Cg, O/G)
        patches = taps.reshape(n * oh * ow, kh * kw, groups, cpg)
        patches = patches.transpose(0, 2, 1, 3).reshape(n * oh * ow, groups, kh * kw * cpg)
        kernel = w.reshape(kh * kw, cpg, groups, o // groups).transpose(2, 0, 1, 3)
        kernel = kernel.reshape(groups, kh * kw * cpg, o // groups)
        y = jnp.einsum("mgk,gko->mgo", patches, kernel, precision=precision, preferred_element_type=acc)
    return _finish(y.reshape(n, oh, ow, o), b, dtype, layout)


def _pointwise_nchw(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, stride: Pair, pads: PadPairs, precision: Precision
) -> jax.Array:
    """An ungrouped 1x1 convolution of ``x (N, C, H, W)`` by ``w (O, C, 1, 1)`` -> ``(N, O, OH, OW)``.

    A 1x1 kernel's patches are the input itself, and in ``NCHW`` image ``n`` is already the matrix
    ``(C, H * W)`` of the book's 1x1 section, so ``y[n] = w (O, C) @ x[n]``: no patch copy and no
    transposes. The kernel is broadcast over the batch to make ``n`` a batch dimension of the
    product: its weight gradient is then one ``(O, H * W) @ (H * W, C)`` product per image, summed
    (the transpose of the broadcast), where a contraction over ``(n, h * w)`` would make XLA
    transpose the input and the output gradient first (1.4-2x slower forward+backward, docs/performance.md).
    """
    dtype, acc = x.dtype, accumulation_dtype(x.dtype)
    x = jnp.pad(x.astype(acc), ((0, 0), (0, 0), *pads))
    x = x[:, :, :: stride[0], :: stride[1]]
    n, c, oh, ow = x.shape
    o = w.shape[0]
    kernel = jnp.broadcast_to(w.astype(acc).reshape(o, c), (n, o, c))
    y = lax.dot_general(
        kernel, x.reshape(n, c, oh * ow), (((2,), (1,)), ((0,), (0,))), precision=precision,
        preferred_element_type=acc,
    )  # fmt: skip
    y = y.reshape(n, o, oh, ow)
    if b is not None:
        y = y + b.astype(acc)[None, :, None, None]
    return y.astype(dtype)


@partial(jax.jit, static_argnames=_STATIC)
def conv2d_shift_add(
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
    """Batched convolution as one small matmul per kernel tap, summed; options canonical."""
    dtype = x.dtype
    x, w = _to_nhwc(x, w, layout)
    kh, kw, cpg, o = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    acc = accumulation_dtype(x.dtype)
    y = None
    for t, view in enumerate(tap_slices(x, (kh, kw), stride, dilation)):
        n, oh, ow, _ = view.shape
        tap = w[t // kw, t % kw].reshape(cpg, groups, o // groups)  # (Cg, G, O/G)
        term = jnp.einsum(
            "nhwgc,cgo->nhwgo",
            view.reshape(n, oh, ow, groups, cpg),
            tap,
            precision=precision,
            preferred_element_type=acc,
        )
        y = term if y is None else y + term
    assert y is not None  # a kernel has at least one tap
    return _finish(y.reshape(*y.shape[:3], o), b, dtype, layout)


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


def pool_taps(
    x: jax.Array, *, mode: str, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair, layout: str,
    stacked: bool,
) -> jax.Array:  # fmt: skip
    """Max (``x.dtype``) of, or sum (accumulation dtype) over, the window's tap slices of ``x``
    (padded with -inf / 0), in ``layout``.

    ``stacked=True`` stacks the slices and reduces once (im2col); ``False`` folds them one at a
    time (shift-and-add). Windows that tile the (padded) input exactly, ``stride == window``, are
    reduced as axes of a reshape instead: the same taps, with a cheaper gradient. Averages are
    divided by the caller.
    """
    if layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    fill = -jnp.inf if mode == "max" else 0.0
    x = jnp.pad(x.astype(accumulation_dtype(x.dtype)) if mode == "avg" else x,
                ((0, 0), *pads, (0, 0)), constant_values=fill)  # fmt: skip
    n, h, w, c = x.shape
    if stride == window and dilation == (1, 1) and h % window[0] == 0 and w % window[1] == 0:
        # Non-overlapping windows tile the input: the taps are two axes of a reshape.
        tiles = x.reshape(n, h // window[0], window[0], w // window[1], window[1], c)
        y = tiles.max(axis=(2, 4)) if mode == "max" else tiles.sum(axis=(2, 4))
        return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y
    views = tap_slices(x, window, stride, dilation)
    op = jnp.maximum if mode == "max" else jnp.add
    if stacked:
        stack = jnp.stack(views)
        y = stack.max(axis=0) if mode == "max" else stack.sum(axis=0)
    else:
        y = views[0]
        for view in views[1:]:
            y = op(y, view)
    return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y
