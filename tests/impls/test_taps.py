"""The tap building blocks of the hand-written convolutions, checked by construction."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.impls import taps
from tests import reference


def _big_relayouts(hlo: str, min_elements: int) -> list[str]:
    """Transposes and copies in optimised HLO text moving at least ``min_elements`` elements."""
    found = []
    for shape, op in re.findall(r"= \w+\[([\d,]*)\]\{[\d,]*\} (transpose|copy)\(", hlo):
        if math.prod(int(d) for d in shape.split(",") if d) >= min_elements:
            found.append(f"{op} [{shape}]")
    return found


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="concerns the layouts XLA's CPU backend assigns")
@pytest.mark.parametrize(("impl", "relayouts"), [("im2col", False), ("shift_add", True)])
def test_pointwise_nchw_im2col_moves_no_data_forward_or_backward(impl, relayouts):
    # A 1x1 kernel in NCHW is one (O, C) @ (C, H * W) product per image: neither the input, the
    # output nor their gradients are transposed. shift_add, which works in NHWC, shows the check bites.
    x, w, g = jnp.ones((2, 5, 7, 6)), jnp.ones((3, 5, 1, 1)), jnp.ones((2, 3, 7, 6))

    def forward_backward(x, w):
        y, pullback = jax.vjp(lambda x, w: jc.conv2d(x, w, impl=impl), x, w)
        return y, *pullback(g)

    hlo = jax.jit(forward_backward).lower(x, w).compile().as_text()
    assert bool(_big_relayouts(hlo, g.size)) == relayouts, _big_relayouts(hlo, g.size)


@settings(max_examples=5, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    o=st.integers(1, 4),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pads=st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))
    ),
    bias=st.booleans(),
)
def test_pointwise_nchw_im2col_matches_the_float64_reference(n, c, o, h, w, stride, pads, bias):
    key = jax.random.split(jax.random.key(n * 1000 + c * 100 + o * 10 + h), 3)
    x, k = jax.random.normal(key[0], (n, c, h, w)), jax.random.normal(key[1], (o, c, 1, 1))
    b = jax.random.normal(key[2], (o,)) if bias else None
    want = reference.conv2d(x, k, None if b is None else np.asarray(b), stride=stride, padding=pads)
    reference.assert_close(jc.conv2d(x, k, b, stride=stride, padding=pads, impl="im2col"), want)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_pointwise_nchw_im2col_gradients_match_xla(dtype):
    key = jax.random.split(jax.random.key(3), 4)
    x = jax.random.normal(key[0], (3, 6, 9, 8)).astype(dtype)
    w = jax.random.normal(key[1], (4, 6, 1, 1)).astype(dtype)
    b = jax.random.normal(key[2], (4,)).astype(dtype)
    opts = dict(stride=(2, 1), padding=((1, 0), (0, 2)))
    g = jax.random.normal(key[3], jc.conv2d(x, w, b, **opts).shape).astype(dtype)

    def grads(impl, *args):
        y, pullback = jax.vjp(lambda x, w, b: jc.conv2d(x, w, b, impl=impl, **opts), *args[:3])
        return y, *pullback(args[3])

    # against XLA in float32 on the same (rounded) numbers: the half-precision result is checked
    # to half-precision tolerance, not against XLA's own half-precision rounding
    wide = grads("xla", *(a.astype(jnp.float32) for a in (x, w, b, g)))
    for got, want in zip(grads("im2col", x, w, b, g), wide, strict=True):
        assert got.dtype == dtype
        reference.assert_close(got, want, dtype=jnp.dtype(dtype).name)


def _exp_fusion_shapes(hlo: str) -> list[str]:
    """Output shapes of the loop fusions of a compiled module whose computations hold an exp."""
    bodies = reference.hlo_computations(hlo)
    fusions = re.findall(r"= f32\[([\d,]*)\]\S* fusion\([^\n]*kind=kLoop, calls=(%[\w.-]+)", hlo)
    return [shape for shape, called in fusions if "exponential(" in bodies.get(called, "")]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="concerns XLA's CPU loop fusions")
@pytest.mark.parametrize("impl", ["banded", "im2col"])
def test_bias_and_sigmoid_fuse_over_rows_of_channels(impl):
    # LeNet's conv2 block in NHWC, differentiated as in training: the bias is added to the
    # (N*OH*OW, O) view, so XLA's loop fusion of bias and sigmoid runs over those 2-D rows, whose exp
    # it vectorizes (common.finish; docs/guide/training.md).
    x = jax.random.normal(jax.random.key(0), (2, 14, 14, 6))
    w = jax.random.normal(jax.random.key(1), (5, 5, 6, 16)) * 0.2
    b = jax.random.normal(jax.random.key(2), (16,))

    def grads(impl):
        def loss(w, b):
            y = jax.nn.sigmoid(jc.conv2d(x, w, b, layout="NHWC", impl=impl))
            return jc.avg_pool2d(y, 2, layout="NHWC").sum()

        return jc.xla_options.jit(jax.grad(loss, argnums=(0, 1)), fuse_elementwise=False)

    compiled = grads(impl).lower(w, b).compile()
    shapes = _exp_fusion_shapes(compiled.as_text())
    assert shapes == ["200,16"], f"the sigmoid's loop fusion is rooted at {shapes}: re-measure common.finish"
    for got, want in zip(compiled(w, b), grads("xla")(w, b), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    c=st.sampled_from([1, 3, 15, 16, 20]),
    kernel=st.tuples(st.integers(1, 10), st.integers(1, 10)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
)
def test_stacked_taps_are_the_tap_slices_in_kernel_order(c, kernel, stride, dilation):
    # Both forms (fused stacks for 16+ float32 channels and at most 8 taps a side, one concatenate
    # otherwise) hold tap (i, j) at [..., i, j, :]: pure data movement, so exactly equal to NumPy's
    # strided slices.
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    x = np.random.default_rng(c * 100 + kh * 10 + kw).normal(
        size=(2, (kh - 1) * dh + 4, (kw - 1) * dw + 5, c)
    )
    got = jax.jit(taps.stacked_taps, static_argnums=(1, 2, 3))(
        jnp.asarray(x, jnp.float32), kernel, stride, dilation
    )
    oh, ow = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1, (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    want = np.empty((2, oh, ow, kh, kw, c), np.float32)
    for i in range(kh):
        for j in range(kw):
            want[:, :, :, i, j] = x[:, i * dh :: sh, j * dw :: sw][:, :oh, :ow]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(("groups", "stride", "dilation"), [(1, 2, 1), (2, 1, 2), (4, 2, 1)])
def test_im2col_with_fused_tap_stacks_matches_the_float64_reference(layout, groups, stride, dilation):
    # 16 input channels: the patches are built by stacked_taps' fused form, forward and backward.
    key = jax.random.split(jax.random.key(groups * 10 + stride), 4)
    x = jax.random.normal(key[0], (2, 16, 9, 8))
    w = jax.random.normal(key[1], (8, 16 // groups, 3, 3)) * 0.2
    b = jax.random.normal(key[2], (8,))
    opts = dict(stride=stride, padding=1, dilation=dilation, groups=groups)
    want = reference.conv2d(x, w, np.asarray(b), **opts)
    to_layout = (lambda a: a) if layout == "NCHW" else (lambda a: jnp.transpose(a, (0, 2, 3, 1)))
    x, w = to_layout(x), w if layout == "NCHW" else jnp.transpose(w, (2, 3, 1, 0))  # HWIO in NHWC
    got = jc.conv2d(x, w, b, layout=layout, impl="im2col", **opts)
    reference.assert_close(got, to_layout(want))
    g = jax.random.normal(key[3], got.shape)

    def grads(impl):
        return jax.grad(lambda x, w: (jc.conv2d(x, w, b, layout=layout, impl=impl, **opts) * g).sum(), (0, 1))

    for got_grad, want_grad in zip(grads("im2col")(x, w), grads("xla")(x, w), strict=True):
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="concerns XLA's CPU fusion of concatenates")
@pytest.mark.parametrize(("channels", "fused"), [(16, True), (4, False)])
def test_im2col_patches_are_written_by_one_fusion_from_16_channels(channels, fused):
    # XLA's CPU backend does not fuse a concatenate along the minor axis or of more than 8 operands;
    # stacked_taps' two-level stack is neither, so no concatenate is left outside a fusion. Below
    # MIN_FUSED_TAP_BYTES the channels-concatenate remains, which shows the check bites.
    x, w = jnp.ones((2, 12, 12, channels)), jnp.ones((3, 3, channels, 8))
    f = jax.jit(lambda x: jc.conv2d(x, w, stride=2, padding=1, layout="NHWC", impl="im2col"))
    entry = f.lower(x).compile().as_text().split("ENTRY", 1)[1]
    assert ("concatenate(" not in entry) == fused, entry
