"""The banded convolution's building blocks (jaxconv.impls.band), checked by construction and against the
float64 loop."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.impls import REGISTRY, band
from jaxconv.nn import LeNet
from tests import reference
from tests.draws import examples


def test_band_matrix_is_the_kernel_row_as_a_toeplitz_matrix():
    # One kernel row [1, 2] along a 4-wide input: output column q reads input columns q and q + 1.
    w = jnp.array([1.0, 2.0]).reshape(1, 2, 1, 1)
    np.testing.assert_array_equal(
        band.band_matrix(w, width=4, out_width=3, stride=1, dilation=1),
        [[1, 0, 0], [2, 1, 0], [0, 2, 1], [0, 0, 2]],
    )
    # stride 2: columns 0-1 then 2-3; dilation 2: columns q and q + 2.
    np.testing.assert_array_equal(
        band.band_matrix(w, width=4, out_width=2, stride=2, dilation=1), [[1, 0], [2, 0], [0, 1], [0, 2]]
    )
    np.testing.assert_array_equal(
        band.band_matrix(w, width=4, out_width=2, stride=1, dilation=2), [[1, 0], [0, 1], [2, 0], [0, 2]]
    )


def test_band_matrix_orders_rows_as_kernel_row_column_channel():
    # Entry ((i, v, c), (q, o)) = w[i, v - q, c, o]: rebuild it with loops.
    kh, kw, c, o, width = 2, 3, 2, 3, 5
    w = jax.random.normal(jax.random.key(0), (kh, kw, c, o))
    ow = width - kw + 1
    expected = np.zeros((kh, width, c, ow, o), np.float32)
    for i in range(kh):
        for q in range(ow):
            for j in range(kw):
                expected[i, q + j, :, q, :] = w[i, j]
    got = band.band_matrix(w, width=width, out_width=ow, stride=1, dilation=1)
    np.testing.assert_array_equal(got, expected.reshape(kh * width * c, ow * o))


def test_banded_lenet_layers_match_the_float64_reference():
    # The two layers auto sends to the band, at a small batch, against the float64 loop.
    key = jax.random.split(jax.random.key(1), 4)
    for x_shape, w_shape, padding in (((3, 1, 28, 28), (6, 1, 5, 5), 2), ((3, 6, 14, 14), (16, 6, 5, 5), 0)):
        x, w = jax.random.normal(key[0], x_shape), jax.random.normal(key[1], w_shape)
        b = jax.random.normal(key[2], w_shape[:1])
        want = reference.conv2d(x, w, np.asarray(b, np.float64), padding=padding)
        got = jc.conv2d(x, w, b, padding=padding, impl="banded")
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_auto_sends_lenet_layers_to_the_band_on_cpu(layout, monkeypatch):
    seen = []
    real = band.conv2d_banded

    def spy(*args, **kwargs):
        seen.append(kwargs["spec"].layout)
        return real(*args, **kwargs)

    monkeypatch.setitem(REGISTRY, "banded", dataclasses.replace(REGISTRY["banded"], conv=spy))
    model = LeNet(layout=layout)
    x = jnp.zeros((2, 1, 28, 28) if layout == "NCHW" else (2, 28, 28, 1))
    model.init(jax.random.key(0), x)
    assert seen == [layout, layout]


@pytest.mark.parametrize(("out_width", "kw", "stride", "dilation"), [(28, 5, 1, 1), (10, 5, 1, 1), (61, 7, 3, 1),
                                                                       (30, 3, 2, 2), (5, 1, 1, 1), (3, 9, 1, 1), (32, 5, 1, 1), (21, 3, 1, 1),
                                                                       (13, 5, 1, 1), (7, 5, 1, 1)])  # fmt: skip
def test_band_tile_keeps_the_span_within_twice_the_extent_and_covers_the_row(out_width, kw, stride, dilation):
    tile = band.band_tile(out_width, kw, stride, dilation)
    extent = (kw - 1) * dilation + 1
    assert 1 <= tile <= out_width
    assert (tile - 1) * stride + extent <= band.BAND_SPAN_PER_EXTENT * extent
    tiles = -(-out_width // tile)
    assert tiles * tile - out_width < tiles  # evenly spread: less than one padding column per tile
    widest = max(1, (band.BAND_SPAN_PER_EXTENT - 1) * extent // stride + 1)
    exact = [t for t in range(1, min(widest, out_width) + 1) if out_width % t == 0 and 2 * t >= widest]
    assert tile == (max(exact) if exact else -(-out_width // -(-out_width // widest)))


def test_band_tile_prefers_a_tile_that_divides_the_row():
    assert band.band_tile(28, 5, 1, 1) == 4  # LeNet conv1: 7 exact tiles, not 5 of 6 with 2 over
    assert band.band_tile(10, 5, 1, 1) == 5
    assert band.band_tile(64, 5, 1, 1) == 4  # the book's layer: 16 exact tiles
    assert band.band_tile(21, 3, 1, 1) == 3
    assert band.band_tile(13, 5, 1, 1) == 5  # prime: nothing divides it, the even spread (3 tiles, 2 over)
    assert band.band_tile(7, 5, 1, 1) == 4  # only 1 and 7 divide 7, outside 3..6: 2 tiles of 4, 1 over


@examples(5)
@given(
    width=st.integers(6, 48),
    kw=st.integers(1, 6),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    pad=st.integers(0, 2),
    c=st.integers(1, 3),
    o=st.integers(1, 3),
)
def test_banded_matches_the_float64_reference_on_wide_rows(width, kw, stride, dilation, pad, c, o):
    # Wide rows make several tiles, with padding columns and overlaps of every length.
    assume((kw - 1) * dilation + 1 <= width + 2 * pad)
    key = jax.random.split(jax.random.key(width * 100 + kw), 2)
    x = jax.random.normal(key[0], (2, c, 3, width))
    w = jax.random.normal(key[1], (o, c, 2, kw))
    opts = dict(stride=(1, stride), padding=((0, 0), (pad, pad)), dilation=(1, dilation))
    want = reference.conv2d(x, w, stride=(1, stride), padding=((0, 0), (pad, pad)), dilation=(1, dilation))
    np.testing.assert_allclose(jc.conv2d(x, w, impl="banded", **opts), want, rtol=1e-5, atol=1e-5)
