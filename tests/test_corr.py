"""The book's worked examples for sections 6.2 and 6.4, exactly (winograd: to float32 rounding), on every impl."""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from tests import reference

X3 = jnp.arange(9.0).reshape(3, 3)
K2 = jnp.arange(4.0).reshape(2, 2)


def assert_book_numbers(actual, expected, impl):
    """Exact on every impl but winograd, whose transforms round (float32: ~1e-6 of the values)."""
    if impl == "winograd":
        reference.assert_close(actual, expected)
    else:
        np.testing.assert_array_equal(actual, expected)


def test_corr2d_book_example(impl):
    assert_book_numbers(jc.corr2d(X3, K2, impl=impl), [[19.0, 25.0], [37.0, 43.0]], impl)


def _edge_image():
    # The book's 6x8 image: ones with a black (zero) band in columns 2..5.
    return jnp.ones((6, 8)).at[:, 2:6].set(0.0)


def test_edge_detection_book_example(impl):
    Y = jc.corr2d(_edge_image(), jnp.array([[1.0, -1.0]]), impl=impl)
    expected = np.zeros((6, 7))
    expected[:, 1] = 1.0
    expected[:, 5] = -1.0
    assert_book_numbers(Y, expected, impl)


def test_edge_detector_misses_horizontal_edges_on_transpose(impl):
    Y = jc.corr2d(_edge_image().T, jnp.array([[1.0, -1.0]]), impl=impl)
    assert_book_numbers(Y, np.zeros((8, 5)), impl)


def test_convolve2d_is_correlation_with_flipped_kernel(impl):
    Y = jc.convolve2d(X3, K2, impl=impl)
    np.testing.assert_array_equal(Y, jc.corr2d(X3, K2[::-1, ::-1], impl=impl))
    assert_book_numbers(Y, [[5.0, 11.0], [23.0, 29.0]], impl)


def _two_channels():
    X = jnp.stack([X3, X3 + 1.0])
    K = jnp.stack([K2, K2 + 1.0])
    return X, K


def test_corr2d_multi_in_book_example(impl):
    X, K = _two_channels()
    assert_book_numbers(jc.corr2d_multi_in(X, K, impl=impl), [[56.0, 72.0], [104.0, 120.0]], impl)


def test_corr2d_multi_in_out_book_example(impl):
    X, K = _two_channels()
    K3 = jnp.stack([K, K + 1.0, K + 2.0])
    assert K3.shape == (3, 2, 2, 2)
    Y = jc.corr2d_multi_in_out(X, K3, impl=impl)
    book = [
        [[56.0, 72.0], [104.0, 120.0]],
        [[76.0, 100.0], [148.0, 172.0]],
        [[96.0, 128.0], [192.0, 224.0]],
    ]
    assert_book_numbers(Y, book, impl)
    assert_book_numbers(Y, reference.conv2d(np.asarray(X)[None], np.asarray(K3))[0], impl)


def test_1x1_is_a_matrix_product(impl):
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(3, 3, 3)), jnp.float32)
    K = jnp.asarray(rng.normal(size=(2, 3, 1, 1)), jnp.float32)
    Y1 = jc.corr2d_multi_in_out_1x1(X, K, impl=impl)
    Y2 = jc.corr2d_multi_in_out(X, K, impl=impl)
    assert Y1.shape == (2, 3, 3)
    reference.assert_close(Y1, Y2)
    reference.assert_close(Y1, np.einsum("oc,chw->ohw", np.asarray(K)[:, :, 0, 0], np.asarray(X)))


@pytest.mark.parametrize(
    ("fn", "X", "K", "match"),
    [
        (jc.corr2d, X3[None], K2, r"corr2d: X must have 2 dimensions, got shape \(1, 3, 3\)"),
        (jc.corr2d, X3, K2.astype(jnp.bfloat16), r"corr2d: arrays must share one dtype"),
        (jc.corr2d, X3[:1], K2, r"corr2d: kernel extent 2 .* larger than the padded input 1 along H"),
        (jc.convolve2d, [[1.0]], K2, r"convolve2d: X must be a jax or numpy array, got list"),
        (jc.corr2d_multi_in, jnp.stack([X3] * 3), jnp.stack([K2] * 2), r"K has 2 input channels but X has 3"),
        (jc.corr2d_multi_in_out, jnp.stack([X3] * 2), jnp.stack([K2] * 2), r"K must have 4 dimensions"),
        (
            jc.corr2d_multi_in_out_1x1,
            jnp.stack([X3] * 2),
            jnp.ones((1, 2, 2, 2)),
            r"K must be \(O, C, 1, 1\)",
        ),
        (
            jc.corr2d_multi_in_out_1x1,
            jnp.stack([X3] * 2),
            jnp.ones((1, 3, 1, 1)),
            r"K has 3 input channels but X has 2",
        ),
    ],
)
def test_book_functions_reject_bad_input(fn, X, K, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fn(X, K)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match=r"corr2d: X must have a floating-point dtype, got int32"):
        jc.corr2d(jnp.arange(9).reshape(3, 3), K2)


def test_unknown_impl_is_refused():
    with pytest.raises(
        ValueError,
        match=re.escape(f"corr2d: impl must be one of {tuple(jc.IMPL_CHOICES)}, got 'fast'"),
    ):
        jc.corr2d(X3, K2, impl="fast")
