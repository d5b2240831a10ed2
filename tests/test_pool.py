"""Pooling (section 6.5): the book's examples, the float64 reference, gradients, errors; PyTorch's options
(ceil_mode, dilation, divisor_override) against a float64 loop of PyTorch's definition and, when installed,
PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxconv as jc
from tests import draws, reference

X3 = jnp.arange(9.0).reshape(3, 3)
X44 = jnp.arange(16.0).reshape(1, 1, 4, 4)


def test_pool2d_book_examples(impl):
    np.testing.assert_array_equal(jc.pool2d(X3, (2, 2), impl=impl), [[4.0, 5.0], [7.0, 8.0]])
    np.testing.assert_array_equal(jc.pool2d(X3, (2, 2), "avg", impl=impl), [[2.0, 3.0], [5.0, 6.0]])


def test_max_pool_book_padding_and_stride(impl):
    np.testing.assert_array_equal(jc.max_pool2d(X44, 3, impl=impl), [[[[10.0]]]])
    expected = [[[[5.0, 7.0], [13.0, 15.0]]]]
    np.testing.assert_array_equal(jc.max_pool2d(X44, 3, padding=1, stride=2, impl=impl), expected)
    np.testing.assert_array_equal(
        jc.max_pool2d(X44, (2, 3), padding=(0, 1), stride=(2, 3), impl=impl), expected
    )


def test_avg_pool_book_padding_and_stride(impl):
    np.testing.assert_array_equal(jc.avg_pool2d(X44, 3, impl=impl), [[[[5.0]]]])
    # Padded zeros count (PyTorch's default): corners see 4 real values out of 9.
    y = jc.avg_pool2d(X44, 3, padding=1, stride=2, impl=impl)
    np.testing.assert_allclose(y, [[[[10 / 9, 24 / 9], [51 / 9, 90 / 9]]]], rtol=1e-6)
    y = jc.avg_pool2d(X44, 3, padding=1, stride=2, count_include_pad=False, impl=impl)
    np.testing.assert_allclose(y, [[[[2.5, 4.0], [8.5, 10.0]]]], rtol=1e-6)


def test_multichannel_pooling_keeps_channels(impl):
    X = jnp.concatenate([X44, X44 + 1.0], axis=1)
    y = jc.max_pool2d(X, 3, padding=1, stride=2, impl=impl)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0], [13.0, 15.0]], [[6.0, 8.0], [14.0, 16.0]]]])


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(
        st.one_of(
            st.integers(0, min(kh, kw) // 2),
            st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2)),
            st.tuples(
                st.tuples(st.integers(0, kh // 2), st.integers(0, kh // 2)),
                st.tuples(st.integers(0, kw // 2), st.integers(0, kw // 2)),
            ),
            st.just("valid"),
        )
    )
    return dict(
        shape=(
            draw(st.integers(1, 2)),
            draw(st.integers(1, 3)),
            draw(st.integers(kh, 9)),
            draw(st.integers(kw, 9)),
        ),
        window=(kh, kw),
        stride=draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))),
        padding=padding,
        mode=draw(st.sampled_from(["max", "avg"])),
        count_include_pad=draw(st.booleans()),
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        seed=draw(st.integers(0, 2**16)),
    )


def _pool(case, x, impl):
    options = dict(stride=case["stride"], padding=case["padding"], layout=case["layout"], impl=impl)
    if case["mode"] == "max":
        return jc.max_pool2d(x, case["window"], **options)
    return jc.avg_pool2d(x, case["window"], count_include_pad=case["count_include_pad"], **options)


@given(pool_cases())
def test_every_impl_matches_the_float64_reference(case):
    x = np.random.default_rng(case["seed"]).normal(size=case["shape"]).astype(np.float32)
    expected = reference.pool2d(
        x, case["mode"], case["window"], case["stride"], case["padding"], case["count_include_pad"]
    )
    xl = x.transpose(0, 2, 3, 1) if case["layout"] == "NHWC" else x
    for impl in jc.IMPL_CHOICES:
        y = np.asarray(_pool(case, jnp.asarray(xl), impl))
        y = y.transpose(0, 3, 1, 2) if case["layout"] == "NHWC" else y
        reference.assert_close(y, expected)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_gradients(impl, mode):
    case = dict(
        window=(3, 2), stride=(2, 1), padding=(1, 1), mode=mode, count_include_pad=False, layout="NCHW"
    )
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, 2, 5, 6)))
        check_grads(lambda x: _pool(case, x, impl), (x,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
        g_impl = jax.grad(lambda x: jnp.sum(_pool(case, x, impl) ** 2))(x)
        g_xla = jax.grad(lambda x: jnp.sum(_pool(case, x, "xla") ** 2))(x)
        reference.assert_close(g_impl, g_xla, dtype="float64")


@pytest.mark.parametrize("impl", jc.IMPLS)
@given(
    window=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 2), pad=st.booleans(),
    layout=st.sampled_from(["NCHW", "NHWC"]), seed=st.integers(0, 2**16),
)  # fmt: skip
@draws.examples(10)
def test_max_pool_gradient_goes_to_the_first_of_tied_maxima(
    impl, window, stride, dilation, pad, layout, seed
):
    # Values from {0, 1, 2} tie in most windows: the gradient must go to each window's first
    # maximum (reduce_window's and PyTorch's rule), not be split among the ties.
    padding = window // 2 if pad else 0
    assume(impl != "xla" or dilation == 1)  # JAX has no gradient for a dilated reduce_window max
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(2, 2, 7, 6)).astype(np.float32)
    pool = lambda x: jc.max_pool2d(  # noqa: E731
        x, window, stride=stride, padding=padding, dilation=dilation, layout=layout, impl=impl
    )
    xl = jnp.asarray(x if layout == "NCHW" else x.transpose(0, 2, 3, 1))
    y, vjp = jax.vjp(pool, xl)
    dy = jnp.asarray(rng.normal(size=y.shape).astype(np.float32))
    (dx,) = vjp(dy)
    to_nchw = (lambda a: a) if layout == "NCHW" else (lambda a: np.asarray(a).transpose(0, 3, 1, 2))
    expected = reference.max_pool2d_grad(x, to_nchw(dy), window, stride, padding, dilation)
    reference.assert_close(to_nchw(dx), expected)


def test_max_pool_propagates_nan_and_has_forward_mode(impl):
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 2, 6, 6)).astype(np.float32))
    x = x.at[0, 1, 2, 3].set(jnp.nan)
    pool = lambda x: jc.max_pool2d(x, 3, stride=2, padding=1, impl=impl)  # noqa: E731
    expected = jc.max_pool2d(x, 3, stride=2, padding=1, impl="xla")
    np.testing.assert_array_equal(pool(x), expected)  # NaN where lax's max has NaN
    np.testing.assert_array_equal(jax.value_and_grad(lambda x: pool(x).sum())(x)[0], expected.sum())
    clean = x.at[0, 1, 2, 3].set(0.5)
    tangent = jnp.ones_like(clean)
    _, dy = jax.jvp(pool, (clean,), (tangent,))
    _, dy_xla = jax.jvp(lambda x: jc.max_pool2d(x, 3, stride=2, padding=1, impl="xla"), (clean,), (tangent,))
    np.testing.assert_array_equal(dy, dy_xla)


def test_jit_vmap_and_dtype(impl):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 2, 6, 6)), jnp.bfloat16)
    f = lambda x: jc.avg_pool2d(x, 2, impl=impl)  # noqa: E731
    y = f(x)
    assert y.dtype == jnp.bfloat16 and y.shape == (3, 2, 3, 3)
    np.testing.assert_array_equal(jax.jit(f)(x), y)
    np.testing.assert_array_equal(jax.vmap(f)(x), y)


def test_only_xla_lowers_to_reduce_window():
    x = jnp.ones((1, 2, 6, 6))
    for fn in (jc.max_pool2d, jc.avg_pool2d):
        for impl, present in (
            ("manual", False),
            ("im2col", False),
            ("shift_add", False),
            ("banded", False),
            ("xla", True),
        ):
            f = jax.jit(lambda x, fn=fn, impl=impl: fn(x, 2, impl=impl))
            text = f.lower(x).as_text() + jax.jit(jax.grad(lambda x, f=f: f(x).sum())).lower(x).as_text()
            assert ("reduce_window" in text) == present, (fn.__name__, impl)
            assert "convolution" not in text


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: jc.max_pool2d(jnp.ones((4, 4)), 2),
            ValueError,
            r"max_pool2d: x must have 3 or 4 dimensions, got shape \(4, 4\)",
        ),
        (
            lambda: jc.max_pool2d(X44, 2, padding=2),
            ValueError,
            r"max_pool2d: padding must be at most half the window on each side",
        ),
        (
            lambda: jc.avg_pool2d(X44, 5),
            ValueError,
            r"avg_pool2d: kernel extent 5 .* larger than the padded input 4 along H",
        ),
        (lambda: jc.avg_pool2d(X44, 2, stride=0), ValueError, r"avg_pool2d: stride must be >= 1, got 0"),
        (lambda: jc.avg_pool2d(X44, 0), ValueError, r"avg_pool2d: kernel_size must be >= 1, got 0"),
        (
            lambda: jc.avg_pool2d(X44, 2, count_include_pad=1),
            TypeError,
            r"count_include_pad must be a bool, got 1",
        ),
        (lambda: jc.max_pool2d(X44, 2, layout="CHWN"), ValueError, r"max_pool2d: layout must be one of"),
        (
            lambda: jc.max_pool2d(X44.astype(jnp.int32), 2),
            TypeError,
            r"max_pool2d: x must have a floating-point dtype, got int32",
        ),
        (
            lambda: jc.pool2d(X3, 2, "min"),
            ValueError,
            r"pool2d: mode must be one of \('max', 'avg'\), got 'min'",
        ),
        (lambda: jc.pool2d(X3, 2, impl="numpy"), ValueError, r"pool2d: impl must be one of"),
        (lambda: jc.pool2d(X3[None], 2), ValueError, r"pool2d: X must have 2 dimensions"),
    ],
)
def test_pool_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---- PyTorch's options --------------------------------------------------------------------------


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
        y = jc.max_pool2d(jnp.asarray(x), 3, stride=2, padding=1, dilation=(2, 1), ceil_mode=True, impl=impl)
        reference.assert_close(
            y, F.max_pool2d(t, 3, stride=2, padding=1, dilation=(2, 1), ceil_mode=True).numpy()
        )
        for include in (True, False):
            for divisor in (None, 2):
                expected = F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=include,
                                        divisor_override=divisor).numpy()  # fmt: skip
                y = jc.avg_pool2d(jnp.asarray(x), 3, stride=2, padding=1, ceil_mode=True,
                                  count_include_pad=include, divisor_override=divisor, impl=impl)  # fmt: skip
                reference.assert_close(y, expected)


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
    ],
)
def test_bad_pytorch_options_are_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call(jnp.ones((1, 1, 4, 4)))
