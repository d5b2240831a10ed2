"""conv2d's PyTorch-grade options: padding_mode and precision, on every impl, against NumPy and PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import jaxconv as jc
from jaxconv.nn import Conv2D
from tests import reference

NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@given(
    mode=st.sampled_from(sorted(NUMPY_MODES)),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    stride=st.integers(1, 2),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    seed=st.integers(0, 2**16),
    impl=st.sampled_from(jc.IMPL_CHOICES),
)
def test_padding_modes_match_numpy_pad_then_a_valid_conv(mode, pads, stride, layout, seed, impl):
    # The mode's padding (conv.pad_spatial) happens before any impl runs, so each draw checks one impl;
    # every impl runs a padding mode, gradients too, in test_padding_mode_gradients_agree_across_impls.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[0]), (pads[1], pads[1])), mode=NUMPY_MODES[mode])
    expected = reference.conv2d(padded, w, stride=stride)
    xl, wl = (x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)) if layout == "NHWC" else (x, w)
    y = np.asarray(jc.conv2d(jnp.asarray(xl), jnp.asarray(wl), padding=pads, stride=stride,
                             padding_mode=mode, layout=layout, impl=impl))  # fmt: skip
    reference.assert_close(
        y.transpose(0, 3, 1, 2) if layout == "NHWC" else y, expected, tol=reference.float32_tolerance(impl)
    )


def test_padding_modes_match_torch_when_installed():
    torch = pytest.importorskip("torch", reason="optional peer: pip install torch==2.13.0")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    for mode in ("zeros", *NUMPY_MODES):
        layer = torch.nn.Conv2d(3, 4, 3, padding=(2, 1), stride=2, padding_mode=mode)
        expected = layer(torch.tensor(x)).detach().numpy()
        w, b = (jnp.asarray(t.detach().numpy()) for t in (layer.weight, layer.bias))
        for impl in jc.IMPLS:
            y = jc.conv2d(jnp.asarray(x), w, b, padding=(2, 1), stride=2, padding_mode=mode, impl=impl)
            reference.assert_close(y, expected, tol=reference.float32_tolerance(impl))


def test_padding_mode_gradients_agree_across_impls(impl):
    x = jax.random.normal(jax.random.key(0), (1, 2, 5, 5))
    w = jax.random.normal(jax.random.key(1), (3, 2, 3, 3))
    loss = lambda x, w, i: jnp.sum(jnp.tanh(jc.conv2d(x, w, padding=2, padding_mode="reflect", impl=i)))  # noqa: E731
    for a, b in zip(jax.grad(loss, (0, 1))(x, w, impl), jax.grad(loss, (0, 1))(x, w, "xla"), strict=True):
        reference.assert_close(a, b, tol=reference.GRAD_TOLERANCE["float32"])


@pytest.mark.parametrize(
    ("mode", "padding", "match"),
    [
        ("reflect", 4, r"reflect padding \(4, 4\) along H must be smaller than the input size 4"),
        ("circular", (1, 5), r"circular padding \(5, 5\) along W must be at most the input size 4"),
        ("mirror", 1, r"padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\)"),
    ],
)
def test_impossible_padding_modes_are_refused(mode, padding, match):
    with pytest.raises(ValueError, match=match):
        jc.conv2d(jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 3, 3)), padding=padding, padding_mode=mode)


@pytest.mark.parametrize("precision", [None, "default", "high", "highest", lax.Precision.HIGHEST])
def test_every_precision_is_accepted_by_every_impl_and_reaches_the_hlo(precision, impl):
    x, w = jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))
    y = jc.conv2d(x, w, precision=precision, impl=impl)
    reference.assert_close(y, np.full((1, 3, 3, 3), 18.0))  # winograd's transforms round
    text = jax.jit(lambda x, w: jc.conv2d(x, w, precision=precision, impl=impl)).lower(x, w).as_text()
    if (
        precision in ("highest", lax.Precision.HIGHEST) and impl != "stencil"
    ):  # stencil has no dot: exact products
        assert "HIGHEST" in text


def test_conv2d_layer_takes_padding_mode_and_precision():
    layer = Conv2D(2, 3, padding=1, padding_mode="circular", precision="highest", impl="im2col")
    x = jax.random.normal(jax.random.key(0), (1, 1, 4, 4))
    v = layer.init(jax.random.key(1), x)
    expected = reference.conv2d(np.pad(np.asarray(x), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap"),
                                v["params"]["kernel"], v["params"]["bias"])  # fmt: skip
    reference.assert_close(layer.apply(v, x), expected)
