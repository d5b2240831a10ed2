"""impl="pallas": the Pallas kernel (interpreted on CPU) against the float64 loop and XLA, forward and
backward, with every tiling the accelerators use; and its TPU and GPU programs hold the kernels."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import export, lax

import jaxconv as jc
from jaxconv.impls import pallas
from tests import reference

TILINGS = ("interpret", "mosaic", "triton")
# The Triton custom call has no export compatibility guarantee; these programs are read, never run.
UNCHECKED = [export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
KERNEL_CALLS = {"tpu": "tpu_custom_call", "cuda": "__gpu$xla.gpu.triton"}


@given(
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    groups=st.sampled_from([1, 2]),
    padding=st.one_of(
        st.integers(0, 2),
        st.tuples(
            st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))
        ),
    ),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pallas_matches_the_float64_reference(kernel, stride, dilation, groups, padding, layout, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 11, 9))
    w = rng.standard_normal((6, 4 // groups, *kernel))
    b = rng.standard_normal(6) if bias else None
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    pads = ((padding, padding), (padding, padding)) if isinstance(padding, int) else padding
    if 11 + sum(pads[0]) < extent[0] or 9 + sum(pads[1]) < extent[1]:
        return  # the kernel does not fit: conv2d's own error, tested elsewhere
    expected = reference.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xs, ws = (x, w) if layout == "NCHW" else (x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0))
    y = jc.conv2d(
        jnp.asarray(xs, jnp.float32), jnp.asarray(ws, jnp.float32), None if b is None else jnp.asarray(b, jnp.float32),
        stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout, impl="pallas",
    )  # fmt: skip
    reference.assert_close(y if layout == "NCHW" else y.transpose(0, 3, 1, 2), expected)


@settings(max_examples=6)
@given(
    tiling=st.sampled_from(TILINGS),
    shape=st.sampled_from([(2, 9, 11, 3, 5), (1, 20, 18, 40, 150), (3, 13, 7, 6, 16)]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_every_backend_tiling_computes_the_same_convolution(tiling, shape, kernel, stride, dilation, seed):
    # Mosaic's and Triton's tiles (padded channels, row tiles, channel blocks, several output-channel
    # programs) run in the interpreter: the index arithmetic a TPU or GPU runs, checked here.
    n, h, wd, c, o = shape
    rng = np.random.default_rng(seed)
    x, w, b = (
        rng.standard_normal((n, h, wd, c)),
        rng.standard_normal((kernel, kernel, c, o)),
        rng.standard_normal(o),
    )
    y = pallas.conv2d_pallas_nhwc(
        jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32), stride=(stride, stride),
        pads=((1, 0), (0, 1)), dilation=(dilation, dilation), precision="highest", tiling=tiling,
    )  # fmt: skip
    expected = reference.conv2d(
        np.pad(x, ((0, 0), (1, 0), (0, 1), (0, 0))).transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), b,
        stride=stride, dilation=dilation,
    )  # fmt: skip
    reference.assert_close(y.transpose(0, 3, 1, 2), expected)


def _xla(x, w, b, stride, pads, dilation, activation=None):
    y = lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                 precision="highest") + b[None, None, None, :]  # fmt: skip
    return y if activation is None else pallas.ACTIVATIONS[activation](y)


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "pads", "dilation", "activation"),
    [
        ((2, 12, 10, 4), (3, 2, 4, 6), (2, 3), ((0, 2), (1, 0)), (1, 1), None),
        ((1, 13, 13, 2), (3, 3, 2, 4), (2, 2), ((2, 1), (0, 0)), (2, 3), "relu"),
        ((2, 10, 10, 6), (5, 5, 6, 16), (1, 1), ((0, 0), (0, 0)), (1, 1), "sigmoid"),
        ((2, 8, 8, 40), (1, 1, 40, 150), (1, 1), ((0, 0), (0, 0)), (1, 1), None),
    ],
)
def test_the_kernel_gradients_match_xla(tiling, x_shape, w_shape, stride, pads, dilation, activation):
    kx, kw, kb, kd = jax.random.split(jax.random.key(sum(x_shape)), 4)
    x, w, b = (
        jax.random.normal(kx, x_shape),
        jax.random.normal(kw, w_shape),
        jax.random.normal(kb, w_shape[-1:]),
    )
    expected_y = _xla(x, w, b, stride, pads, dilation, activation)
    dy = jax.random.normal(kd, expected_y.shape)

    def ours(x, w, b):
        return pallas.conv2d_pallas_nhwc(x, w, b, stride=stride, pads=pads, dilation=dilation, activation=activation,
                                         precision="highest", tiling=tiling)  # fmt: skip

    y, vjp = jax.vjp(ours, x, w, b)
    _, expected_vjp = jax.vjp(lambda *a: _xla(*a, stride, pads, dilation, activation), x, w, b)
    reference.assert_close(y, expected_y)
    for got, want in zip(vjp(dy), expected_vjp(dy), strict=True):
        reference.assert_close(got, want, tol=2e-5)


def test_the_backward_pass_is_kernels_not_xla_autodiff():
    # The custom VJP's backward holds the two kernels (input gradient, weight gradient), beside the forward's.
    x, w = jnp.ones((1, 6, 6, 2)), jnp.ones((3, 3, 2, 4))
    grad = jax.grad(lambda x, w: jc.conv2d(x, w, layout="NHWC", impl="pallas").sum(), argnums=(0, 1))
    jaxpr = str(jax.make_jaxpr(grad)(x, w))
    assert {"jaxconv_conv_forward", "jaxconv_conv_weight_grad"} <= set(
        re.findall(r"name=(jaxconv_\w+)", jaxpr)
    )
    assert jaxpr.count("name=jaxconv_conv_forward") >= 2  # the forward, and the input gradient
    assert "conv_general_dilated" not in jaxpr


def test_every_public_op_runs_through_the_kernel():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 3, 9, 9)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 3, 3, 3)), jnp.float32)
    wt = jnp.asarray(rng.standard_normal((3, 4, 3, 3)), jnp.float32)
    for name, fn in {
        "conv2d": lambda impl: jc.conv2d(x, w, stride=2, padding=1, impl=impl),
        "conv_transpose2d": lambda impl: jc.conv_transpose2d(
            x, wt, stride=2, padding=1, output_padding=1, impl=impl
        ),
        "corr2d": lambda impl: jc.corr2d(x[0, 0], w[0, 0], impl=impl),
        "drop-in": lambda impl: jc.conv_general_dilated(x, w, (1, 2), "SAME", rhs_dilation=(2, 1), impl=impl),
        "max_pool2d": lambda impl: jc.max_pool2d(x, 3, stride=2, impl=impl),
    }.items():
        reference.assert_close(fn("pallas"), fn("xla")), name


def test_half_precision_inputs_accumulate_in_float32_and_keep_their_dtype():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    expected = reference.conv2d(x, w, padding=1)
    for dtype in ("bfloat16", "float16"):
        y = jc.conv2d(jnp.asarray(x, dtype), jnp.asarray(w, dtype), padding=1, impl="pallas")
        assert y.dtype == jnp.dtype(dtype)
        reference.assert_close(y, expected, dtype=dtype)


def test_jit_and_vmap():
    x = jax.random.normal(jax.random.key(0), (3, 2, 8, 8))  # three unbatched (C, H, W) images
    w = jax.random.normal(jax.random.key(1), (4, 2, 3, 3))
    y = jax.jit(jax.vmap(lambda image: jc.conv2d(image, w, padding=1, impl="pallas")))(x)
    reference.assert_close(y, jc.conv2d(x, w, padding=1, impl="xla"))


def test_forward_mode_is_refused_by_the_custom_vjp():
    x, w = jnp.ones((1, 1, 5, 5)), jnp.ones((1, 1, 3, 3))
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: jc.conv2d(x, w, impl="pallas"), (x,), (x,))


@pytest.mark.parametrize(("argument", "value"), [("activation", "tanh"), ("tiling", "cuda")])
def test_bad_options_name_the_argument(argument, value):
    x, w = jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match=rf"conv2d_pallas: {argument} must be .* got '{value}'"):
        pallas.conv2d_pallas_nhwc(
            x, w, None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), **{argument: value}
        )


def test_tiles_for_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="tiles_for: backend must be one of"):
        pallas.tiles_for("metal", oh=4, ow=4, c=1, o=1)


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_the_accelerator_programs_hold_the_kernels_and_no_xla_convolution(platform, layout):
    # LeNet's two layers, forward and backward, as a GPU or TPU would compile them.
    for x_shape, w_shape, padding in (((8, 1, 28, 28), (6, 1, 5, 5), 2), ((8, 6, 14, 14), (16, 6, 5, 5), 0)):
        if layout == "NHWC":
            x_shape, w_shape = (x_shape[0], *x_shape[2:], x_shape[1]), (*w_shape[2:], w_shape[1], w_shape[0])

        def loss(x, w, b, padding=padding):
            return jax.nn.sigmoid(jc.conv2d(x, w, b, padding=padding, layout=layout, impl="pallas")).sum()

        args = [
            jax.ShapeDtypeStruct(s, jnp.float32)
            for s in (x_shape, w_shape, (w_shape[0 if layout == "NCHW" else 3],))
        ]
        for fn in (loss, jax.grad(loss, argnums=(0, 1, 2))):
            text = export.export(jax.jit(fn), platforms=[platform], disabled_checks=UNCHECKED)(
                *args
            ).mlir_module()
            assert KERNEL_CALLS[platform] in text
            assert "stablehlo.convolution" not in text


def test_the_cpu_program_interprets_the_kernel_without_an_xla_convolution():
    x, w = jax.ShapeDtypeStruct((2, 1, 12, 12), jnp.float32), jax.ShapeDtypeStruct((3, 1, 5, 5), jnp.float32)
    grad = jax.grad(lambda x, w: jc.conv2d(x, w, padding=2, impl="pallas").sum(), argnums=(0, 1))
    text = export.export(jax.jit(grad), platforms=["cpu"])(x, w).mlir_module()
    assert "stablehlo.convolution" not in text and "custom_call" not in text
