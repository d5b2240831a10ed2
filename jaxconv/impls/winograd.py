"""Winograd's minimal filtering: convolution with fewer multiplications (Lavin & Gray, 2016).

``F(m, r)`` computes ``m`` outputs of an ``r``-tap correlation from a tile of ``a = m + r - 1``
inputs with ``a`` multiplications instead of ``m * r``. In 2-D a tile of ``a x a`` inputs gives
``m x m`` outputs::

    Y = A^T [ (G g G^T) * (B^T d B) ] A

``B^T d B`` transforms an input tile, ``G g G^T`` the kernel (once), ``*`` is elementwise per
tile and, summed over input channels, one matmul per transformed position: ``a * a`` matmuls
``(tiles, C) @ (C, O)`` in place of im2col's ``(m * m * tiles, r * r * C) @ (r * r * C, O)``. With
``m = 4`` a 3x3 layer multiplies a quarter as often, a 5x5 one 4/25 as often; the transforms are small matmuls
over the tiles. The matrices come from Toom-Cook interpolation at the points
``0, 1, -1, 2, -2, 1/2, -1/2`` and infinity (:func:`toom_cook`), computed exactly in fractions.

The rest of convolution reduces to that stride-1, undilated core:

* dilation ``d`` (stride 1): output ``a + d * p`` only reads inputs ``a + d * j``, so the ``d``
  phases of the input are independent undilated convolutions, run as ``d * d`` batch entries;
* stride ``s``: kernel tap ``s * i + b`` only meets input ``s * (p + i) + b``, so the ``s * s``
  phases of input and kernel become channels of one stride-1 convolution (space-to-depth);
* both: the kernel is dilated with zeros, then the stride folded;
* kernels longer than ``MAX_TAPS`` along an axis: summed pieces of at most ``MAX_TAPS`` taps,
  which keeps the interpolation points small and the float32 error within ~1e-5 relative.

Autodiff gives the gradients: every step is a slice, a reshape or a matmul. The output tiles'
reshuffle into the image has a custom JVP only so that its transpose, in the backward pass, runs as
stacked slices (:func:`_untile`), which XLA's CPU backend runs faster than its own transpose loop
(docs/performance.md).
"""

from __future__ import annotations

from fractions import Fraction
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._checks import Pair, Precision
from jaxconv.impls.common import (
    CORE_STATIC,
    dense_grouped_kernel,
    finish,
    overlapping_tiles,
    to_nhwc,
)
from jaxconv.spec import ConvSpec

# Output tile per axis, and the most kernel taps one Winograd piece takes: F(4, 5) interpolates at
# 7 points (0, +-1, +-2, +-1/2). Measured float32 error against XLA, relative to the largest output:
# 2e-6 to 1e-5 on the bench's layers; more points (larger tiles or pieces) grow it and F(6, 3) was
# no faster than F(4, 3) on the ResNet layer.
TILE = 4
MAX_TAPS = 5
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2))


def _evaluation(points: tuple[Fraction, ...], n: int) -> list[list[Fraction]]:
    """``(len(points) + 1, n)``: a degree ``n - 1`` polynomial's coefficients -> its values at the
    points, then its leading coefficient (its "value at infinity")."""
    return [[p**i for i in range(n)] for p in points] + [[Fraction(int(i == n - 1)) for i in range(n)]]


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse by Gauss-Jordan elimination (the matrices are at most 8 x 8)."""
    n = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for i in range(n):
            if i != col and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [u - f * v for u, v in zip(rows[i], rows[col], strict=True)]
    return [row[n:] for row in rows]


def toom_cook(m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T (m, a), G (a, r), B^T (a, a))`` of ``F(m, r)``, ``a = m + r - 1``, in float64.

    For ``d (a,)`` and ``g (r,)``, ``A^T @ ((G @ g) * (B^T @ d))`` is the valid correlation
    ``y[i] = sum_j g[j] d[i + j]``. By the transposition principle: the linear convolution of
    ``g`` with ``h (m,)`` is ``V^-1 [(G g) * (A h)]`` (evaluate at the points, multiply,
    interpolate with the Vandermonde ``V``), and correlation is its transpose, so ``B^T = V^-T``.

    Raises:
      ValueError: ``m`` or ``r`` < 1, or ``a`` beyond the ``len(POINTS) + 1`` points.

    Examples:
      >>> at, g, bt = toom_cook(2, 3)  # F(2, 3): 4 multiplications for 2 outputs of 3 taps
      >>> d, k = np.arange(4.0), np.array([1.0, 2.0, 3.0])
      >>> at @ ((g @ k) * (bt @ d))
      array([ 8., 14.])
    """
    a = m + r - 1
    if m < 1 or r < 1 or a > len(POINTS) + 1:
        raise ValueError(f"toom_cook: need m, r >= 1 and m + r - 1 <= {len(POINTS) + 1}, got m={m}, r={r}")
    points = POINTS[: a - 1]
    at = np.array(_evaluation(points, m), dtype=np.float64).T
    g = np.array(_evaluation(points, r), dtype=np.float64)
    bt = np.array(_inverse(_evaluation(points, a)), dtype=np.float64).T
    return at, g, bt


