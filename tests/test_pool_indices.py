"""Max pooling's indices and unpooling (PyTorch's return_indices and max_unpool2d)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from tests import reference


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_indices_point_at_the_maxima_and_unpooling_puts_them_back(layout):
    x = jax.random.normal(jax.random.key(0), (2, 3, 6, 7))
    xl = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
    y, idx = jc.max_pool2d(xl, 2, stride=2, padding=1, return_indices=True, layout=layout)
    assert idx.dtype == jnp.int32 and idx.shape == y.shape
    np.testing.assert_array_equal(y, jc.max_pool2d(xl, 2, stride=2, padding=1, layout=layout))
    y_nchw, i_nchw = (a.transpose(0, 3, 1, 2) if layout == "NHWC" else a for a in (y, idx))
    flat = np.asarray(x).reshape(2, 3, -1)
    np.testing.assert_array_equal(
        np.take_along_axis(flat, np.asarray(i_nchw).reshape(2, 3, -1), 2).reshape(y_nchw.shape), y_nchw
    )
    back = jc.max_unpool2d(y, idx, 2, stride=2, padding=1, output_size=(6, 7), layout=layout)
    back = np.asarray(back.transpose(0, 3, 1, 2) if layout == "NHWC" else back)
    kept = back != 0
    np.testing.assert_array_equal(back[kept], np.asarray(x)[kept])
    assert kept.reshape(2, 3, -1).sum(-1).max() <= y_nchw[0, 0].size


def test_indices_and_unpooling_match_torch_when_installed():
    torch = pytest.importorskip("torch", reason="optional peer: pip install torch==2.13.0")
    F = torch.nn.functional
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 8)).astype(np.float32)
    t = torch.tensor(x)
    for impl in jc.IMPLS:
        y, i = jc.max_pool2d(jnp.asarray(x), 3, stride=2, padding=1, dilation=(2, 1), ceil_mode=True,
                             return_indices=True, impl=impl)  # fmt: skip
        ty, ti = F.max_pool2d(t, 3, stride=2, padding=1, dilation=(2, 1), ceil_mode=True, return_indices=True)
        reference.assert_close(y, ty.numpy())
        np.testing.assert_array_equal(i, ti.numpy())
        y, i = jc.max_pool2d(jnp.asarray(x), 3, stride=2, padding=1, return_indices=True, impl=impl)
        ty, ti = F.max_pool2d(t, 3, stride=2, padding=1, return_indices=True)
        reference.assert_close(jc.max_unpool2d(y, i, 3, stride=2, padding=1, output_size=(9, 8)),
                               F.max_unpool2d(ty, ti, 3, stride=2, padding=1, output_size=(9, 8)).numpy())  # fmt: skip


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 4, 4)), 2), TypeError, r"indices must be an integer array"),
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 2, 2), jnp.int32), 2), ValueError, r"indices must have x's shape"),
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 4, 4), jnp.int32), 2, output_size=(3, 3)), ValueError,
         r"output_size \(3, 3\) along H must be within the stride 2 of the default size 8"),
    ],
)  # fmt: skip
def test_bad_unpooling_is_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call(jnp.ones((1, 1, 4, 4)))
