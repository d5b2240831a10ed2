"""jaxconv plugged into other people's layers: stock flax.nnx.Conv and flax.linen.Conv, every impl."""

from functools import partial

import flax.linen as linen
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import jaxconv as jc
from tests import reference

OPTIONS = [
    dict(kernel_size=(3, 3), padding="SAME"),
    dict(kernel_size=(5, 3), strides=(2, 1), padding="VALID", kernel_dilation=(1, 2)),
    dict(kernel_size=(3, 3), padding=((1, 0), (2, 1)), feature_group_count=2),
    dict(kernel_size=(3, 3), padding="CIRCULAR"),
]


def _loss(model, x):
    return jnp.sum(jnp.sin(model(x)))


@pytest.mark.parametrize("options", OPTIONS)
def test_nnx_conv_with_jaxconv_inside_matches_the_stock_layer(impl, options):
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 4))
    stock = nnx.Conv(4, 6, **options, precision="highest", rngs=nnx.Rngs(0))
    ours = nnx.Conv(4, 6, **options, precision="highest", rngs=nnx.Rngs(0),
                    conv_general_dilated=partial(jc.conv_general_dilated, impl=impl))  # fmt: skip
    tol = reference.float32_tolerance(impl)
    reference.assert_close(ours(x), stock(x), tol=tol)
    got, expected = nnx.grad(_loss)(ours, x), nnx.grad(_loss)(stock, x)
    for name in ("kernel", "bias"):
        reference.assert_close(got[name][...], expected[name][...], tol=reference.GRAD_TOLERANCE["float32"])


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_linen_conv_with_jaxconv_inside_matches_the_stock_layer(impl, options):
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 4))
    stock = linen.Conv(6, **options, precision="highest")
    ours = linen.Conv(6, **options, precision="highest",
                      conv_general_dilated=partial(jc.conv_general_dilated, impl=impl))  # fmt: skip
    params = stock.init(jax.random.key(1), x)
    tol = reference.float32_tolerance(impl)
    reference.assert_close(ours.apply(params, x), stock.apply(params, x), tol=tol)
    got = jax.grad(lambda p: jnp.sum(jnp.sin(ours.apply(p, x))))(params)
    expected = jax.grad(lambda p: jnp.sum(jnp.sin(stock.apply(p, x))))(params)
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        reference.assert_close(g, e, tol=reference.GRAD_TOLERANCE["float32"])


def test_linen_conv_takes_a_factory_too():
    # conv_general_dilated_cls is called with no arguments and must return the function
    x = jax.random.normal(jax.random.key(0), (1, 6, 6, 2))
    ours = linen.Conv(
        3, (3, 3), conv_general_dilated_cls=lambda: partial(jc.conv_general_dilated, impl="im2col")
    )
    stock = linen.Conv(3, (3, 3))
    params = stock.init(jax.random.key(1), x)
    reference.assert_close(ours.apply(params, x), stock.apply(params, x))
