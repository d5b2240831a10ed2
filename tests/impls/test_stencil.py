"""impl="stencil": depthwise and grouped convolutions as broadcast multiply-adds, against the float64 loop,
forward and both gradients (its weight gradient is a custom VJP), and the forms it must not take."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.impls import stencil
from jaxconv.spec import ConvSpec
from tests import reference
from tests.draws import examples


def _conv(x, w, layout, impl="stencil", **options):
    if layout == "NHWC":
        return jc.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), layout="NHWC", impl=impl,
                         **options).transpose(0, 3, 1, 2)  # fmt: skip
    return jc.conv2d(x, w, layout="NCHW", impl=impl, **options)


@examples(6)
@given(
    channels=st.sampled_from([(4, 4, 4), (3, 6, 3), (4, 8, 2), (6, 6, 1)]),  # (C, O, groups)
    kernel=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    seed=st.integers(0, 2**16),
)
def test_stencil_and_its_gradients_match_the_float64_reference(channels, kernel, stride, dilation, padding,
                                                               layout, seed):  # fmt: skip
    c, o, groups = channels
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if any(9 + 2 * p < e for p, e in zip(padding, extent, strict=True)):
        return  # the kernel does not fit: conv2d's own error, tested elsewhere
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, c, 9, 9)), rng.standard_normal((o, c // groups, *kernel))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = reference.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    x32, w32 = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    reference.assert_close(_conv(x32, w32, layout, **options), expected)
    g = jnp.asarray(rng.standard_normal(expected.shape), jnp.float32)
    grads = jax.grad(lambda x, w, impl: jnp.sum(_conv(x, w, layout, impl, **options) * g), argnums=(0, 1))
    for got, want in zip(grads(x32, w32, "stencil"), grads(x32, w32, "xla"), strict=True):
        reference.assert_close(got, want, tol=2e-5)


@examples(6)
@example(channels=(8, 8, 2), kernel=(3, 3), stride=(2, 1), dilation=(2, 1), padding=(1, 1), height=26,
         block_rows=5, layout="NHWC", seed=0)  # fmt: skip  # 3 blocks of 4 rows at stride 2, 0 rounded up
@example(channels=(4, 4, 4), kernel=(3, 3), stride=(1, 1), dilation=(1, 1), padding=(1, 1), height=13,
         block_rows=4, layout="NCHW", seed=1)  # fmt: skip  # a depthwise 3x3: autodiff's dx, 4 blocks of 4
@given(
    channels=st.sampled_from([(4, 8, 2), (4, 4, 4), (3, 6, 3), (8, 8, 2)]),  # (C, O, groups)
    kernel=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    height=st.integers(9, 26),
    block_rows=st.integers(1, 6),
    layout=st.sampled_from(["NCHW", "NHWC"]),
    seed=st.integers(0, 2**16),
)
def test_stencil_gradients_in_blocks_of_rows_match_the_float64_loop(channels, kernel, stride, dilation, padding,
                                                                    height, block_rows, layout, seed):  # fmt: skip
    """The weight gradient's blocks of rows (the last one rounded up with zero rows), with a block size
    that makes several per image; and, above MAX_AUTODIFF_TERMS terms, the explicit transposed stencil."""
    c, o, groups = channels
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if any(min(height, 7) + 2 * p < e for p, e in zip(padding, extent, strict=True)):
        return  # the kernel does not fit: conv2d's own error, tested elsewhere
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, c, height, 7)), rng.standard_normal((o, c // groups, *kernel))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = reference.conv2d(x, w, **options)
    dy = rng.standard_normal(y.shape)
    x32, w32, dy32 = (jnp.asarray(a, jnp.float32) for a in (x, w, dy))
    got, vjp = jax.vjp(lambda x, w: _conv(x, w, layout, **options), x32, w32)  # the default block size
    reference.assert_close(got, y)
    dx, dw = reference.conv2d_grads(x, w, dy, **options)
    for got, want in zip(vjp(dy32), (dx, dw), strict=True):
        reference.assert_close(got, want, tol=2e-5)
    spec = ConvSpec(batch=2, in_channels=c, out_channels=o, input_hw=(height, 7), kernel=kernel, stride=stride,
                    pads=tuple((p, p) for p in padding), dilation=dilation, groups=groups, layout="NHWC")  # fmt: skip
    block_bytes = block_rows * (1 + c // groups) * y.shape[3] * o * 4  # block_rows rows, before evening out
    blocked = stencil._weight_gradient(
        x32.transpose(0, 2, 3, 1), dy32.transpose(0, 2, 3, 1), spec, block_bytes
    )
    reference.assert_close(blocked.transpose(3, 2, 0, 1), dw, tol=2e-5)  # (kh, kw, Cg, O) -> OIHW


def test_a_depthwise_stencil_does_no_matmul_and_its_weight_gradient_is_the_custom_one():
    x, w = jnp.ones((2, 8, 10, 10)), jnp.ones((8, 1, 3, 3))

    def loss(x, w):
        return jnp.sum(jc.conv2d(x, w, padding=1, groups=8, impl="stencil") ** 2)

    text = str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(x, w))
    assert "dot_general" not in text and "conv_general_dilated" not in text
    assert "custom_vjp_call" in str(jax.make_jaxpr(loss)(x, w))
    assert "scan" in text or "while" in text  # the weight gradient's loop over the images


def test_a_stencil_with_many_channels_per_group_runs_shift_add():
    x, w = (
        jnp.ones((1, 2 * (stencil.MAX_STENCIL_CHANNELS + 1), 6, 6)),
        jnp.ones((4, stencil.MAX_STENCIL_CHANNELS + 1, 3, 3)),
    )
    text = str(jax.make_jaxpr(lambda x, w: jc.conv2d(x, w, groups=2, impl="stencil"))(x, w))
    assert "dot_general" in text  # shift_add's product per tap
    reference.assert_close(
        jc.conv2d(x, w, groups=2, impl="stencil"), reference.conv2d(np.asarray(x), np.asarray(w), groups=2)
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_stencil_takes_half_precision_and_returns_it(dtype):
    x, w = jnp.ones((1, 4, 5, 5), dtype), jnp.ones((4, 1, 3, 3), dtype)
    y = jc.conv2d(x, w, padding=1, groups=4, impl="stencil")
    assert y.dtype == jnp.dtype(dtype) and float(y[0, 0, 2, 2]) == 9.0


def test_forward_mode_raises_jax_s_custom_vjp_error_and_reverse_mode_works():
    x, w = jnp.ones((1, 4, 5, 5)), jnp.ones((4, 1, 3, 3))
    f = lambda x: jc.conv2d(x, w, padding=1, groups=4, impl="stencil")  # noqa: E731
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(f, (x,), (x,))
    assert jax.grad(lambda x: f(x).sum())(x).shape == x.shape
