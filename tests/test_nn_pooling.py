"""jaxconv.nn.max_pool: flax.linen.max_pool's arguments, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxconv import nn as jnn


@given(
    size=st.integers(3, 9), window=st.integers(1, 3), stride=st.integers(1, 3),
    padding=st.sampled_from(["VALID", "SAME", "SAME_LOWER", ((1, 0), (0, 1))]),
    impl=st.sampled_from(["auto", "xla", "shift_add", "im2col"]),
)  # fmt: skip
def test_max_pool_equals_flax_forward_and_backward(size, window, stride, padding, impl):
    x = jnp.asarray(
        np.random.default_rng(size).permutation(2 * size * size * 3).reshape(2, size, size, 3), jnp.float32
    )
    args = ((window, window), (stride, stride), padding)
    ours, flax = jnn.max_pool(x, *args, impl=impl), nn.max_pool(x, *args)
    np.testing.assert_array_equal(ours, flax)
    g = jnp.asarray(np.random.default_rng(1).normal(size=flax.shape), jnp.float32)
    grad = jax.vjp(lambda x: jnn.max_pool(x, *args, impl=impl), x)[1](g)[0]
    np.testing.assert_allclose(grad, jax.vjp(lambda x: nn.max_pool(x, *args), x)[1](g)[0], atol=1e-6)


def test_max_pool_defaults_and_refusals():
    x = jnp.ones((1, 4, 4, 2))
    assert jnn.max_pool(x, (2, 2)).shape == nn.max_pool(x, (2, 2)).shape == (1, 3, 3, 2)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        jnn.max_pool(jnp.ones((4, 4, 2)), (2, 2))
    with pytest.raises(ValueError, match="2 entries"):
        jnn.max_pool(x, (2, 2, 2))
    with pytest.raises(ValueError, match="padding"):
        jnn.max_pool(x, (2, 2), padding="FULL")
