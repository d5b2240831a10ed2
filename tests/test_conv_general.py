"""jc.conv_general_dilated: lax's signature and numbers, through every impl, in every form lax takes."""

import inspect
import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import jaxconv as jc
from tests import reference
from tests.draws import examples

HIGHEST = lax.Precision.HIGHEST


def test_signature_is_lax_s_plus_a_keyword_only_impl():
    ours = inspect.signature(jc.conv_general_dilated).parameters
    theirs = inspect.signature(lax.conv_general_dilated).parameters
    assert list(ours)[:-1] == list(theirs)
    for name, param in theirs.items():
        assert ours[name].default == param.default and ours[name].kind == param.kind, name
    assert ours["impl"].kind is inspect.Parameter.KEYWORD_ONLY and ours["impl"].default == "auto"


def _permuted(letters: str, draw) -> str:
    return "".join(draw(st.permutations(letters)))


@st.composite
def calls(draw):
    """A 2-D lax convolution call: operands laid out by random dimension numbers, and its options."""
    lhs_spec, rhs_spec, out_spec = _permuted("NCHW", draw), _permuted("OIHW", draw), _permuted("NCHW", draw)
    groups = draw(st.sampled_from([1, 2]))
    n, cpg, opg = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(4, 9)), draw(st.integers(4, 9))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    rhs_dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    lhs_dilation = draw(st.sampled_from([None, (1, 1), (2, 1), (2, 2)]))
    if lhs_dilation in (None, (1, 1)) and draw(st.booleans()):
        padding = draw(st.sampled_from(["SAME", "VALID", "SAME_LOWER"]))
    else:
        padding = tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(2))
    sizes = {"N": n, "C": cpg * groups, "H": h, "W": w}
    kernel = {"O": opg * groups, "I": cpg, "H": kh, "W": kw}
    lhs_shape = tuple(sizes[c] for c in lhs_spec)
    rhs_shape = tuple(kernel[c] for c in rhs_spec)
    # keep the padded (and spread) input at least as large as the dilated kernel; lax orders strides,
    # dilations and pads as the kernel spec orders its spatial axes
    spatial = [c for c in rhs_spec if c in "HW"]
    in_dilation = lhs_dilation or (1, 1)
    spread = [(sizes[a] - 1) * d + 1 for a, d in zip(spatial, in_dilation, strict=True)]
    extent = [(kernel[a] - 1) * d + 1 for a, d in zip(spatial, rhs_dilation, strict=True)]
    pads = lax.padtype_to_pads(spread, extent, strides, padding) if isinstance(padding, str) else padding
    if any(n + lo + hi < k for n, (lo, hi), k in zip(spread, pads, extent, strict=True)):
        padding = ((3, 3), (3, 3))
    return dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, window_strides=strides, padding=padding,
                lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                dimension_numbers=(lhs_spec, rhs_spec, out_spec), feature_group_count=groups)  # fmt: skip


def _operands(call, dtype=jnp.float32):
    kx, kw = jax.random.split(jax.random.key(0))
    return (
        jax.random.normal(kx, call["lhs_shape"]).astype(dtype),
        jax.random.normal(kw, call["rhs_shape"]).astype(dtype),
    )


def _options(call):
    return {k: v for k, v in call.items() if k not in ("lhs_shape", "rhs_shape")}


@pytest.mark.parametrize("impl", jc.IMPLS)
@examples(4)  # per impl: 32 random calls in all
@given(call=calls())
def test_every_impl_gives_lax_s_numbers_in_every_layout_and_padding_form(call, impl):
    lhs, rhs = _operands(call)
    options = _options(call)
    strides, padding = options.pop("window_strides"), options.pop("padding")
    expected = lax.conv_general_dilated(lhs, rhs, strides, padding, precision=HIGHEST, **options)
    got = jc.conv_general_dilated(lhs, rhs, strides, padding, precision=HIGHEST, impl=impl, **options)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    reference.assert_close(got, expected, tol=reference.float32_tolerance(impl))


