"""Convolution and pooling as sums over kernel taps: the fast hand-written implementations.

A ``kh x kw`` kernel has ``kh * kw`` taps. Tap ``(i, j)`` meets, at every output position, the
input element ``x[p * s + i * d]``; over all positions that is one strided slice of the padded
input, ``(N, OH, OW, C)``. A convolution is then the kernel's taps applied to their slices:

* ``im2col`` (the book's exercise "convolution as matrix multiplication"): concatenate the tap
  slices along channels into patches ``(N * OH * OW, kh * kw * C)`` and multiply once by the
  kernel reshaped to ``(kh * kw * C, O)``: one big matmul.
* ``shift_add``: one ``(N * OH * OW, C) @ (C, O)`` product per tap, summed: no patch matrix.
* ``banded`` (:mod:`jaxconv.impls.band`): the doubly-blocked Toeplitz form, stacked input rows times
  the kernel spread into a band matrix, built from overlapping blocks of the rows
  (:func:`jaxconv.impls.common.overlapping_tiles`).

Pooling is the same slices reduced with ``max`` or ``+`` (stacked for ``im2col``, a running
reduction for ``shift_add``). Neither calls ``lax.conv*`` or ``reduce_window``; autodiff gives the
gradients (a strided slice transposes to a strided pad), a max's through :func:`max_of_taps`' own
JVP, which routes each window's tangent from its first maximum only, as ``reduce_window`` does.
Both work in ``NHWC`` internally, where a tap slice's channels are contiguous, and transpose
``NCHW`` in and out; except im2col of an ungrouped 1x1 kernel in ``NCHW``, whose patches are the
input as it lies (one product per image).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import PadPairs, Pair, Precision, accumulation_dtype
from jaxconv.impls.common import CORE_STATIC, POOL_STATIC, finish, to_nhwc, valid_output_hw
from jaxconv.impls.patch_product import patch_product
from jaxconv.spec import ConvSpec, PoolSpec


def tap_slices(x: jax.Array, kernel: Pair, stride: Pair, dilation: Pair) -> list[jax.Array]:
    """The ``kh * kw`` strided views of a padded ``x (N, H, W, C)``, each ``(N, OH, OW, C)``.

    Slice ``i * kw + j`` holds, at output position ``(p, q)``, ``x[:, p*s_h + i*d_h, q*s_w + j*d_w]``.
    """
    n, h, w, c = x.shape
    oh, ow = valid_output_hw((h, w), kernel, stride, dilation)
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
# With fewer, the fused loop and its transpose (the col2im) move a few floats at a time, slower than
# the concatenate (docs/performance.md, "The layer bench").
MIN_FUSED_TAP_BYTES = 64


def stacked_taps(x: jax.Array, kernel: Pair, stride: Pair, dilation: Pair) -> jax.Array:
    """The tap slices of a padded ``x (N, H, W, C)`` stacked as ``(N, OH, OW, kh, kw, C)``: the patches
    of im2col, ``(N * OH * OW, kh * kw * C)`` once reshaped, in ``(i, j, c)`` order.

    With ``C`` filling ``MIN_FUSED_TAP_BYTES`` and at most ``MAX_FUSED_CONCATENATE`` taps along each
    axis, built as a concatenate of the kernel's rows along axis 3, each a concatenate of its taps
    along axis 4: neither runs along the minor axis nor has too many operands, so XLA's CPU backend
    fuses the slices and both stacks into one loop that writes the patches once. Concatenated along
    channels (the fallback), each tap slice is copied out first and the copies then concatenated,
    writing the patches twice.
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


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_im2col(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution as patches times kernel; options already canonical (see ``conv2d``).

    An ungrouped 1x1 kernel in ``NCHW`` runs as :func:`_pointwise_nchw`, without transposes.
    """
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    if layout == "NCHW" and w.shape[2:] == (1, 1) and groups == 1:
        return _pointwise_nchw(x, w, b, stride=stride, pads=pads, precision=precision)
    dtype = x.dtype
    x, w = to_nhwc(x, w, layout)
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
    return finish(y.reshape(n, oh, ow, o), b, dtype, layout)


def _pointwise_nchw(
    x: jax.Array, w: jax.Array, b: jax.Array | None, *, stride: Pair, pads: PadPairs, precision: Precision
) -> jax.Array:
    """An ungrouped 1x1 convolution of ``x (N, C, H, W)`` by ``w (O, C, 1, 1)`` -> ``(N, O, OH, OW)``.

    A 1x1 kernel's patches are the input itself, and in ``NCHW`` image ``n`` is already the matrix
    ``(C, H * W)`` of the book's 1x1 section, so ``y[n] = w (O, C) @ x[n]``: no patch copy and no
    transposes. The kernel is broadcast over the batch to make ``n`` a batch dimension of the
    product: its weight gradient is then one ``(O, H * W) @ (H * W, C)`` product per image, summed
    (the transpose of the broadcast), where a contraction over ``(n, h * w)`` would make XLA
    transpose the input and the output gradient first (slower forward+backward, docs/performance.md).
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


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_shift_add(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution as one small matmul per kernel tap, summed; options canonical."""
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    dtype = x.dtype
    x, w = to_nhwc(x, w, layout)
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
    return finish(y.reshape(*y.shape[:3], o), b, dtype, layout)


def pool_taps(x: jax.Array, *, spec: PoolSpec, stacked: bool) -> jax.Array:
    """Max (``x.dtype``) of, or sum (accumulation dtype) over, the window's tap slices of ``x``
    (padded with -inf / 0), in ``layout``.

    ``stacked=True`` stacks the slices and reduces once (im2col); ``False`` folds them one at a
    time (shift-and-add). A sum over windows that tile the (padded) input exactly, ``stride ==
    window``, is reduced over two axes of a reshape instead: the same taps, with a cheaper gradient.
    Averages are divided by the caller.
    """
    mode, layout = spec.mode, spec.layout
    window, stride, pads, dilation = spec.window, spec.stride, spec.pads, spec.dilation
    if layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    if mode == "max":
        x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
        y = max_of_taps(x, window, stride, dilation, stacked)
        return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y
    x = jnp.pad(x.astype(accumulation_dtype(x.dtype)), ((0, 0), *pads, (0, 0)))
    tiles = tile_windows(x, window, stride, dilation)
    if tiles is not None:
        y = tiles.sum(axis=(2, 4))
    elif stacked:
        y = jnp.stack(tap_slices(x, window, stride, dilation)).sum(axis=0)
    else:
        views = tap_slices(x, window, stride, dilation)
        y = views[0]
        for view in views[1:]:
            y = y + view
    return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y


def tile_windows(x: jax.Array, window: Pair, stride: Pair, dilation: Pair) -> jax.Array | None:
    """A padded ``x (N, H, W, C)`` as ``(N, OH, kh, OW, kw, C)`` where its windows tile it exactly
    (``stride == window``, undilated, dividing it): the taps are two axes of a reshape, with a cheaper
    gradient than slices; else None."""
    n, h, w, c = x.shape
    if stride != window or dilation != (1, 1) or h % window[0] or w % window[1]:
        return None
    return x.reshape(n, h // window[0], window[0], w // window[1], window[1], c)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def max_of_taps(x: jax.Array, window: Pair, stride: Pair, dilation: Pair, stacked: bool) -> jax.Array:
    """The windows' maxima of a padded ``x (N, H, W, C)``, ``(N, OH, OW, C)``.

    ``stacked`` reduces the stacked tap slices at once, else folds them with ``maximum``. The JVP
    (:func:`_max_of_taps_jvp`) takes each window's tangent from its first maximum in row-major
    window order, as ``reduce_window``'s gradient (``select_and_scatter``) and PyTorch's do, where
    autodiff of the fold would split a tie's gradient; on a CPU it runs several times faster than
    XLA's ``select_and_scatter`` (docs/performance.md, "Max pooling's gradient").
    """
    tiles = tile_windows(x, window, stride, dilation)
    if tiles is not None:
        return tiles.max(axis=(2, 4))
    views = tap_slices(x, window, stride, dilation)
    if stacked:
        return jnp.stack(views).max(axis=0)
    y = views[0]
    for view in views[1:]:
        y = jnp.maximum(y, view)
    return y


def first_max_tap(x: jax.Array, window: Pair, stride: Pair, dilation: Pair) -> tuple[jax.Array, jax.Array]:
    """The windows' maxima of a padded ``x (N, H, W, C)`` and, per window, its first maximal tap
    ``i * kw + j`` (``int32``), both ``(N, OH, OW, C)``: one variadic reduction over the stacked taps.
    """
    taps = stacked_taps(x, window, stride, dilation)  # (N, OH, OW, kh, kw, C)
    n, oh, ow, kh, kw, c = taps.shape
    taps = taps.reshape(n, oh, ow, kh * kw, c)
    index = lax.broadcasted_iota(jnp.int32, taps.shape, 3)

    def first_of_max(a: tuple, b: tuple) -> tuple:
        # A total order, so the reduction may run in any order: larger value first (NaN above
        # all, as ``max`` propagates it), then the smaller tap index.
        (a_value, a_index), (b_value, b_index) = a, b
        a_nan, b_nan = a_value != a_value, b_value != b_value
        larger = (b_value > a_value) | (b_nan & ~a_nan)
        tied = (b_value == a_value) | (b_nan & a_nan)
        take_b = larger | (tied & (b_index < a_index))
        return lax.select(take_b, b_value, a_value), lax.select(take_b, b_index, a_index)

    lowest = jnp.array(-jnp.inf, x.dtype)
    y, first = lax.reduce((taps, index), (lowest, jnp.int32(kh * kw)), first_of_max, (3,))
    return y, first


@max_of_taps.defjvp
def _max_of_taps_jvp(
    window: Pair, stride: Pair, dilation: Pair, stacked: bool, primals: tuple, tangents: tuple
) -> tuple[jax.Array, jax.Array]:
    """The tangent of each window's maximum is its first maximal tap's tangent: one select per tap.

    Linear in the tangent, so its transpose (the gradient) is one masked, strided pad of the output
    gradient per tap, summed, which XLA fuses into one loop over the input. That loop reads ``first``
    once per tap at shifted positions; computed by a reduction (:func:`first_max_tap`), ``first`` is
    written once, where XLA would fuse an elementwise ``where`` chain into the loop and recompute it
    for every tap (docs/performance.md, "Max pooling's gradient").
    """
    (x,), (dx,) = primals, tangents
    y, first = first_max_tap(x, window, stride, dilation)
    tangent_views = tap_slices(dx, window, stride, dilation)
    dy = tangent_views[0]
    for t, view in enumerate(tangent_views[1:], start=1):
        dy = jnp.where(first == t, view, dy)
    return y, dy


# The two pooling cores, both by the window's tap slices.
pool_im2col = jax.jit(partial(pool_taps, stacked=True), static_argnames=POOL_STATIC)
pool_shift_add = jax.jit(partial(pool_taps, stacked=False), static_argnames=POOL_STATIC)
