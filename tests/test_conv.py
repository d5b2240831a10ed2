"""conv2d: both implementations against the float64 loop reference, gradients, transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxconv as jc
from tests import reference
from tests.draws import examples

pair = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = draw(st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    stride = draw(st.one_of(st.integers(1, 3), pair))
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    h = draw(st.integers((kh - 1) * dh + 1, 9))
    w = draw(st.integers((kw - 1) * dw + 1, 9))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
            ),
            st.sampled_from(["valid", "same", "SAME"]),
        )
    )
    return dict(
        n=draw(st.integers(1, 2)),
        c=c,
        o=o,
        h=h,
        w=w,
        kh=kh,
        kw=kw,
        groups=groups,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=draw(st.booleans()),
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        seed=draw(st.integers(0, 2**16)),
    )


def _arrays(case, dtype=np.float32):
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    wt = rng.normal(size=(case["o"], case["c"] // case["groups"], case["kh"], case["kw"])).astype(dtype)
    b = rng.normal(size=(case["o"],)).astype(dtype) if case["bias"] else None
    return x, wt, b


def _to_layout(x, wt, layout):
    if layout == "NHWC":
        return x.transpose(0, 2, 3, 1), wt.transpose(2, 3, 1, 0)
    return x, wt


def _options(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


@examples(10)  # x every impl per draw
@given(conv_cases())
def test_every_impl_matches_the_float64_reference(case):
    x, wt, b = _arrays(case)
    expected = reference.conv2d(x, wt, b, **_options(case))
    xl, wl = _to_layout(x, wt, case["layout"])
    outputs = {}
    for impl in jc.IMPL_CHOICES:
        y = jc.conv2d(
            jnp.asarray(xl),
            jnp.asarray(wl),
            None if b is None else jnp.asarray(b),
            layout=case["layout"],
            impl=impl,
            **_options(case),
        )
        y = np.asarray(y)
        outputs[impl] = y.transpose(0, 3, 1, 2) if case["layout"] == "NHWC" else y
        assert y.dtype == np.float32
        reference.assert_close(outputs[impl], expected, tol=reference.float32_tolerance(impl))
    for impl in jc.IMPL_CHOICES:
        reference.assert_close(outputs[impl], outputs["xla"], tol=reference.float32_tolerance(impl))


def _small_case():
    return dict(
        n=2,
        c=4,
        o=4,
        h=7,
        w=6,
        kh=3,
        kw=2,
        groups=2,
        stride=(2, 1),
        padding=((1, 0), (2, 1)),
        dilation=(1, 2),
        bias=True,
        layout="NCHW",
        seed=3,
    )


def test_gradients_of_both_impls_agree(impl):
    case = _small_case()
    x, wt, b = (jnp.asarray(a) for a in _arrays(case))

    def loss(impl, x, wt, b):
        return jnp.sum(jnp.sin(jc.conv2d(x, wt, b, impl=impl, **_options(case))))

    grads = jax.grad(loss, argnums=(1, 2, 3))
    for g_impl, g_xla in zip(grads(impl, x, wt, b), grads("xla", x, wt, b), strict=True):
        reference.assert_close(g_impl, g_xla, tol=reference.GRAD_TOLERANCE["float32"])


def test_gradients_match_finite_differences(impl):
    case = _small_case()
    with jax.enable_x64(True):
        x, wt, b = (jnp.asarray(a) for a in _arrays(case, np.float64))
        f = lambda x, wt, b: jc.conv2d(x, wt, b, impl=impl, **_options(case))  # noqa: E731
        # pallas and stencil are custom_vjps (their backward passes are kernels, or a loop): reverse mode only.
        modes = ("rev",) if impl in ("pallas", "stencil") else ("fwd", "rev")
        check_grads(f, (x, wt, b), order=1, modes=modes, atol=1e-6, rtol=1e-6)


def test_jit_equals_eager_and_vmap_equals_batch(impl):
    case = _small_case()
    x, wt, b = (jnp.asarray(a) for a in _arrays(case))
    # Weights are arguments, not closed-over constants that XLA could fold into a different program.
    f = lambda x, wt, b: jc.conv2d(x, wt, b, impl=impl, **_options(case))  # noqa: E731
    eager = f(x, wt, b)
    np.testing.assert_array_equal(jax.jit(f)(x, wt, b), eager)
    # Unbatched (C, H, W) under vmap is the batched call (up to the matmul's summation order).
    reference.assert_close(jax.vmap(f, in_axes=(0, None, None))(x, wt, b), eager)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_unbatched_input(impl, layout):
    x = jnp.ones((2, 5, 5)) if layout == "NCHW" else jnp.ones((5, 5, 2))
    w = jnp.ones((3, 2, 3, 3)) if layout == "NCHW" else jnp.ones((3, 3, 2, 3))
    y = jc.conv2d(x, w, layout=layout, impl=impl)
    assert y.shape == ((3, 3, 3) if layout == "NCHW" else (3, 3, 3))
    reference.assert_close(y, np.full(y.shape, 18.0))  # winograd's transforms round


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_preserved_and_close(impl, dtype):
    case = _small_case()
    x, wt, b = _arrays(case)
    expected = reference.conv2d(
        x.astype(dtype).astype(np.float64),
        wt.astype(dtype).astype(np.float64),
        b.astype(dtype).astype(np.float64),
        **_options(case),
    )
    y = jc.conv2d(
        jnp.asarray(x, dtype), jnp.asarray(wt, dtype), jnp.asarray(b, dtype), impl=impl, **_options(case)
    )
    assert y.dtype == dtype
    reference.assert_close(y, expected, dtype=jnp.dtype(dtype).name)


def test_float64_when_enabled(impl):
    case = _small_case()
    with jax.enable_x64(True):
        x, wt, b = _arrays(case, np.float64)
        y = jc.conv2d(jnp.asarray(x), jnp.asarray(wt), jnp.asarray(b), impl=impl, **_options(case))
        assert y.dtype == jnp.float64
        reference.assert_close(y, reference.conv2d(x, wt, b, **_options(case)), dtype="float64")


def _hlo(impl):
    x, w = jnp.ones((1, 2, 6, 6)), jnp.ones((3, 2, 3, 3))
    f = jax.jit(lambda x, w: jc.conv2d(x, w, padding=1, impl=impl))
    return f.lower(x, w).as_text(), jax.jit(jax.grad(lambda x, w: f(x, w).sum())).lower(x, w).as_text()


@pytest.mark.parametrize("impl", ["manual", "im2col", "shift_add", "banded", "winograd", "pallas"])
def test_hand_written_impls_never_lower_to_a_convolution(impl):
    forward, backward = _hlo(impl)
    assert "convolution" not in forward and "convolution" not in backward


def test_xla_lowers_to_a_convolution():
    forward, backward = _hlo("xla")
    assert "convolution" in forward and "convolution" in backward


X = jnp.ones((1, 3, 8, 8))
W = jnp.ones((2, 3, 3, 3))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(x=jnp.ones((3, 8))), ValueError, r"conv2d: x must have 3 or 4 dimensions, got shape \(3, 8\)"),
        (dict(weight=jnp.ones((2, 3, 3))), ValueError, r"conv2d: weight must have 4 dimensions"),
        (
            dict(weight=jnp.ones((2, 4, 3, 3))),
            ValueError,
            r"conv2d: weight has 4 input channels per group but x has 3 channels in 1 group\(s\), i.e. 3 per group \(x: \(1, 3, 8, 8\), weight: \(2, 4, 3, 3\)",
        ),
        (dict(groups=2), ValueError, r"input channels 3 and output channels 2 must be divisible by groups=2"),
        (
            dict(x=jnp.ones((1, 4, 8, 8)), weight=jnp.ones((3, 2, 3, 3)), groups=2),
            ValueError,
            r"output channels 3 must be divisible by groups=2",
        ),
        (dict(groups=0), ValueError, r"groups must be >= 1, got 0"),
        (
            dict(weight=jnp.ones((2, 3, 9, 3))),
            ValueError,
            r"kernel extent 9 \(after dilation\) is larger than the padded input 8 along H",
        ),
        (dict(dilation=4), ValueError, r"kernel extent 9 \(after dilation\)"),
        (dict(stride=0), ValueError, r"conv2d: stride must be >= 1, got 0"),
        (dict(dilation=(1, -1)), ValueError, r"conv2d: dilation must be >= 1"),
        (dict(padding=-1), ValueError, r"conv2d: padding must be >= 0, got -1"),
        (dict(padding="full"), ValueError, r"conv2d: padding must be 'same', 'valid'"),
        (dict(layout="NWHC"), ValueError, r"conv2d: layout must be one of \('NCHW', 'NHWC'\), got 'NWHC'"),
        (dict(impl="cudnn"), ValueError, r"conv2d: impl must be one of"),
        (dict(bias=jnp.ones((3,))), ValueError, r"conv2d: bias must have shape \(2,\), got \(3,\)"),
        (dict(bias=jnp.ones((2, 1))), ValueError, r"conv2d: bias must have 1 dimensions"),
        (
            dict(x=jnp.ones((1, 3, 8, 8), jnp.int32)),
            TypeError,
            r"conv2d: x must have a floating-point dtype, got int32",
        ),
        (dict(x=jnp.ones((1, 3, 8, 8), bool)), TypeError, r"x must have a floating-point dtype, got bool"),
        (
            dict(weight=jnp.ones((2, 3, 3, 3), jnp.bfloat16)),
            TypeError,
            r"arrays must share one dtype, got x: float32, weight: bfloat16",
        ),
        (
            dict(x=np.ones((1, 3, 8, 8)).tolist()),
            TypeError,
            r"conv2d: x must be a jax or numpy array, got list",
        ),
        (dict(groups=1.0), TypeError, r"conv2d: groups must be an int, got 1.0"),
    ],
)
def test_conv2d_rejects_bad_input(kwargs, exc, match):
    args = dict(x=X, weight=W) | kwargs
    with pytest.raises(exc, match=match):
        jc.conv2d(**args)


def test_nhwc_weight_layout_is_checked():
    with pytest.raises(ValueError, match=r"weight has 2 input channels per group but x has 3"):
        jc.conv2d(jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 2, 4)), layout="NHWC")
