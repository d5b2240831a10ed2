"""Flax Linen layers over the jaxconv functions: the layer owns parameters, the function does the maths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxconv._checks import Pair, to_pair
from jaxconv.conv import conv2d
from jaxconv.layout import channels_of, weight_shape
from jaxconv.pool import avg_pool2d, max_pool2d
from jaxconv.shapes import Padding
from jaxconv.transpose import conv_transpose2d

Initializer = Callable[..., jax.Array]

# The keyword options each layer passes through to its function, by the names both the Linen layers here
# and the NNX ones (jaxconv.nnx) keep them under.
CONV2D_OPTIONS = ("stride", "padding", "dilation", "groups", "padding_mode", "precision", "layout", "impl")
CONV_TRANSPOSE2D_OPTIONS = (
    "stride",
    "padding",
    "output_padding",
    "dilation",
    "groups",
    "precision",
    "layout",
    "impl",
)
MAX_POOL2D_OPTIONS = ("stride", "padding", "dilation", "ceil_mode", "layout", "impl")
AVG_POOL2D_OPTIONS = (
    "stride",
    "padding",
    "count_include_pad",
    "ceil_mode",
    "divisor_override",
    "layout",
    "impl",
)


def options_of(layer: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The layer's hyper-parameters ``names`` as the keyword arguments of its jaxconv function."""
    return {name: getattr(layer, name) for name in names}


def default_kernel_init(layout: str) -> Initializer:
    """Flax's default, LeCun normal, with fan-in and fan-out read from the layout's weight axes."""
    if layout == "NCHW":  # (O, I, kh, kw)
        return nn.initializers.lecun_normal(in_axis=1, out_axis=0)
    return nn.initializers.lecun_normal(in_axis=-2, out_axis=-1)  # (kh, kw, I, O)


def default_transpose_kernel_init(layout: str) -> Initializer:
    """LeCun normal over a transposed convolution's fan-in, ``C_in/groups * kh * kw``: its weight
    ``(C_in, C_out/groups, kh, kw)`` (``NHWC``: ``(kh, kw, C_out/groups, C_in)``) is the adjoint's."""
    if layout == "NCHW":
        return nn.initializers.lecun_normal(in_axis=0, out_axis=1)
    return nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)


class Conv2D(nn.Module):
    """A 2-D convolution layer over :func:`jaxconv.conv2d`.

    Parameters: ``kernel`` ``(features, C/groups, kh, kw)`` (``NHWC``: ``(kh, kw, C/groups,
    features)``), initialised by ``kernel_init`` (default: LeCun normal over the layout's fan-in and
    fan-out, Flax's default); ``bias`` ``(features,)``, initialised by ``bias_init`` (default zeros).
    Every other field means what it means in :func:`jaxconv.conv2d`.

    Input ``(N, C, H, W)`` (or the layout's), output ``(N, features, OH, OW)``.
    """

    features: int
    kernel_size: int | Pair
    stride: int | Pair = 1
    padding: Padding = 0
    dilation: int | Pair = 1
    groups: int = 1
    use_bias: bool = True
    padding_mode: str = "zeros"
    precision: str | None = None
    impl: str = "auto"
    layout: str = "NCHW"
    kernel_init: Initializer | None = None
    bias_init: Initializer = nn.initializers.zeros_init()
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = to_pair("Conv2D", "kernel_size", self.kernel_size, minimum=1)
        if x.ndim not in (3, 4):
            raise ValueError(f"Conv2D: input must have 3 or 4 dimensions, got shape {tuple(x.shape)}")
        channels = channels_of(x.shape, self.layout)
        if channels % self.groups:
            raise ValueError(f"Conv2D: input channels {channels} are not divisible by groups={self.groups}")
        per_group = channels // self.groups
        shape = weight_shape(self.features, per_group, (kh, kw), self.layout)
        init = self.kernel_init or default_kernel_init(self.layout)
        kernel = self.param("kernel", init, shape, self.param_dtype)
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        )
        bias = None if bias is None else bias.astype(x.dtype)
        return conv2d(x, kernel.astype(x.dtype), bias, **options_of(self, CONV2D_OPTIONS))


class ConvTranspose2D(nn.Module):
    """A transposed convolution layer over :func:`jaxconv.conv_transpose2d` (PyTorch's ConvTranspose2d).

    Parameters: ``kernel`` ``(C_in, features/groups, kh, kw)`` (``NHWC``: ``(kh, kw,
    features/groups, C_in)``), initialised by ``kernel_init`` (default LeCun normal over the
    equivalent convolution's fan-in, ``C_in/groups * kh * kw``); ``bias`` ``(features,)``.
    Input ``(N, C_in, H, W)``, output ``(N, features, OH, OW)``, ``OH`` by
    :func:`jaxconv.conv_transpose_output_shape`.
    """

    features: int
    kernel_size: int | Pair
    stride: int | Pair = 1
    padding: int | Pair = 0
    output_padding: int | Pair = 0
    dilation: int | Pair = 1
    groups: int = 1
    use_bias: bool = True
    precision: str | None = None
    impl: str = "auto"
    layout: str = "NCHW"
    kernel_init: Initializer | None = None
    bias_init: Initializer = nn.initializers.zeros_init()
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = to_pair("ConvTranspose2D", "kernel_size", self.kernel_size, minimum=1)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"ConvTranspose2D: input must have 3 or 4 dimensions, got shape {tuple(x.shape)}"
            )
        channels = channels_of(x.shape, self.layout)
        if self.features % self.groups or channels % self.groups:
            raise ValueError(
                f"ConvTranspose2D: input channels {channels} and features {self.features} must be "
                f"divisible by groups={self.groups}"
            )
        per_group = self.features // self.groups
        shape = weight_shape(channels, per_group, (kh, kw), self.layout)
        init = self.kernel_init or default_transpose_kernel_init(self.layout)
        kernel = self.param("kernel", init, shape, self.param_dtype)
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        )
        bias = None if bias is None else bias.astype(x.dtype)
        return conv_transpose2d(x, kernel.astype(x.dtype), bias, **options_of(self, CONV_TRANSPOSE2D_OPTIONS))


class MaxPool2D(nn.Module):
    """Max pooling over :func:`jaxconv.max_pool2d`; stride defaults to the window. No parameters."""

    kernel_size: int | Pair
    stride: int | Pair | None = None
    padding: Padding = 0
    dilation: int | Pair = 1
    ceil_mode: bool = False
    impl: str = "auto"
    layout: str = "NCHW"

    def __call__(self, x: jax.Array) -> jax.Array:
        return max_pool2d(x, self.kernel_size, **options_of(self, MAX_POOL2D_OPTIONS))


class AvgPool2D(nn.Module):
    """Average pooling over :func:`jaxconv.avg_pool2d`; stride defaults to the window. No parameters."""

    kernel_size: int | Pair
    stride: int | Pair | None = None
    padding: Padding = 0
    count_include_pad: bool = True
    ceil_mode: bool = False
    divisor_override: int | None = None
    impl: str = "auto"
    layout: str = "NCHW"

    def __call__(self, x: jax.Array) -> jax.Array:
        return avg_pool2d(x, self.kernel_size, **options_of(self, AVG_POOL2D_OPTIONS))
