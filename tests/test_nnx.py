"""Flax NNX layers and LeNet: the Linen ones' numbers, weights converted both ways, the functional seam."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxconv import nn as linen_layers
from jaxconv import nnx as jnnx
from jaxconv.nn import count_params
from tests import reference

X = jax.random.normal(jax.random.key(0), (2, 4, 9, 8))


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(stride=2, padding="same", dilation=(1, 2)),
        dict(groups=2, padding_mode="reflect", padding=1),
    ],
)
def test_conv_layers_match_the_linen_ones_on_the_same_weights(options, impl):
    ours = jnnx.Conv2D(4, 6, 3, impl=impl, **options, rngs=nnx.Rngs(0))
    linen = linen_layers.Conv2D(6, 3, impl=impl, **options)
    params = {"params": {"kernel": ours.kernel[...], "bias": ours.bias[...]}}
    assert ours.kernel.shape == linen.init(jax.random.key(0), X)["params"]["kernel"].shape
    np.testing.assert_array_equal(ours(X), linen.apply(params, X))
    t_ours = jnnx.ConvTranspose2D(4, 6, 3, stride=2, output_padding=1, impl=impl, rngs=nnx.Rngs(1))
    t_linen = linen_layers.ConvTranspose2D(6, 3, stride=2, output_padding=1, impl=impl)
    t_params = {"params": {"kernel": t_ours.kernel[...], "bias": t_ours.bias[...]}}
    assert t_ours.kernel.shape == t_linen.init(jax.random.key(0), X)["params"]["kernel"].shape
    np.testing.assert_array_equal(t_ours(X), t_linen.apply(t_params, X))


def test_pooling_layers_match_the_linen_ones():
    for ours, linen in (
        (
            jnnx.MaxPool2D(3, stride=2, padding=1, ceil_mode=True),
            linen_layers.MaxPool2D(3, stride=2, padding=1, ceil_mode=True),
        ),
        (
            jnnx.AvgPool2D(2, count_include_pad=False, padding=1),
            linen_layers.AvgPool2D(2, count_include_pad=False, padding=1),
        ),
    ):
        np.testing.assert_array_equal(ours(X), linen.apply({}, X))


def test_layer_defaults_and_checks():
    layer = jnnx.Conv2D(4, 6, (3, 5), use_bias=False, layout="NHWC", rngs=nnx.Rngs(0))
    assert layer.bias is None and layer.kernel.shape == (3, 5, 4, 6)
    assert (layer.stride, layer.padding, layer.impl) == (1, 0, "auto")
    with pytest.raises(ValueError, match="in_features 4 and out_features 6 must be divisible by groups=4"):
        jnnx.Conv2D(4, 6, 3, groups=4, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="in_features must be an int"):
        jnnx.Conv2D(4.0, 6, 3, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("variant", "batch_norm", "layout"),
    [("classic", False, "NCHW"), ("modern", True, "NHWC"), ("modern", False, "NCHW")],
)
def test_lenet_has_the_linen_network_and_converts_both_ways(variant, batch_norm, layout):
    shape = (5, 1, 28, 28) if layout == "NCHW" else (5, 28, 28, 1)
    x = jax.random.uniform(jax.random.key(1), shape)
    model = jnnx.LeNet(variant, batch_norm=batch_norm, layout=layout, rngs=nnx.Rngs(0))
    linen = linen_layers.LeNet(variant, batch_norm=batch_norm, layout=layout)
    assert count_params(nnx.state(model, nnx.Param)) == 61706 + (2 * (6 + 16 + 120 + 84) if batch_norm else 0)
    assert jnnx.summary(model, shape[:1] + shape[1:]) == linen_layers.summary(linen, shape)
    # Linen's weights into the NNX model: the same logits, in eval and in training mode
    variables = linen.init(jax.random.key(2), x)
    jnnx.set_linen_variables(model, variables)
    model.eval()
    reference.assert_close(model(x), linen.apply(variables, x), tol=1e-6)
    model.train()
    train_logits, updates = linen.apply(variables, x, train=True, mutable=["batch_stats"])
    reference.assert_close(model(x), train_logits, tol=1e-6)
    # ... and back: the NNX model's (updated) weights drive the Linen model to the same logits
    back = jnnx.linen_variables(model)
    if batch_norm:
        for got, expected in zip(
            jax.tree.leaves(back["batch_stats"]), jax.tree.leaves(updates["batch_stats"]), strict=True
        ):
            reference.assert_close(got, expected, tol=1e-6)
    model.eval()
    reference.assert_close(linen.apply(back, x), model(x), tol=1e-6)


def test_lenet_refuses_what_linen_refuses_and_variables_that_do_not_fit():
    with pytest.raises(ValueError, match="batch_norm=True needs variant='modern'"):
        jnnx.LeNet(batch_norm=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="variant must be one of"):
        jnnx.LeNet("alexnet", rngs=nnx.Rngs(0))
    nchw = linen_layers.LeNet().init(jax.random.key(0), jnp.zeros((1, 1, 28, 28)))
    with pytest.raises(ValueError, match="params do not fit this LeNet .variant='classic', layout='NHWC'"):
        jnnx.set_linen_variables(jnnx.LeNet(layout="NHWC", rngs=nnx.Rngs(0)), nchw)


def test_functional_is_the_model_as_a_pure_function_and_leaves_it_alone():
    model = jnnx.LeNet("modern", batch_norm=True, rngs=nnx.Rngs(0))
    before = jnnx.linen_variables(model)
    apply_fn, variables = jnnx.functional(model)
    x = jax.random.uniform(jax.random.key(1), (4, 1, 28, 28))
    logits, updates = jax.jit(lambda v, x: apply_fn(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    model.train()
    reference.assert_close(
        logits, model(x)
    )  # jitted against eager; model(x) in training mode updates its statistics...
    after = jnnx.linen_variables(model)["batch_stats"]
    for got, expected in zip(jax.tree.leaves(updates["batch_stats"]), jax.tree.leaves(after), strict=True):
        reference.assert_close(got, expected)
    # ...while apply_fn left the model as it was before
    for got, expected in zip(jax.tree.leaves(variables), jax.tree.leaves(before), strict=True):
        np.testing.assert_array_equal(got, expected)
    model.eval()
    reference.assert_close(apply_fn(jnnx.linen_variables(model), x), model(x), tol=1e-6)
