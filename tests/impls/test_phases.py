"""Transposed convolutions on their phases (jaxconv.impls.phases): the same values as lax and the float64
scatter definition under every hand-written impl, gradients too, and no product of an inserted zero; and
conv_general_dilated with both dilations, as lax."""

import re

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import jaxconv as jc
from jaxconv.impls import phases
from jaxconv.spec import ConvSpec
from tests import reference
from tests.draws import examples


@examples(5)
@given(
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    output_padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    groups=st.sampled_from([1, 2]),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    impl=st.sampled_from(["auto", "im2col", "shift_add", "stencil", "winograd", "banded"]),
    seed=st.integers(0, 2**16),
)
def test_transposed_by_phases_matches_the_float64_scatter(stride, kernel, padding, output_padding, groups,
                                                          layout, impl, seed):  # fmt: skip
    output_padding = tuple(min(op, s - 1) for op, s in zip(output_padding, stride, strict=True))
    sizes = zip((5, 4), padding, stride, kernel, output_padding, strict=True)
    if any((n - 1) * s - 2 * p + k - 1 + op + 1 < 1 for n, p, s, k, op in sizes):
        return  # an empty output: refused by conv_transpose2d, tested elsewhere
    rng = np.random.default_rng(seed)
    x, w, b = (
        rng.standard_normal((2, 4, 5, 4)),
        rng.standard_normal((4, 6 // groups, *kernel)),
        rng.standard_normal(6),
    )
    options = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups)
    expected = reference.conv_transpose2d(x, w, b, **options)
    args = [jnp.asarray(a, jnp.float32) for a in (x, w, b)]
    if layout == "NHWC":
        args[0], args[1] = args[0].transpose(0, 2, 3, 1), args[1].transpose(2, 3, 1, 0)
    y = jc.conv_transpose2d(*args, layout=layout, impl=impl, **options)
    reference.assert_close(y if layout == "NCHW" else y.transpose(0, 3, 1, 2), expected, tol=5e-5)
    g = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
    grads = jax.grad(lambda x, w, i: jnp.sum(jc.conv_transpose2d(x, w, layout=layout, impl=i, **options) * g),
                     argnums=(0, 1))  # fmt: skip
    for got, want in zip(grads(*args[:2], impl), grads(*args[:2], "xla"), strict=True):
        reference.assert_close(got, want, tol=5e-5)


@examples(5)
@given(
    lhs_dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    rhs_dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pads=st.tuples(
        st.tuples(st.integers(-1, 3), st.integers(-1, 3)), st.tuples(st.integers(-1, 3), st.integers(-1, 3))
    ),
    impl=st.sampled_from(["auto", "im2col", "stencil"]),
    seed=st.integers(0, 2**16),
)
def test_conv_general_dilated_with_either_dilation_is_lax_s(
    lhs_dilation, rhs_dilation, kernel, pads, impl, seed
):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((2, 3, 6, 5)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 3, *kernel)), jnp.float32)
    call = dict(window_strides=(1, 1), padding=pads, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation)
    try:
        expected = lax.conv_general_dilated(x, w, **call)
    except (TypeError, ValueError):
        return  # lax refuses (a crop past the input): tested in test_conv_general
    y = jc.conv_general_dilated(x, w, **call, impl=impl)
    reference.assert_close(y, expected, tol=5e-5)


def test_transposed_phases_do_a_stride_squared_fraction_of_the_spread_form_s_products():
    spec = ConvSpec(batch=2, in_channels=8, out_channels=4, input_hw=(16, 16), kernel=(4, 4), groups=2,
                    pads=((2, 2), (2, 2)), input_dilation=(2, 2), transposed=True)  # fmt: skip
    subs = phases.phase_specs(spec)  # grouped: phase by phase
    assert len(subs) == 4 and all(sub.kernel == (2, 2) and sub.input_dilation == (1, 1) for sub in subs)
    assert sum(sub.flops for sub in subs) * 4 <= spec.flops * 1.3  # the spread form's extra is its zeros


def test_a_2x2_stride_2_upsampling_runs_as_one_1x1_convolution_with_four_times_the_channels():
    x, w = jnp.ones((1, 8, 4, 4)), jax.random.normal(jax.random.key(0), (8, 3, 2, 2))
    text = str(jax.make_jaxpr(lambda x, w: jc.conv_transpose2d(x, w, stride=2, impl="im2col"))(x, w))
    assert text.count("name=conv2d_im2col") == 1  # the four phases merged: one core call
    (merged,) = phases.phase_specs(_spec_of_2x2_upsampling())
    assert merged.kernel == (1, 1) and merged.out_channels == 4 * 3 and not merged.transposed
    spread = re.findall(r"padding_config=\(\([^)]*\), \([^)]*\), \([^)]*, 1\)", text)
    assert not spread  # no input spread with zeros
    np.testing.assert_allclose(
        jc.conv_transpose2d(x, w, stride=2, impl="im2col"), jc.conv_transpose2d(x, w, stride=2, impl="xla"),
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip


def test_phases_merge_where_ungrouped_narrow_and_not_too_wasteful():
    upsampling = _spec_of_2x2_upsampling()
    assert len(phases.phase_specs(upsampling.replace(in_channels=6, out_channels=4, groups=2))) == 4
    wide = phases.MAX_MERGED_OUT_CHANNELS + 1
    assert len(phases.phase_specs(upsampling.replace(out_channels=wide))) == 4
    # A 4x4 kernel at stride 2, padding 1: the phases' 2x2 windows differ, the common one is 3x3:
    # 36 products per input pixel and output channel where the phases do 16 (the most allowed).
    four_by_four = upsampling.replace(kernel=(4, 4), pads=((2, 2), (2, 2)))
    (merged,) = phases.phase_specs(four_by_four)
    assert merged.kernel == (3, 3) and merged.out_channels == 12 and merged.pads == ((1, 1), (1, 1))
    assert merged.flops == phases.MAX_MERGED_WASTE * four_by_four.flops / 4  # the spread form: 4x the phases'
    # Past MAX_MERGED_WASTE (disjoint 1x1 windows, a 2x2 common one: 4x the products), phase by phase.
    assert len(phases.phase_specs(upsampling.replace(pads=((0, 0), (0, 0))))) == 4


def _spec_of_2x2_upsampling():
    return ConvSpec(batch=1, in_channels=8, out_channels=3, input_hw=(4, 4), kernel=(2, 2), pads=((1, 1), (1, 1)),
                    input_dilation=(2, 2), transposed=True)  # fmt: skip
