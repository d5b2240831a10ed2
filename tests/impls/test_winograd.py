"""Winograd's F(m, r): the Toom-Cook matrices by their defining identity, and the convolution built
on them against the float64 loop, through every option it reduces to the stride-1 core."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.impls import winograd
from tests import reference


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("r", [1, 2, 3, 4, 5])
def test_toom_cook_computes_the_valid_correlation(m, r):
    at, g, bt = winograd.toom_cook(m, r)
    a = m + r - 1
    assert at.shape == (m, a) and g.shape == (a, r) and bt.shape == (a, a)
    rng = np.random.default_rng(m * 10 + r)
    for _ in range(3):
        d, k = rng.standard_normal(a), rng.standard_normal(r)
        np.testing.assert_allclose(
            at @ ((g @ k) * (bt @ d)), np.correlate(d, k, "valid"), rtol=1e-12, atol=1e-12
        )


def test_toom_cook_f23_is_lavin_and_grays_up_to_scaling():
    # The published F(2, 3) (Lavin & Gray 2016, eq. 7) scales its multiplications differently (the
    # 1/2 factors in G, the last one's sign in A^T and B^T); each multiplication k is the same
    # rank-one term A^T[:, k] (x) G[k] (x) B^T[k].
    at, g, bt = winograd.toom_cook(2, 3)
    lavin_at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    lavin_g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    lavin_bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    terms = "ik,kr,ka->kira"
    np.testing.assert_allclose(np.einsum(terms, at, g, bt), np.einsum(terms, lavin_at, lavin_g, lavin_bt))


@pytest.mark.parametrize(("m", "r"), [(0, 3), (2, 0), (4, 6)])
def test_toom_cook_rejects_sizes_without_enough_points(m, r):
    with pytest.raises(ValueError, match=rf"toom_cook: need m, r >= 1 .* got m={m}, r={r}"):
        winograd.toom_cook(m, r)


@given(
    kernel=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    groups=st.sampled_from([1, 2]),
    padding=st.integers(0, 2),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    seed=st.integers(0, 2**16),
)
def test_winograd_matches_the_float64_reference(kernel, stride, dilation, groups, padding, layout, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 15, 13))
    w = rng.standard_normal((4, 4 // groups, *kernel))
    b = rng.standard_normal(4)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if min(15, 13) + 2 * padding < max(extent):
        return  # the kernel does not fit: conv2d's own error, tested elsewhere
    expected = reference.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xs, ws = (x, w) if layout == "NCHW" else (x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0))
    y = jc.conv2d(jnp.asarray(xs, jnp.float32), jnp.asarray(ws, jnp.float32), jnp.asarray(b, jnp.float32),
                  stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout,
                  impl="winograd")  # fmt: skip
    reference.assert_close(
        y if layout == "NCHW" else y.transpose(0, 3, 1, 2),
        expected,
        tol=reference.float32_tolerance("winograd"),
    )


def test_kernels_longer_than_max_taps_run_as_pieces_and_match():
    # 11 and 7 taps: pieces of 5 + 5 + 1 rows and 5 + 2 columns, each a Winograd F(4, r).
    assert winograd.MAX_TAPS == 5
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 3, 20, 17)), rng.standard_normal((2, 3, 11, 7))
    y = jc.conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), padding=1, impl="winograd")
    reference.assert_close(y, reference.conv2d(x, w, padding=1))


def test_wide_layer_gradients_match_xla():
    # The shape class auto sends to winograd (>= 16 channels, 3x3): gradients against XLA's.
    x = jax.random.normal(jax.random.key(0), (2, 16, 12, 12))
    w = jax.random.normal(jax.random.key(1), (16, 16, 3, 3)) / 12.0

    def loss(impl, x, w):
        return jnp.sum(jnp.tanh(jc.conv2d(x, w, padding=1, impl=impl)))

    for got, want in zip(jax.grad(loss, argnums=(1, 2))("winograd", x, w),
                         jax.grad(loss, argnums=(1, 2))("xla", x, w), strict=True):  # fmt: skip
        reference.assert_close(got, want, tol=1e-5)


def _plain_untile(tiles, grid):
    n, th, tw, o = grid
    return tiles.reshape(4, 4, n, th, tw, o).transpose(2, 3, 0, 4, 1, 5).reshape(n, th * 4, tw * 4, o)


def test_untile_and_its_derivatives_are_the_plain_permutation():
    grid = (2, 3, 2, 5)
    tiles = jax.random.normal(jax.random.key(0), (16, 2 * 3 * 2 * 5))
    g = jax.random.normal(jax.random.key(1), (2, 12, 8, 5))
    untile = lambda t: winograd._untile(t, grid)  # noqa: E731
    plain = lambda t: _plain_untile(t, grid)  # noqa: E731
    np.testing.assert_array_equal(untile(tiles), plain(tiles))
    np.testing.assert_array_equal(jax.vjp(untile, tiles)[1](g)[0], jax.vjp(plain, tiles)[1](g)[0])
    np.testing.assert_array_equal(jax.jvp(untile, (tiles,), (tiles,))[1], plain(tiles))
    np.testing.assert_array_equal(winograd._tile_major(g, grid), jax.vjp(plain, tiles)[1](g)[0])
    # The backward pass is the stacked slices, not XLA's slow transpose back (2, 4, 0, 1, 3, 5).
    pullback = jax.vjp(untile, tiles)[1]
    backward = str(jax.make_jaxpr(pullback)(g))
    assert backward.count(" slice[") == 16 and "permutation=(2, 4, 0, 1, 3, 5)" not in backward


def test_forward_mode_and_second_derivatives_match_xla():
    x = jax.random.normal(jax.random.key(0), (1, 16, 9, 9))
    w = jax.random.normal(jax.random.key(1), (16, 16, 3, 3)) / 12.0

    def loss(impl, w):
        return jnp.sum(jnp.tanh(jc.conv2d(x, w, padding=1, impl=impl)))

    reference.assert_close(
        jax.jvp(lambda w: loss("winograd", w), (w,), (w,))[1],
        jax.jvp(lambda w: loss("xla", w), (w,), (w,))[1],
        tol=1e-5,
    )
    v = jax.random.normal(jax.random.key(2), w.shape)
    hvp = lambda impl: jax.jvp(jax.grad(lambda w: loss(impl, w)), (w,), (v,))[1]  # noqa: E731
    reference.assert_close(hvp("winograd"), hvp("xla"), tol=1e-4)
