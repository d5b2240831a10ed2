"""impl="auto": the rule picks an implementation per shape and backend, and runs exactly that one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from jaxconv.impls import auto
from jaxconv.spec import ConvSpec, PoolSpec


def layer(x_shape, out_channels, kernel, output_hw=None, groups=1, stride=(1, 1), dilation=(1, 1)):
    """The spec of a layer, padded to give ``output_hw`` (default: ``ceil(size / stride)``, as 'same')."""
    n, c, *hw = x_shape
    pads = []
    for size, k, s, d, out in zip(hw, kernel, stride, dilation, output_hw or (None, None), strict=True):
        out = -(-size // s) if out is None else out
        total = (out - 1) * s + (k - 1) * d + 1 - size
        pads.append((total // 2, total - total // 2))
    return ConvSpec(batch=n, in_channels=c, out_channels=out_channels, input_hw=tuple(hw), kernel=kernel,
                    stride=stride, pads=tuple(pads), dilation=dilation, groups=groups)  # fmt: skip


@pytest.mark.parametrize(
    ("backend", "x_shape", "out_channels", "kernel", "output_hw", "groups", "stride", "expected"),
    [
        # band zeros per saved copy: LeNet's layers 9 and 20, a 3->16 5x5 layer 24: measured faster banded
        ("cpu", (256, 1, 28, 28), 6, (5, 5), (28, 28), 1, (1, 1), "banded"),
        ("cpu", (256, 6, 14, 14), 16, (5, 5), (10, 10), 1, (1, 1), "banded"),
        ("cpu", (32, 3, 32, 32), 16, (5, 5), (32, 32), 1, (1, 1), "banded"),
        # stride 1, 3x3 to 5x5, >= 16 channels in and out: measured 1.2-3x faster with winograd
        ("cpu", (32, 16, 28, 28), 32, (3, 3), (28, 28), 1, (1, 1), "winograd"),
        ("cpu", (64, 32, 14, 14), 64, (3, 3), (14, 14), 1, (1, 1), "winograd"),
        ("cpu", (128, 64, 8, 8), 64, (3, 3), (8, 8), 1, (1, 1), "winograd"),
        ("cpu", (8, 100, 64, 64), 100, (5, 5), (64, 64), 1, (1, 1), "winograd"),
        ("cpu", (32, 64, 56, 56), 64, (3, 3), (56, 56), 1, (1, 1), "winograd"),
        # the same layers with stride 2 or a 1x1 / 7x7 kernel: im2col (band zeros 64-150)
        ("cpu", (32, 64, 56, 56), 64, (3, 3), (28, 28), 1, (2, 2), "im2col"),
        ("cpu", (32, 64, 56, 56), 64, (7, 7), (56, 56), 1, (1, 1), "im2col"),
        # stride or dilation along the height alone also rules winograd out (its core is stride 1)
        ("cpu", (32, 64, 56, 56), 64, (3, 3), (28, 56), 1, (2, 1), "im2col"),
        # a 1x1 kernel: the band saves no copy
        ("cpu", (32, 256, 56, 56), 2, (1, 1), None, 1, (1, 1), "im2col"),
        ("cpu", (32, 8, 56, 56), 64, (3, 3), (56, 56), 1, (1, 1), "im2col"),  # 8 input channels: winograd's
        # transforms cost more than its products save (3 -> 16 and 6 -> 16 measured 1.2-4x slower)
        ("cpu", (32, 64, 56, 56), 64, (3, 3), None, 2, (1, 1), "xla"),  # groups: unmeasured
        ("cpu", (4096, 512, 64, 64), 512, (3, 3), None, 1, (1, 1), "xla"),  # the patch matrix would be 300 GB
        ("gpu", (256, 1, 28, 28), 6, (5, 5), (28, 28), 1, (1, 1), "xla"),
        ("tpu", (32, 64, 56, 56), 64, (3, 3), None, 1, (1, 1), "xla"),
    ],
)
def test_conv_rule(backend, x_shape, out_channels, kernel, output_hw, groups, stride, expected):
    spec = layer(x_shape, out_channels, kernel, output_hw, groups, stride)
    assert output_hw is None or spec.output_hw == output_hw
    assert auto.conv_impl(backend, spec) == expected


@pytest.fixture
def picks(monkeypatch):
    """What ``conv2d(impl="auto")`` picked, call by call."""
    seen = []
    real = auto.conv_impl

    def spy(backend, spec):  # auto asks for every platform; the CPU pick is what runs here
        pick = real(backend, spec)
        if backend == "cpu":
            seen.append(pick)
        return pick

    monkeypatch.setattr("jaxconv.impls.auto.conv_impl", spy)
    return seen


def test_conv_rule_sends_a_dilated_kernel_to_winograd_directly():
    # A dilated 3x3 ran faster in winograd directly than on its phases, or in im2col (docs/performance.md).
    resnet = dict(x_shape=(32, 64, 56, 56), out_channels=64, kernel=(3, 3))
    assert auto.conv_impl("cpu", layer(**resnet, output_hw=(52, 54), dilation=(2, 1))) == "winograd"
    assert auto.conv_impl("cpu", layer(**resnet, output_hw=(54, 54))) == "winograd"


def test_conv_rule_takes_a_spec():
    with pytest.raises(TypeError, match=r"conv_impl: spec must be a ConvSpec, got dict"):
        auto.conv_impl("cpu", dict(x_shape=(1, 1, 8, 8), out_channels=1, kernel=(3, 3)))
    with pytest.raises(TypeError, match=r"pool_impl: spec must be a PoolSpec, got ConvSpec"):
        auto.pool_impl("cpu", layer((1, 1, 8, 8), 1, (3, 3)))


def test_auto_sends_a_height_strided_layer_past_winograd(picks):
    x = jax.random.normal(jax.random.key(0), (2, 16, 12, 12))
    w = jax.random.normal(jax.random.key(1), (16, 16, 3, 3))
    jc.conv2d(x, w, stride=(1, 1))
    jc.conv2d(x, w, stride=(2, 1))
    assert picks[0] == "winograd"
    assert picks[1] != "winograd"


def test_band_rule_respects_the_band_size():
    # 2 output channels, 18 wide (3 exact tiles of 6): 3 zeros per saved copy, but the band is
    # 5 * 10 * C * 6 * 2 * 4 bytes: 37.5 MiB for 16384 channels, 75 MiB for 32768 (over the limit: im2col).
    small = dict(out_channels=2, kernel=(5, 5), output_hw=(18, 18))
    assert auto.conv_impl("cpu", layer((1, 16384, 22, 22), **small)) == "banded"
    assert auto.conv_impl("cpu", layer((1, 32768, 22, 22), **small)) == "im2col"


def test_band_zeros_per_saved_copy_by_hand():
    # stride 2 on a 3-wide kernel: tiles of 2 columns read 5, saving 2 * 3 - 5 = 1 of im2col's 6
    # copies for 2 * O * (5 - 3) = 4 * O zero products.
    assert auto.band_zeros_per_saved_copy(20, 3, 8, stride=2) == 32.0
    assert auto.band_zeros_per_saved_copy(20, 3, 8, stride=3) == float("inf")  # 2 columns read 6: none saved


def test_pool_rule_uses_taps_for_max_and_for_nhwc_or_tiling_averages_on_cpu():
    tiled = PoolSpec(batch=1, channels=1, input_hw=(28, 28), window=(2, 2), stride=(2, 2), mode="avg")
    assert auto.pool_impl("cpu", tiled) == "shift_add"
    assert auto.pool_impl("gpu", tiled) == "xla"
    assert auto.pool_impl("cpu", tiled.replace(input_hw=(27, 28))) == "xla"
    assert auto.pool_impl("cpu", tiled.replace(stride=(1, 1))) == "xla"
    assert auto.pool_impl("cpu", tiled.replace(stride=(1, 1), layout="NHWC")) == "shift_add"
    overlapping_max = tiled.replace(stride=(1, 1), mode="max")
    assert auto.pool_impl("cpu", overlapping_max) == "shift_add"
    assert auto.pool_impl("gpu", overlapping_max) == "xla"
    assert auto.pool_impl("gpu", tiled.replace(dilation=(2, 2))) == "shift_add"  # lax has no such gradient


@pytest.mark.parametrize("c", [1, 6, 64])
def test_auto_runs_exactly_the_impl_it_picks(c):
    x = jax.random.normal(jax.random.key(0), (2, c, 9, 9))
    w = jax.random.normal(jax.random.key(1), (4, c, 3, 3)) if c < 64 else jnp.ones((4, c, 5, 5)) / c
    valid = tuple(9 - k + 1 for k in w.shape[2:])
    picked = auto.conv_impl(jax.default_backend(), layer(x.shape, 4, w.shape[2:], output_hw=valid))
    y = jc.conv2d(x, w, impl="auto")
    np.testing.assert_array_equal(y, jc.conv2d(x, w, impl=picked))
    np.testing.assert_allclose(y, jc.conv2d(x, w, impl="xla"), rtol=1e-5, atol=1e-5)


def test_auto_follows_the_platform_it_is_lowered_for(picks):
    x = jax.random.normal(jax.random.key(0), (2, 1, 8, 8))
    w = jax.random.normal(jax.random.key(1), (3, 1, 3, 3))
    conv = jax.jit(lambda x, w: jc.conv2d(x, w))
    programs = {p: jax.export.export(conv, platforms=[p])(x, w).mlir_module() for p in ("cpu", "cuda", "tpu")}
    assert picks[0] == "banded"  # the CPU rule, asked while tracing
    assert "stablehlo.convolution" not in programs["cpu"]
    assert "stablehlo.convolution" in programs["cuda"] and "stablehlo.convolution" in programs["tpu"]
    here = jax.jit(conv).lower(x, w).as_text()  # lowered for this host's platform
    assert ("stablehlo.convolution" in here) is (jax.default_backend() != "cpu")


def test_auto_is_the_default_everywhere():
    import inspect

    from jaxconv.nn import AvgPool2D, Conv2D, LeNet
    from jaxconv.train import TrainConfig

    for fn in (jc.conv2d, jc.max_pool2d, jc.avg_pool2d, jc.corr2d, jc.corr2d_multi_in_out):
        assert inspect.signature(fn).parameters["impl"].default == "auto", fn.__name__
    assert Conv2D(1, 3).impl == AvgPool2D(2).impl == LeNet().impl == TrainConfig().impl == "auto"
