"""Convolution and pooling as sums over kernel taps: the fast hand-written implementations.

A ``kh x kw`` kernel has ``kh * kw`` taps. Tap ``(i, j)`` meets, at every output position, the
input element ``x[p * s + i * d]``; over all positions that is one strided slice of the padded
input, ``(N, OH, OW, C)``. A convolution is then the kernel's taps applied to their slices:

* ``im2col`` (the book's exercise "convolution as matrix multiplication"): concatenate the tap
  slices along channels into patches ``(N * OH * OW, kh * kw * C)`` and multiply once by the
  kernel reshaped to ``(kh * kw * C, O)``: one big matmul.
* ``shift_add``: one ``(N * OH * OW, C) @ (C, O)`` product per tap, summed: no patch matrix.

Pooling is the same slices reduced with ``max`` or ``+`` (stacked for ``im2col``, a running
reduction for ``shift_add``). Neither calls ``lax.conv*`` or ``reduce_window``; autodiff gives the
gradients (a strided slice transposes to a strided pad). Both work in ``NHWC`` internally,
where a tap slice's channels are contiguous, and transpose ``NCHW`` in and out.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import PadPairs, Pair, Precision, accumulation_dtype

_STATIC = ("stride", "pads", "dilation", "groups", "layout", "precision")


def tap_slices(x: jax.Array, kernel: Pair, stride: Pair, dilation: Pair) -> list[jax.Array]:
    """The ``kh * kw`` strided views of a padded ``x (N, H, W, C)``, each ``(N, OH, OW, C)``.

    Slice ``i * kw + j`` holds, at output position ``(p, q)``, ``x[:, p*s_h + i*d_h, q*s_w + j*d_w]``.
    """
    n, h, w, c = x.shape
    oh = (h - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (w - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
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


def _to_nhwc(x: jax.Array, w: jax.Array, layout: str) -> tuple[jax.Array, jax.Array]:
    """``x`` to ``NHWC`` and ``w`` to ``HWIO`` whatever the layout, in the accumulation dtype.

    Half-precision operands are widened before the matmuls: XLA's CPU dot has no bf16 x bf16 -> f32.
    """
    acc = accumulation_dtype(x.dtype)
    x, w = x.astype(acc), w.astype(acc)
    if layout == "NCHW":
        return x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    return x, w


def _finish(y: jax.Array, b: jax.Array | None, dtype: jnp.dtype, layout: str) -> jax.Array:
    """Adds the bias to ``y (N, OH, OW, O)``, casts back to the input dtype, returns in ``layout``."""
    if b is not None:
        y = y + b.astype(y.dtype)[None, None, None, :]
    y = y.astype(dtype)
    return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y


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
    """Batched convolution as patches times kernel; options already canonical (see ``conv2d``)."""
    dtype = x.dtype
    x, w = _to_nhwc(x, w, layout)
    kh, kw, cpg, o = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    acc = accumulation_dtype(x.dtype)
    taps = tap_slices(x, (kh, kw), stride, dilation)
    n, oh, ow, c = taps[0].shape
    if groups == 1:
        patches = jnp.concatenate(taps, axis=-1).reshape(n * oh * ow, kh * kw * c)
        y = jnp.dot(patches, w.reshape(kh * kw * c, o), precision=precision, preferred_element_type=acc)
    else:  # one matmul per group, batched: patches (M, G, T*Cg) x kernel (G, T*Cg, O/G)
        patches = jnp.stack(taps, axis=3).reshape(n * oh * ow, kh * kw, groups, cpg)
        patches = patches.transpose(0, 2, 1, 3).reshape(n * oh * ow, groups, kh * kw * cpg)
        kernel = w.reshape(kh * kw, cpg, groups, o // groups).transpose(2, 0, 1, 3)
        kernel = kernel.reshape(groups, kh * kw * cpg, o // groups)
        y = jnp.einsum("mgk,gko->mgo", patches, kernel, precision=precision, preferred_element_type=acc)
    return _finish(y.reshape(n, oh, ow, o), b, dtype, layout)


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