def _transforms(kernel: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2-D transforms for a ``(kh, kw)`` kernel, Kronecker products of the 1-D ones acting on
    row-major flattened tiles: ``A2 (m*m, ah*aw)``, ``G2 (ah*aw, kh*kw)``, ``B2 (ah*aw, ah*aw)``."""
    (at_h, g_h, bt_h), (at_w, g_w, bt_w) = (toom_cook(TILE, r) for r in kernel)
    return np.kron(at_h, at_w), np.kron(g_h, g_w), np.kron(bt_h, bt_w)


def _valid(x: jax.Array, w: jax.Array, precision: Precision, out_layout: str) -> jax.Array:
    """Valid, stride-1, undilated correlation ``x (N, H, W, C)`` * ``w (kh, kw, C, O)`` ->
    ``(N, H - kh + 1, W - kw + 1, O)`` (``(N, O, ...)`` for ``out_layout="NCHW"``) by ``F(TILE, k)``
    tiles; ``kh, kw <= MAX_TAPS``."""
    n, h, width, c = x.shape
    kh, kw, _, o = w.shape
    oh, ow = h - kh + 1, width - kw + 1
    th, tw = -(-oh // TILE), -(-ow // TILE)
    ah, aw = TILE + kh - 1, TILE + kw - 1
    a2, g2, b2 = (jnp.asarray(t, x.dtype) for t in _transforms((kh, kw)))
    exact = lax.Precision.HIGHEST  # the transforms' entries are small fractions: keep them float32
    tiles = overlapping_tiles(x, tw, TILE, aw, axis=2)  # (N, H, tw, aw, C)
    tiles = overlapping_tiles(tiles, th, TILE, ah, axis=1)  # (N, th, ah, tw, aw, C)
    tiles = tiles.transpose(2, 4, 0, 1, 3, 5).reshape(ah * aw, -1)
    u = jnp.dot(b2, tiles, precision=exact).reshape(ah * aw, n * th * tw, c)
    v = jnp.dot(g2, w.reshape(kh * kw, c * o), precision=exact).reshape(ah * aw, c, o)
    prod = jnp.einsum("tpc,tco->tpo", u, v, precision=precision)  # one (tiles, C) @ (C, O) per position
    y = jnp.dot(a2, prod.reshape(ah * aw, -1), precision=exact)
    # The tiles straight into NCHW: one transpose each way, not two (docs/performance.md).
    if out_layout == "NCHW":
        y = y.reshape(TILE, TILE, n, th, tw, o).transpose(2, 5, 3, 0, 4, 1)
        return y.reshape(n, o, th * TILE, tw * TILE)[:, :, :oh, :ow]
    return _untile(y, (n, th, tw, o))[:, :oh, :ow]


def _tile_major(y: jax.Array, grid: tuple[int, int, int, int]) -> jax.Array:
    """``y (N, th * TILE, tw * TILE, O)`` -> ``(TILE * TILE, N * th * tw * O)``, output tile position
    first, as a stack of one slice per position, which XLA's CPU backend runs faster than its loop for
    the same transpose (docs/performance.md)."""
    n, th, tw, o = grid
    y = y.reshape(n, th, TILE, tw, TILE, o).transpose(0, 1, 3, 2, 4, 5).reshape(n * th * tw, TILE * TILE, o)
    return jnp.stack([y[:, k] for k in range(TILE * TILE)]).reshape(TILE * TILE, -1)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _untile(tiles: jax.Array, grid: tuple[int, int, int, int]) -> jax.Array:
    """``(TILE * TILE, N * th * tw * O)`` output tiles -> ``(N, th * TILE, tw * TILE, O)``.

    The inverse of :func:`_tile_major` and, a permutation, its transpose. This direction is a fast
    transpose for XLA's CPU loop; the custom JVP makes the gradient (the transpose of its tangent
    map) :func:`_tile_major`'s stacked slices instead of the slow reverse transpose.
    """
    n, th, tw, o = grid
    return (
        tiles.reshape(TILE, TILE, n, th, tw, o)
        .transpose(2, 3, 0, 4, 1, 5)
        .reshape(n, th * TILE, tw * TILE, o)
    )


@_untile.defjvp
def _untile_jvp(
    grid: tuple[int, int, int, int], primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (tiles,), (tiles_dot,) = primals, tangents
    n, th, tw, o = grid
    image = jax.ShapeDtypeStruct((n, th * TILE, tw * TILE, o), tiles.dtype)
    # Written as the transpose of _tile_major, so that transposing it back gives _tile_major itself.
    (y_dot,) = jax.linear_transpose(partial(_tile_major, grid=grid), image)(tiles_dot)
    return _untile(tiles, grid), y_dot


def _pieces(x: jax.Array, w: jax.Array, precision: Precision, out_layout: str = "NHWC") -> jax.Array:
    """:func:`_valid` for any kernel: a sum over pieces of at most ``MAX_TAPS x MAX_TAPS`` taps,
    each meeting the input shifted by its offset."""
    kh, kw = w.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = None
    for i in range(0, kh, MAX_TAPS):
        for j in range(0, kw, MAX_TAPS):
            piece = w[i : i + MAX_TAPS, j : j + MAX_TAPS]
            ph, pw = piece.shape[:2]
            term = _valid(x[:, i : i + oh + ph - 1, j : j + ow + pw - 1], piece, precision, out_layout)
            y = term if y is None else y + term
    assert y is not None  # a kernel has at least one tap
    return y


def _dilate_kernel(w: jax.Array, dilation: Pair) -> jax.Array:
    """``w (kh, kw, C, O)`` with ``d - 1`` zero taps between taps: ``((kh-1)*dh + 1, ...)``."""
    kh, kw = w.shape[:2]
    out = jnp.zeros(((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1, *w.shape[2:]), w.dtype)
    return out.at[:: dilation[0], :: dilation[1]].set(w)


def _fit(x: jax.Array, hw: Pair) -> jax.Array:
    """``x (N, H, W, C)`` cropped or zero-padded at the bottom/right to ``hw``."""
    x = x[:, : hw[0], : hw[1]]
    return jnp.pad(x, ((0, 0), (0, hw[0] - x.shape[1]), (0, hw[1] - x.shape[2]), (0, 0)))


def _strided(
    x: jax.Array, w: jax.Array, out_hw: Pair, stride: Pair, precision: Precision, out_layout: str
) -> jax.Array:
    """Undilated correlation with ``stride`` as a stride-1 one over the ``sh * sw`` phases of
    input and kernel stacked as channels (space-to-depth); ``out_hw`` is the output size, the
    output in ``out_layout``."""
    (sh, sw), (kh, kw, c, o) = stride, w.shape
    if (sh, sw) == (1, 1):
        return _pieces(x, w, precision, out_layout)
    qh, qw = -(-kh // sh), -(-kw // sw)  # taps per phase; the last phases are zero-padded
    w = jnp.pad(w, ((0, qh * sh - kh), (0, qw * sw - kw), (0, 0), (0, 0)))
    w = w.reshape(qh, sh, qw, sw, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(qh, qw, sh * sw * c, o)
    lh, lw = out_hw[0] + qh - 1, out_hw[1] + qw - 1  # input rows/columns per phase
    x = _fit(x, (lh * sh, lw * sw)).reshape(x.shape[0], lh, sh, lw, sw, c)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(x.shape[0], lh, lw, sh * sw * c)
    return _pieces(x, w, precision, out_layout)


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_winograd(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution by Winograd's ``F(4, r)`` tiles; options canonical (see ``conv2d``)."""
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    dtype = x.dtype
    x, w = to_nhwc(x, w, layout)
    w = dense_grouped_kernel(w, groups)
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    n, h, width, _ = x.shape
    kh, kw = w.shape[:2]
    oh, ow = spec.output_hw
    if dilation != (1, 1) and stride == (1, 1):  # the input's phases as batch entries
        dh, dw = dilation
        ph, pw = -(-oh // dh), -(-ow // dw)  # outputs per phase
        lh, lw = ph + kh - 1, pw + kw - 1
        x = _fit(x, (lh * dh, lw * dw)).reshape(n, lh, dh, lw, dw, -1)
        x = x.transpose(2, 4, 0, 1, 3, 5).reshape(dh * dw * n, lh, lw, -1)
        y = _pieces(x, w, precision).reshape(dh, dw, n, ph, pw, -1)
        y = y.transpose(2, 3, 0, 4, 1, 5).reshape(n, ph * dh, pw * dw, -1)
        return finish(y[:, :oh, :ow], b, dtype, layout)
    if dilation != (1, 1):
        w = _dilate_kernel(w, dilation)
    y = _strided(x, w, (oh, ow), stride, precision, layout)  # (oh, ow) exactly, already in layout
    return finish(y, b, dtype, layout, y_in_layout=True)
