"""Pooling as PyTorch defines it: ceil_mode, dilation, divisor_override, indices and unpooling,
adaptive and global pooling; every impl against a float64 loop and, when installed, PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.nn import AvgPool2D, MaxPool2D
from tests import reference


@st.composite
def torch_pool_cases(draw):
    mode = draw(st.sampled_from(["max", "avg"]))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if mode == "max" else (1, 1)
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    assume(h + 2 * p[0] >= d[0] * (k[0] - 1) + 1 and w + 2 * p[1] >= d[1] * (k[1] - 1) + 1)
    return dict(
        mode=mode, window=k, stride=s, padding=p, dilation=d, ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()), divisor_override=draw(st.sampled_from([None, 3])),
        shape=(2, 2, h, w), layout=draw(st.sampled_from(["NCHW", "NHWC"])), seed=draw(st.integers(0, 2**16)),
    )  # fmt: skip


def _run(case, x, impl):
    common = dict(stride=case["stride"], padding=case["padding"], ceil_mode=case["ceil_mode"],
                  layout=case["layout"], impl=impl)  # fmt: skip
    if case["mode"] == "max":
        return jc.max_pool2d(x, case["window"], dilation=case["dilation"], **common)
    return jc.avg_pool2d(x, case["window"], count_include_pad=case["count_include_pad"],
                         divisor_override=case["divisor_override"], **common)  # fmt: skip


@given(torch_pool_cases())
def test_every_impl_matches_the_float64_pytorch_definition(case):
    x = np.random.default_rng(case["seed"]).normal(size=case["shape"]).astype(np.float32)
    options = {k: case[k] for k in ("stride", "padding", "dilation", "ceil_mode", "count_include_pad",
                                    "divisor_override")}  # fmt: skip
    expected = reference.pool2d_torch(x, case["mode"], case["window"], **options)
    xl = x.transpose(0, 2, 3, 1) if case["layout"] == "NHWC" else x
    for impl in jc.IMPL_CHOICES:
        y = np.asarray(_run(case, jnp.asarray(xl), impl))
        y = y.transpose(0, 3, 1, 2) if case["layout"] == "NHWC" else y
        # a dilated max window can hold only padding: -inf, as in PyTorch
        np.testing.assert_array_equal(np.isneginf(y), np.isneginf(expected))
        finite = np.isfinite(expected)
        reference.assert_close(y[finite], expected[finite])


def test_options_match_torch_when_installed():
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
        for include in (True, False):
            for divisor in (None, 2):
                expected = F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=include,
                                        divisor_override=divisor).numpy()  # fmt: skip
                y = jc.avg_pool2d(jnp.asarray(x), 3, stride=2, padding=1, ceil_mode=True,
                                  count_include_pad=include, divisor_override=divisor, impl=impl)  # fmt: skip
                reference.assert_close(y, expected)
        for size in ((3, 5), (1, 1), (9, 8), (4, None)):
            reference.assert_close(jc.adaptive_avg_pool2d(jnp.asarray(x), size, impl=impl),
                                   F.adaptive_avg_pool2d(t, size).numpy())  # fmt: skip
            reference.assert_close(jc.adaptive_max_pool2d(jnp.asarray(x), size, impl=impl),
                                   F.adaptive_max_pool2d(t, size).numpy())  # fmt: skip


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


def test_global_pools_and_the_layers():
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
    np.testing.assert_allclose(jc.global_avg_pool2d(x), x.mean((2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(jc.global_max_pool2d(x), x.max((2, 3)))
    np.testing.assert_array_equal(jc.global_max_pool2d(x.transpose(0, 2, 3, 1), layout="NHWC"), x.max((2, 3)))
    assert jc.global_avg_pool2d(x[0]).shape == (3,)
    y = MaxPool2D(3, stride=2, ceil_mode=True, dilation=1).apply({}, x)
    assert y.shape == (2, 3, 2, 2)
    y = AvgPool2D(2, ceil_mode=True, divisor_override=1).apply({}, x)
    np.testing.assert_allclose(y[..., -1, -1], x[..., 4, 2:4].sum(-1), rtol=1e-6)


def test_pool_gradients_with_options(impl):
    x = jax.random.normal(jax.random.key(0), (1, 2, 7, 6))

    def avg(x, i):
        return jc.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False, impl=i)  # noqa: E731

    g = jax.grad(lambda x: jnp.sum(avg(x, impl) ** 2))(x)
    reference.assert_close(g, jax.grad(lambda x: jnp.sum(avg(x, "xla") ** 2))(x))
    # JAX has no gradient for a dilated reduce_window max; the hand-written impls agree with autodiff
    # of the float64 definition: the gradient of sum(y**2) is 2*y at each window's argmax.
    dilated = lambda x, i: jc.max_pool2d(x, 3, stride=2, dilation=2, ceil_mode=True, impl=i)  # noqa: E731
    if impl == "xla":
        with pytest.raises(NotImplementedError, match="window dilation"):
            jax.grad(lambda x: jnp.sum(dilated(x, impl) ** 2))(x)
        return
    g = jax.grad(lambda x: jnp.sum(dilated(x, impl) ** 2))(x)
    y, idx = jc.max_pool2d(x, 3, stride=2, dilation=2, ceil_mode=True, return_indices=True)
    expected = np.zeros(x.size)
    np.add.at(
        expected,
        (np.arange(2)[:, None] * 42 + np.asarray(idx).reshape(2, -1)).ravel(),
        2 * np.asarray(y).ravel(),
    )
    reference.assert_close(g, expected.reshape(x.shape))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x: jc.avg_pool2d(x, 2, divisor_override=0), ValueError, r"divisor_override must be >= 1"),
        (lambda x: jc.max_pool2d(x, 2, ceil_mode=1), TypeError, r"ceil_mode must be a bool"),
        (lambda x: jc.max_pool2d(x, 2, dilation=0), ValueError, r"dilation must be >= 1"),
        (lambda x: jc.adaptive_avg_pool2d(x, 0), ValueError, r"output_size must hold ints >= 1"),
        (lambda x: jc.adaptive_max_pool2d(x, (1, 2, 3)), ValueError, r"output_size must be an int or a pair"),
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 4, 4)), 2), TypeError, r"indices must be an integer array"),
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 2, 2), jnp.int32), 2), ValueError, r"indices must have x's shape"),
        (lambda x: jc.max_unpool2d(x, jnp.zeros((1, 1, 4, 4), jnp.int32), 2, output_size=(3, 3)), ValueError,
         r"output_size \(3, 3\) along H must be within the stride 2 of the default size 8"),
    ],
)  # fmt: skip
def test_bad_options_are_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call(jnp.ones((1, 1, 4, 4)))