@pytest.mark.parametrize(
    "dn", [None, ("NHWC", "HWIO", "NHWC"), ("NCHW", "HWIO", "NHWC"), ("HWCN", "OIWH", "CNHW")]
)
def test_gradients_match_lax_s(impl, dn):
    call = dict(lhs_shape=(2, 4, 7, 6), rhs_shape=(4, 2, 3, 2), window_strides=(2, 1), padding=((1, 0), (0, 1)),
                lhs_dilation=(1, 2), rhs_dilation=(1, 2), feature_group_count=2)  # fmt: skip
    lhs, rhs = _operands(call)
    if dn is not None:  # the same logical operands, laid out as dn says
        lhs_spec, rhs_spec, _ = dn
        lhs = lhs.transpose(["NCHW".index(c) for c in lhs_spec])
        rhs = rhs.transpose(["OIHW".index(c) for c in rhs_spec])
    options = _options(call) | {"dimension_numbers": dn, "precision": HIGHEST}
    strides, padding = options.pop("window_strides"), options.pop("padding")

    def loss(conv, lhs, rhs):
        return jnp.sum(jnp.sin(conv(lhs, rhs, strides, padding, **options)))

    expected = jax.grad(partial(loss, lax.conv_general_dilated), argnums=(0, 1))(lhs, rhs)
    got = jax.grad(partial(loss, partial(jc.conv_general_dilated, impl=impl)), argnums=(0, 1))(lhs, rhs)
    for g, e in zip(got, expected, strict=True):
        reference.assert_close(g, e, tol=reference.GRAD_TOLERANCE["float32"])


def test_jit_and_vmap_equal_the_plain_call(impl):
    lhs, rhs = _operands(dict(lhs_shape=(3, 2, 6, 6, 2), rhs_shape=(3, 3, 2, 4)))
    conv = partial(jc.conv_general_dilated, window_strides=(1, 1), padding="SAME",
                   dimension_numbers=("NHWC", "HWIO", "NHWC"), impl=impl)  # fmt: skip
    eager = jnp.stack([conv(x, rhs) for x in lhs])
    tol = reference.float32_tolerance(impl)  # batching may reorder winograd's sums
    reference.assert_close(jax.jit(conv)(lhs[0], rhs), eager[0], tol=tol)
    reference.assert_close(jax.vmap(conv, in_axes=(0, None))(lhs, rhs), eager, tol=tol)


def test_a_wider_preferred_element_type_is_the_result_dtype():
    lhs, rhs = _operands(dict(lhs_shape=(2, 3, 8, 8), rhs_shape=(4, 3, 3, 3)), jnp.bfloat16)
    expected = lax.conv_general_dilated(lhs, rhs, (1, 1), "SAME", preferred_element_type=jnp.float32)
    for impl in ("auto", "im2col", "manual"):
        got = jc.conv_general_dilated(lhs, rhs, (1, 1), "SAME", preferred_element_type=jnp.float32, impl=impl)
        assert got.dtype == jnp.float32
        reference.assert_close(got, expected)


def test_what_the_cores_do_not_do_goes_to_lax_with_auto_and_is_refused_by_a_hand_written_impl():
    x1, k1 = jnp.ones((2, 3, 10)), jnp.ones((4, 3, 3))
    x3, k3 = jnp.ones((1, 2, 5, 5, 5)), jnp.ones((3, 2, 2, 2, 2))
    xb, kb = jnp.ones((4, 3, 6, 6)), jnp.ones((4, 3, 3, 3))
    xi, ki = jnp.ones((1, 2, 5, 5), jnp.int32), jnp.ones((3, 2, 3, 3), jnp.int32)
    cases = [
        ((x1, k1, (1,), "SAME"), {}, "1-D convolutions"),
        ((x3, k3, (1, 1, 1), "VALID"), {}, "3-D convolutions"),
        ((xb, kb, (1, 1), "VALID"), {"batch_group_count": 2}, "batch_group_count=2"),
        ((xi, ki, (1, 1), "VALID"), {}, "non-floating dtypes"),
        ((xb, kb, (1, 1), "VALID"), {"precision": (HIGHEST, lax.Precision.DEFAULT)}, "precision="),
    ]
    for args, options, why in cases:
        np.testing.assert_array_equal(jc.conv_general_dilated(*args, **options),
                                      lax.conv_general_dilated(*args, **options))  # fmt: skip
        with pytest.raises(ValueError, match=f"impl='banded' does not do {why}"):
            jc.conv_general_dilated(*args, **options, impl="banded")


