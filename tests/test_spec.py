"""The one description of a call: sizes against the shape functions and lax, hashing, JSON, refusals."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import jaxconv as jc
from jaxconv import impls
from jaxconv.spec import ConvSpec, PoolSpec

RESNET = ConvSpec(batch=32, in_channels=64, out_channels=64, input_hw=(56, 56), kernel=(3, 3),
                  pads=((1, 1), (1, 1)))  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    input_dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pads=st.tuples(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), st.tuples(st.integers(-1, 3), st.integers(-1, 3))),
    layout=st.sampled_from(["NCHW", "NHWC"]),
)  # fmt: skip
def test_shapes_match_lax(size, kernel, stride, dilation, input_dilation, pads, layout):
    try:
        spec = ConvSpec(batch=2, in_channels=4, out_channels=6, input_hw=size, kernel=kernel, stride=stride,
                        pads=pads, dilation=dilation, input_dilation=input_dilation, groups=2, layout=layout)  # fmt: skip
    except ValueError:
        return  # the kernel outgrows the padded input; lax refuses such a call too (checked below)
    dn = (layout, "OIHW" if layout == "NCHW" else "HWIO", layout)
    y = jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(x, w, stride, pads, input_dilation, dilation, dn, feature_group_count=2),
        jax.ShapeDtypeStruct(spec.x_shape, jnp.float32), jax.ShapeDtypeStruct(spec.w_shape, jnp.float32),
    )  # fmt: skip
    assert y.shape == spec.y_shape
    assert spec.spread().output_hw == spec.output_hw and spec.spread().input_dilation == (1, 1)


def test_output_size_is_the_books_rule():
    assert RESNET.output_hw == jc.conv_output_shape(56, 3, padding=1) == (56, 56)
    assert RESNET.replace(stride=(2, 2)).output_hw == jc.conv_output_shape(56, 3, padding=1, stride=2)
    assert RESNET.replace(dilation=(2, 2)).kernel_extent == (5, 5)
    assert RESNET.flops == 2 * 32 * 64 * 56 * 56 * 64 * 9
    assert RESNET.replace(groups=64).flops == RESNET.flops // 64
    assert RESNET.replace(layout="NHWC").w_shape == (3, 3, 64, 64)


def test_transposed_form_is_conv_transpose_output_shape():
    spec = ConvSpec(batch=1, in_channels=2, out_channels=3, input_hw=(4, 5), kernel=(3, 3),
                    pads=((1, 2), (1, 2)), input_dilation=(2, 2))  # fmt: skip
    assert spec.input_dilation == (2, 2) and spec.spread_hw == (7, 9)
    assert spec.output_hw == jc.conv_transpose_output_shape((4, 5), 3, stride=2, padding=1, output_padding=1)


def test_hashable_and_stable_json():
    same = ConvSpec(**json.loads(RESNET.to_json()) | {"input_hw": (56, 56), "kernel": (3, 3), "stride": (1, 1),
                    "pads": ((1, 1), (1, 1)), "dilation": (1, 1), "input_dilation": (1, 1)})  # fmt: skip
    assert same == RESNET and hash(same) == hash(RESNET) and {RESNET: 1}[same] == 1
    assert ConvSpec.from_json(RESNET.to_json()) == RESNET
    assert RESNET.to_json() == same.to_json()
    assert RESNET.to_json() != RESNET.replace(dtype="bfloat16").to_json()
    pool = PoolSpec(batch=1, channels=3, input_hw=(9, 9), window=(3, 3), stride=(2, 2), mode="avg")
    assert PoolSpec.from_json(pool.to_json()) == pool and pool.output_hw == jc.pool_output_shape(
        9, 3, stride=2
    )


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        (dict(stride=2), TypeError, r"ConvSpec: stride must be a tuple of two ints, got 2"),
        (dict(stride=(1, 1, 1)), TypeError, r"ConvSpec: stride must be a tuple of two ints"),
        (dict(dilation=(0, 1)), ValueError, r"ConvSpec: dilation must be >= 1, got \(0, 1\)"),
        (
            dict(groups=5),
            ValueError,
            r"ConvSpec: in_channels 64 and out_channels 64 must be divisible by groups=5",
        ),
        (
            dict(kernel=(60, 3)),
            ValueError,
            r"ConvSpec: window extent 60 is larger than the padded input 58 along H",
        ),
        (dict(layout="CHWN"), ValueError, r"ConvSpec: layout must be one of \('NCHW', 'NHWC'\), got 'CHWN'"),
        (dict(batch=-1), ValueError, r"ConvSpec: batch must be an int >= 0, got -1"),
        (dict(pads=(1, 1)), TypeError, r"ConvSpec: pads must be a tuple of two ints"),
    ],
)
def test_refuses_what_is_not_a_call(changes, error, match):
    with pytest.raises(error, match=match):
        RESNET.replace(**changes)


def test_the_ops_describe_their_calls(monkeypatch):
    seen = []
    real = impls.conv

    def spy(impl, x, w, b, spec, **kwargs):
        seen.append(spec)
        return real(impl, x, w, b, spec, **kwargs)

    monkeypatch.setattr(impls, "conv", spy)
    x = jnp.ones((2, 9, 8, 4))
    jc.conv2d(x, jnp.ones((3, 3, 2, 6)), padding="same", stride=2, groups=2, layout="NHWC")
    jc.conv_transpose2d(x, jnp.ones((3, 3, 3, 4)), stride=2, padding=1, output_padding=1, layout="NHWC")
    jc.conv_general_dilated(x, jnp.ones((3, 3, 4, 5)), (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                            dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
    conv, transposed, general = seen
    assert conv == ConvSpec(batch=2, in_channels=4, out_channels=6, input_hw=(9, 8), kernel=(3, 3), stride=(2, 2),
                            pads=((1, 1), (0, 1)), groups=2, layout="NHWC")  # fmt: skip
    assert transposed.transposed and transposed.input_dilation == (2, 2) and transposed.out_channels == 3
    assert transposed.output_hw == jc.conv_transpose_output_shape(
        (9, 8), 3, stride=2, padding=1, output_padding=1
    )
    assert general.input_dilation == (2, 2) and general.y_shape == (2, 19, 17, 5) and not general.transposed
    np.testing.assert_equal(len({conv, transposed, general}), 3)
