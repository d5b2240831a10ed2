"""Flax NNX layers over the jaxconv functions: the layer owns its parameters, the function does the maths.

They follow Flax's NNX layers (``flax/nnx/nn/linear.py``): ``__init__(in_features, out_features,
..., *, rngs)``, parameters as ``nnx.Param``, hyper-parameters as plain attributes; their options
and defaults are those of the Linen layers in :mod:`jaxconv.nn`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxconv._checks import Pair, check_int, to_pair
from jaxconv.conv import conv2d
from jaxconv.layout import weight_shape
from jaxconv.nn.layers import (
    AVG_POOL2D_OPTIONS,
    CONV2D_OPTIONS,
    CONV_TRANSPOSE2D_OPTIONS,
    MAX_POOL2D_OPTIONS,
    Initializer,
    default_kernel_init,
    default_transpose_kernel_init,
    options_of,
)
from jaxconv.pool import avg_pool2d, max_pool2d
from jaxconv.shapes import Padding
from jaxconv.transpose import conv_transpose2d

ZEROS: Initializer = nnx.initializers.zeros_init()  # the default bias initialiser, as Flax's


def _features(cls: str, in_features: object, out_features: object, groups: object) -> tuple[int, int, int]:
    c = check_int(cls, "in_features", in_features, minimum=1)
    o = check_int(cls, "out_features", out_features, minimum=1)
    g = check_int(cls, "groups", groups, minimum=1)
    if c % g or o % g:
        raise ValueError(f"{cls}: in_features {c} and out_features {o} must be divisible by groups={g}")
    return c, o, g


class Conv2D(nnx.Module):
    """A 2-D convolution layer over :func:`jaxconv.conv2d`.

    Parameters: ``kernel`` ``(out_features, in_features/groups, kh, kw)`` (``NHWC``: ``(kh, kw,
    in_features/groups, out_features)``), initialised by ``kernel_init`` (default: LeCun normal over
    the layout's fan-in and fan-out, Flax's default); ``bias`` ``(out_features,)`` by ``bias_init``
    (default zeros), or None without ``use_bias``. Every other argument means what it means in
    :func:`jaxconv.conv2d`. Input ``(N, in_features, H, W)`` (or the layout's), output
    ``(N, out_features, OH, OW)``.

    Examples:
      >>> from flax import nnx
      >>> from jaxconv.nnx import Conv2D
      >>> layer = Conv2D(1, 6, 5, padding=2, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 1, 28, 28))).shape, layer.kernel.shape
      ((2, 6, 28, 28), (6, 1, 5, 5))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Pair,
        *,
        stride: int | Pair = 1,
        padding: Padding = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        use_bias: bool = True,
        padding_mode: str = "zeros",
        precision: str | None = None,
        impl: str = "auto",
        layout: str = "NCHW",
        kernel_init: Initializer | None = None,
        bias_init: Initializer = ZEROS,
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        c, o, g = _features("Conv2D", in_features, out_features, groups)
        kh, kw = to_pair("Conv2D", "kernel_size", kernel_size, minimum=1)
        shape = weight_shape(o, c // g, (kh, kw), layout)
        init = kernel_init or default_kernel_init(layout)
        self.kernel = nnx.Param(init(rngs.params(), shape, param_dtype))
        self.bias = nnx.Param(bias_init(rngs.params(), (o,), param_dtype)) if use_bias else None
        self.in_features, self.out_features, self.kernel_size = c, o, (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, g
        self.padding_mode, self.precision, self.impl, self.layout = padding_mode, precision, impl, layout

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = None if self.bias is None else self.bias[...].astype(x.dtype)
        return conv2d(x, self.kernel[...].astype(x.dtype), bias, **options_of(self, CONV2D_OPTIONS))


class ConvTranspose2D(nnx.Module):
    """A transposed convolution layer over :func:`jaxconv.conv_transpose2d` (PyTorch's ConvTranspose2d).

    Parameters: ``kernel`` ``(in_features, out_features/groups, kh, kw)`` (``NHWC``: ``(kh, kw,
    out_features/groups, in_features)``), default LeCun normal over the equivalent convolution's
    fan-in; ``bias`` ``(out_features,)``. Output size by :func:`jaxconv.conv_transpose_output_shape`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Pair,
        *,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        output_padding: int | Pair = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        use_bias: bool = True,
        precision: str | None = None,
        impl: str = "auto",
        layout: str = "NCHW",
        kernel_init: Initializer | None = None,
        bias_init: Initializer = ZEROS,
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        c, o, g = _features("ConvTranspose2D", in_features, out_features, groups)
        kh, kw = to_pair("ConvTranspose2D", "kernel_size", kernel_size, minimum=1)
        shape = weight_shape(c, o // g, (kh, kw), layout)
        init = kernel_init or default_transpose_kernel_init(layout)
        self.kernel = nnx.Param(init(rngs.params(), shape, param_dtype))
        self.bias = nnx.Param(bias_init(rngs.params(), (o,), param_dtype)) if use_bias else None
        self.in_features, self.out_features, self.kernel_size = c, o, (kh, kw)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.dilation, self.groups, self.precision, self.impl, self.layout = (
            dilation,
            g,
            precision,
            impl,
            layout,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = None if self.bias is None else self.bias[...].astype(x.dtype)
        kernel = self.kernel[...].astype(x.dtype)
        return conv_transpose2d(x, kernel, bias, **options_of(self, CONV_TRANSPOSE2D_OPTIONS))


class MaxPool2D(nnx.Module):
    """Max pooling over :func:`jaxconv.max_pool2d`; stride defaults to the window. No parameters."""

    def __init__(
        self, kernel_size: int | Pair, *, stride: int | Pair | None = None, padding: Padding = 0,
        dilation: int | Pair = 1, ceil_mode: bool = False, impl: str = "auto", layout: str = "NCHW",
    ) -> None:  # fmt: skip
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.ceil_mode, self.impl, self.layout = ceil_mode, impl, layout

    def __call__(self, x: jax.Array) -> jax.Array:
        return max_pool2d(x, self.kernel_size, **options_of(self, MAX_POOL2D_OPTIONS))


class AvgPool2D(nnx.Module):
    """Average pooling over :func:`jaxconv.avg_pool2d`; stride defaults to the window. No parameters."""

    def __init__(
        self, kernel_size: int | Pair, *, stride: int | Pair | None = None, padding: Padding = 0,
        count_include_pad: bool = True, ceil_mode: bool = False, divisor_override: int | None = None,
        impl: str = "auto", layout: str = "NCHW",
    ) -> None:  # fmt: skip
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad, self.ceil_mode, self.divisor_override = (
            count_include_pad,
            ceil_mode,
            divisor_override,
        )
        self.impl, self.layout = impl, layout

    def __call__(self, x: jax.Array) -> jax.Array:
        return avg_pool2d(x, self.kernel_size, **options_of(self, AVG_POOL2D_OPTIONS))
