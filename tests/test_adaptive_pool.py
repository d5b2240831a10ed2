"""Adaptive and global pooling (PyTorch's AdaptiveAvgPool2d / AdaptiveMaxPool2d, Keras's global pools)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from tests import reference


def test_global_pools():
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
    np.testing.assert_allclose(jc.global_avg_pool2d(x), x.mean((2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(jc.global_max_pool2d(x), x.max((2, 3)))
    np.testing.assert_array_equal(jc.global_max_pool2d(x.transpose(0, 2, 3, 1), layout="NHWC"), x.max((2, 3)))
    assert jc.global_avg_pool2d(x[0]).shape == (3,)


def test_adaptive_pools_match_torch_when_installed():
    torch = pytest.importorskip("torch", reason="optional peer: pip install torch==2.13.0")
    F = torch.nn.functional
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 8)).astype(np.float32)
    t = torch.tensor(x)
    for impl in jc.IMPLS:
        for size in ((3, 5), (1, 1), (9, 8), (4, None)):
            reference.assert_close(jc.adaptive_avg_pool2d(jnp.asarray(x), size, impl=impl),
                                   F.adaptive_avg_pool2d(t, size).numpy())  # fmt: skip
            reference.assert_close(jc.adaptive_max_pool2d(jnp.asarray(x), size, impl=impl),
                                   F.adaptive_max_pool2d(t, size).numpy())  # fmt: skip


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x: jc.adaptive_avg_pool2d(x, 0), ValueError, r"output_size must hold ints >= 1"),
        (lambda x: jc.adaptive_max_pool2d(x, (1, 2, 3)), ValueError, r"output_size must be an int or a pair"),
    ],
)
def test_bad_output_sizes_are_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call(jnp.ones((1, 1, 4, 4)))
