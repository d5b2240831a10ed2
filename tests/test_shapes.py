"""Output-shape formulas (section 6.3) and receptive fields."""

import jax.numpy as jnp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxconv as jc

# The book's padding/stride examples on an 8x8 input.
BOOK_CASES = [
    (dict(kernel_size=3, padding=1), (8, 8)),
    (dict(kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
    (dict(kernel_size=3, padding=1, stride=2), (4, 4)),
    (dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
    (dict(kernel_size=3, padding=(2, 3), stride=2), (5, 6)),
]


@pytest.mark.parametrize(("options", "expected"), BOOK_CASES)
def test_book_shapes_by_formula_and_by_running(options, expected, impl):
    assert jc.conv_output_shape(8, **options) == expected
    x = jnp.ones((1, 1, 8, 8))
    kh, kw = (
        (options["kernel_size"],) * 2 if isinstance(options["kernel_size"], int) else options["kernel_size"]
    )
    conv_options = {k: v for k, v in options.items() if k != "kernel_size"}
    y = jc.conv2d(x, jnp.ones((1, 1, kh, kw)), impl=impl, **conv_options)
    assert y.shape[2:] == expected


def test_book_formula_with_total_padding():
    # floor((n - k + p + s) / s) with p the total padding of both sides.
    n, k, p, s = 224, 7, 6, 2
    assert jc.conv_output_shape(n, k, padding=p // 2, stride=s) == ((n - k + p + s) // s,) * 2


def test_same_and_valid():
    assert jc.conv_output_shape((7, 10), 4, padding="same", stride=3) == (3, 4)
    assert jc.conv_output_shape((7, 10), 4, padding="valid") == (4, 7)
    assert jc.conv_output_shape(8, 3, padding=((1, 0), (0, 2))) == (7, 8)
    assert jc.conv_output_shape(9, 3, dilation=2) == (5, 5)


@given(
    n=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
)
def test_same_gives_ceil_of_input_over_stride(n, k, s, d):
    assert jc.conv_output_shape(n, k, padding="same", stride=s, dilation=d) == (-(-n // s),) * 2


def test_pool_output_shape():
    assert jc.pool_output_shape(4, 3) == (1, 1)
    assert jc.pool_output_shape(4, 3, padding=1, stride=2) == (2, 2)
    assert jc.pool_output_shape(4, (2, 3), padding=(0, 1), stride=(2, 3)) == (2, 2)
    with pytest.raises(ValueError, match=r"pool_output_shape: padding must be at most half the window"):
        jc.pool_output_shape(4, 2, padding=2)


def test_receptive_field():
    assert jc.receptive_field([]) == ((1, 1), (1, 1))
    assert jc.receptive_field([(3, 1)] * 2) == ((5, 5), (1, 1))
    assert jc.receptive_field([(3, 1, 2)]) == ((5, 5), (1, 1))
    assert jc.receptive_field([((3, 1), 2), (3, (1, 2))]) == ((3 + 2 * 2, 1 + 2 * 2), (2, 4))
    # Ten 5x5 layers on 240x240 give 200x200 (the book); each output then sees 41x41 pixels.
    assert jc.receptive_field([(5, 1)] * 10).size == (41, 41)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: jc.conv_output_shape(8, 3, stride=0),
            ValueError,
            r"conv_output_shape: stride must be >= 1, got 0",
        ),
        (
            lambda: jc.conv_output_shape(8, 3, dilation=(1, 0)),
            ValueError,
            r"dilation must be >= 1, got \(1, 0\)",
        ),
        (lambda: jc.conv_output_shape(8, 3, padding=-1), ValueError, r"padding must be >= 0, got -1"),
        (lambda: jc.conv_output_shape(8, 3, padding=((0, -1), (0, 0))), ValueError, r"padding must be >= 0"),
        (lambda: jc.conv_output_shape(8, 3, padding="full"), ValueError, r"padding must be 'same', 'valid'"),
        (
            lambda: jc.conv_output_shape(8, 3, padding=1.5),
            TypeError,
            r"padding must be an int or a pair of ints",
        ),
        (lambda: jc.conv_output_shape(8, 3, padding=((0, 1), (0,))), TypeError, r"explicit padding must be"),
        (
            lambda: jc.conv_output_shape(2, 3),
            ValueError,
            r"kernel extent 3 \(after dilation\) is larger than the padded input 2 along H",
        ),
        (
            lambda: jc.conv_output_shape(8, 3, stride=True),
            TypeError,
            r"stride must be an int or a pair of ints, got True",
        ),
        (lambda: jc.receptive_field("abc"), TypeError, r"receptive_field: layers must be a sequence"),
        (lambda: jc.receptive_field([(3,)]), ValueError, r"layers\[0\] must be \(kernel, stride"),
        (lambda: jc.receptive_field([(3, 0)]), ValueError, r"layers\[0\] stride must be >= 1"),
    ],
)
def test_shape_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