@pytest.mark.parametrize(
    ("args", "options", "match"),
    [
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3))),
            {},
            r"lhs and rhs must have one rank, got lhs: \(1, 2, 5, 5\), rhs: \(3, 2, 3\)",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"dimension_numbers": ("NCHW", "OIHX", "NCHW")},
            r"dimension_numbers do not fit the operands \(lhs: \(1, 2, 5, 5\), rhs: \(3, 2, 3, 3\)",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 3, 3, 3))),
            {},
            r"lhs has 2 feature channels and rhs 3 input and 3 output channels; with feature_group_count=1",
        ),
        ((jnp.ones((1, 4, 5, 5)), jnp.ones((3, 2, 3, 3))), {"feature_group_count": 2}, "a multiple of 2"),
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))), {"padding": "FULL"}, "padding must be 'SAME'"),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"padding": ((1, 1),)},
            "needs 2 .low, high. pairs",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"padding": "SAME", "lhs_dilation": (2, 2)},
            "string padding 'SAME' with lhs_dilation",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"window_strides": (0, 1)},
            "window_strides must be >= 1",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"window_strides": (1,)},
            "window_strides must be a pair",
        ),
        (
            (jnp.ones((1, 2, 2, 2)), jnp.ones((3, 2, 3, 3))),
            {"padding": ((-3, 0), (0, 0))},
            "negative padding .* crops more than",
        ),
        (
            (jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"impl": "cudnn"},
            r"impl must be one of \('auto'",
        ),
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))), {"precision": "fast"}, "precision 'fast' is not"),
    ],
)
def test_bad_calls_are_refused_naming_the_argument_and_the_shapes(args, options, match):
    options = {"window_strides": (1, 1), "padding": "VALID", "impl": "im2col"} | options
    with pytest.raises(ValueError, match=match):
        jc.conv_general_dilated(*args, options.pop("window_strides"), options.pop("padding"), **options)


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match="lhs: float32, rhs: bfloat16"):
        jc.conv_general_dilated(jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3), jnp.bfloat16), (1, 1), "VALID",
                                impl="im2col")  # fmt: skip


@pytest.mark.parametrize("impl", ["auto", "xla"])
@pytest.mark.parametrize(
    ("args", "options"),
    [
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3))), {}),  # ranks differ
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 3, 3, 3))), {}),  # channels do not fit
        (
            (jnp.ones((1, 4, 5, 5)), jnp.ones((3, 2, 3, 3))),
            {"feature_group_count": 2},
        ),  # groups do not divide O
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))), {"padding": ((1, 1),)}),
        ((jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3))), {"window_strides": (1,)}),
    ],
)
def test_auto_and_xla_raise_lax_s_own_errors(args, options, impl):
    options = {"window_strides": (1, 1), "padding": "VALID"} | options
    strides, padding = options.pop("window_strides"), options.pop("padding")
    with pytest.raises((TypeError, ValueError)) as theirs:
        lax.conv_general_dilated(*args, strides, padding, **options)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        jc.conv_general_dilated(*args, strides, padding, **options, impl=impl)


@pytest.mark.parametrize(
    "x_shape, w_shape, call",
    [
        (
            (1, 1, 0, 4),
            (1, 1, 1, 2),
            dict(padding=((0, 0), (0, 0)), lhs_dilation=(2, 1)),
        ),  # lax: (1, 1, 0, 3)
        (
            (1, 1, 0, 4),
            (1, 1, 1, 2),
            dict(padding=((1, 0), (0, 1)), lhs_dilation=(2, 1)),
        ),  # lax: zeros (1, 1, 1, 4)
        ((1, 1, 2, 2), (1, 1, 3, 3), dict(padding="VALID")),  # a window past the input: (1, 1, 0, 0)
        ((0, 2, 5, 5), (3, 2, 3, 3), dict(padding="SAME")),  # no images
        ((2, 0, 4, 4), (3, 0, 1, 1), dict(padding="VALID")),  # no input channels: zeros (2, 3, 4, 4)
    ],
)
def test_empty_inputs_and_outputs_give_lax_s_shapes_values_and_gradients(impl, x_shape, w_shape, call):
    x, w = jnp.ones(x_shape), jnp.ones(w_shape)
    expected = lax.conv_general_dilated(x, w, (1, 1), **call)
    y = jc.conv_general_dilated(x, w, (1, 1), **call, impl=impl)
    assert y.shape == expected.shape and y.dtype == expected.dtype
    np.testing.assert_array_equal(y, expected)

    def grads(f):
        return jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), argnums=(0, 1))(x, w)

    for got, want in zip(
        grads(lambda x, w: jc.conv_general_dilated(x, w, (1, 1), **call, impl=impl)),
        grads(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), **call)),
        strict=True,
    ):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
