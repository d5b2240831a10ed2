"""Flax layers and LeNet: shapes, parameter count, init, and both impls agreeing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv.nn import AvgPool2D, Conv2D, LeNet, MaxPool2D, count_params, format_summary, summary
from tests import reference


def test_classic_lenet_has_the_books_61706_parameters():
    variables = LeNet().init(jax.random.key(0), jnp.zeros((1, 1, 28, 28)))
    assert count_params(variables["params"]) == 61706
    assert set(variables) == {"params"}
    modern = LeNet("modern").init(jax.random.key(0), jnp.zeros((1, 1, 28, 28)))
    assert count_params(modern["params"]) == 61706


def test_summary_matches_the_books_shapes():
    rows = summary(LeNet())
    assert [(r.name, r.output_shape) for r in rows] == [
        ("Conv2D", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2D", (1, 6, 14, 14)),
        ("Conv2D", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)), ("AvgPool2D", (1, 16, 5, 5)),
        ("Flatten", (1, 400)), ("Dense", (1, 120)), ("Sigmoid", (1, 120)),
        ("Dense", (1, 84)), ("Sigmoid", (1, 84)), ("Dense", (1, 10)),
    ]  # fmt: skip
    assert [r.params for r in rows if r.params] == [156, 2416, 48120, 10164, 850]
    assert "total parameters: 61,706" in format_summary(rows)


def test_modern_with_batch_norm_has_running_statistics():
    rows = summary(LeNet("modern", batch_norm=True))
    assert [r.name for r in rows[:4]] == ["Conv2D", "BatchNorm", "ReLU", "MaxPool2D"]
    variables = LeNet("modern", batch_norm=True).init(jax.random.key(0), jnp.zeros((2, 1, 28, 28)))
    assert set(variables) == {"params", "batch_stats"}


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_lenet_logits_shape_and_impls_agree(layout, impl):
    shape = (3, 1, 28, 28) if layout == "NCHW" else (3, 28, 28, 1)
    x = jax.random.uniform(jax.random.key(1), shape)
    xla = LeNet(layout=layout, impl="xla")
    variables = xla.init(jax.random.key(0), x)
    y = xla.apply(variables, x)
    assert y.shape == (3, 10)
    reference.assert_close(LeNet(layout=layout, impl=impl).apply(variables, x), y)


def test_nchw_and_nhwc_lenets_start_from_the_same_weights():
    x = jax.random.uniform(jax.random.key(1), (2, 1, 28, 28))
    nchw = LeNet().init(jax.random.key(0), x)["params"]
    nhwc = LeNet(layout="NHWC").init(jax.random.key(0), x.transpose(0, 2, 3, 1))["params"]
    for conv in ("conv1", "conv2"):
        np.testing.assert_array_equal(nhwc[conv]["kernel"], nchw[conv]["kernel"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(nhwc["fc1"]["kernel"], nchw["fc1"]["kernel"])


def test_nchw_and_nhwc_lenets_compute_the_same_function():
    x = jax.random.uniform(jax.random.key(1), (2, 1, 28, 28))
    params = LeNet().init(jax.random.key(0), x)["params"]
    nhwc = jax.tree.map(lambda a: a, params)
    for conv in ("conv1", "conv2"):
        nhwc[conv] = dict(params[conv], kernel=params[conv]["kernel"].transpose(2, 3, 1, 0))
    y_nhwc = LeNet(layout="NHWC").apply({"params": nhwc}, x.transpose(0, 2, 3, 1))
    reference.assert_close(y_nhwc, LeNet().apply({"params": params}, x))


def test_xavier_uniform_init_uses_oihw_fans():
    kernel = LeNet().init(jax.random.key(0), jnp.zeros((1, 1, 28, 28)))["params"]["conv1"]["kernel"]
    bound = np.sqrt(6 / (1 * 25 + 6 * 25))  # fan_in = C*kh*kw, fan_out = O*kh*kw
    assert kernel.shape == (6, 1, 5, 5)
    assert float(jnp.abs(kernel).max()) <= bound
    assert float(jnp.abs(kernel).max()) > 0.9 * bound


def test_conv2d_layer_impls_give_same_outputs_and_gradients(impl):
    layer = Conv2D(4, (3, 2), stride=2, padding=((1, 0), (0, 1)), dilation=(1, 2), groups=2, impl="xla")
    x = jax.random.normal(jax.random.key(0), (2, 4, 9, 8))
    params = layer.init(jax.random.key(1), x)
    assert params["params"]["kernel"].shape == (4, 2, 3, 2)
    other = layer.copy(impl=impl)

    def loss(layer, params, x):
        return jnp.sum(jnp.tanh(layer.apply(params, x)))

    reference.assert_close(other.apply(params, x), layer.apply(params, x))
    g_other = jax.grad(loss, argnums=(1, 2))(other, params, x)
    g_xla = jax.grad(loss, argnums=(1, 2))(layer, params, x)
    for a, b in zip(jax.tree.leaves(g_other), jax.tree.leaves(g_xla), strict=True):
        reference.assert_close(a, b, tol=reference.GRAD_TOLERANCE["float32"])


def test_conv2d_layer_matches_the_reference():
    layer = Conv2D(3, 3, padding=1, use_bias=True, bias_init=jax.nn.initializers.normal())
    x = jax.random.normal(jax.random.key(0), (1, 2, 5, 5))
    params = layer.init(jax.random.key(1), x)["params"]
    expected = reference.conv2d(x, params["kernel"], params["bias"], padding=1)
    reference.assert_close(layer.apply({"params": params}, x), expected)


def test_pool_layers():
    x = jnp.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(MaxPool2D(2).apply({}, x), [[[[5.0, 7.0], [13.0, 15.0]]]])
    np.testing.assert_array_equal(AvgPool2D(2, impl="manual").apply({}, x), [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_bad_module_options():
    with pytest.raises(
        ValueError, match=r"LeNet: variant must be one of \('classic', 'modern'\), got 'alex'"
    ):
        LeNet("alex")
    with pytest.raises(ValueError, match=r"LeNet: batch_norm=True needs variant='modern'"):
        LeNet(batch_norm=True)
    with pytest.raises(ValueError, match=r"Conv2D: input channels 3 are not divisible by groups=2"):
        Conv2D(4, 3, groups=2).init(jax.random.key(0), jnp.zeros((1, 3, 8, 8)))


def test_pooling_layers_take_pytorchs_options():
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
    y = MaxPool2D(3, stride=2, ceil_mode=True, dilation=1).apply({}, x)
    assert y.shape == (2, 3, 2, 2)
    y = AvgPool2D(2, ceil_mode=True, divisor_override=1).apply({}, x)
    np.testing.assert_allclose(y[..., -1, -1], x[..., 4, 2:4].sum(-1), rtol=1e-6)
