"""``conv_transpose2d``: the transposed convolution, with PyTorch's meaning and weight layout.

A transposed convolution is the adjoint of :func:`jaxconv.conv2d` with respect to its input: it
maps a ``conv2d`` output shape back to (one of) the input shapes, and is what autodiff computes for
``conv2d``'s input gradient. Written here as the book would: spread the input out (``stride - 1``
zeros between neighbours), pad it by ``dilation * (k - 1) - padding`` on each side (plus
``output_padding`` at the bottom/right), and correlate with the kernel flipped in both axes and
its channel axes swapped: a :class:`jaxconv.spec.ConvSpec` with ``input_dilation=stride``, run through
any of the ``impl`` cores.
"""

from __future__ import annotations

import jax
from jax import lax

from jaxconv import impls
from jaxconv._checks import (
    LAYOUTS,
    Pair,
    check_choice,
    check_conv_operands,
    check_int,
    check_precision,
    to_pair,
)
from jaxconv.impls import IMPL_CHOICES
from jaxconv.layout import from_nchw, to_nchw, weight_to_oihw
from jaxconv.shapes import conv_transpose_output_shape
from jaxconv.spec import ConvSpec


def conv_transpose2d(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
    precision: str | lax.Precision | None = None,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array:
    """Transposed 2-D convolution (PyTorch's ``conv_transpose2d``).

    Args:
      x: ``(N, C_in, H, W)`` or ``(C_in, H, W)``; ``NHWC``: ``(N, H, W, C_in)`` or ``(H, W, C_in)``.
      weight: ``(C_in, C_out/groups, kh, kw)`` as in PyTorch; ``NHWC``: ``(kh, kw, C_out/groups, C_in)``
        (TensorFlow's ``conv2d_transpose`` filter).
      bias: ``(C_out,)`` or None.
      stride, dilation: int or pair, >= 1: those of the convolution this one transposes.
      padding: int or pair, >= 0: the convolution's padding, *removed* from the output's borders.
      output_padding: int or pair, ``0 <= output_padding < max(stride, dilation)``: extra rows and
        columns at the bottom/right, to reach an input size that striding rounded away.
      groups, precision, layout, impl: as :func:`jaxconv.conv2d`.

    Returns:
      ``(N, C_out, OH, OW)`` (or the layout's), with
      ``OH = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.

    Examples:
      >>> x = jnp.array([[[[0.0, 1.0], [2.0, 3.0]]]])
      >>> conv_transpose2d(x, jnp.array([[[[0.0, 1.0], [2.0, 3.0]]]]))  # the book's 13.10 example
      Array([[[[ 0.,  0.,  1.],
               [ 0.,  4.,  6.],
               [ 4., 12.,  9.]]]], dtype=float32)
    """
    fn = "conv_transpose2d"
    x, weight, bias = check_conv_operands(fn, x, weight, bias)
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    impl = check_choice(fn, "impl", impl, IMPL_CHOICES)
    lax_precision = check_precision(fn, precision)
    batched = x.ndim == 4
    xb = to_nchw(x if batched else x[None], layout)
    w = weight_to_oihw(weight, layout)  # (C_in, C_out/groups, kh, kw) whatever the layout
    spec = _transposed_spec(xb.shape, w.shape, bias, stride=stride, padding=padding,
                            output_padding=output_padding, dilation=dilation, groups=groups,
                            shapes=f"(x: {tuple(x.shape)}, weight: {tuple(weight.shape)}, layout {layout})",
                            dtype=x.dtype.name)  # fmt: skip
    # Kernel of the equivalent correlation: per group, swap in/out channels; flip both spatial axes.
    c_in, out_per_group, kh, kw = w.shape
    groups = spec.groups
    flipped = w.reshape(groups, c_in // groups, out_per_group, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = flipped.reshape(spec.out_channels, c_in // groups, kh, kw)[:, :, ::-1, ::-1]
    y = from_nchw(impls.conv(impl, xb, flipped, bias, spec, precision=lax_precision), layout)
    return y if batched else y[0]


def _transposed_spec(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], bias: jax.Array | None, *, stride: int | Pair,
    padding: int | Pair, output_padding: int | Pair, dilation: int | Pair, groups: int, shapes: str,
    dtype: str,
) -> ConvSpec:  # fmt: skip
    """Validates :func:`conv_transpose2d`'s options against NCHW ``x_shape`` and the ``(C_in, C_out/groups,
    kh, kw)`` weight shape, and describes the equivalent correlation: the input spread by the stride
    (``input_dilation``), padded by ``dilation * (k - 1) - padding`` on each side (negative crops) plus
    ``output_padding`` at the bottom/right."""
    fn = "conv_transpose2d"
    groups = check_int(fn, "groups", groups, minimum=1)
    stride_hw = to_pair(fn, "stride", stride, minimum=1)
    dilation_hw = to_pair(fn, "dilation", dilation, minimum=1)
    padding_hw = to_pair(fn, "padding", padding, minimum=0)
    output_padding_hw = to_pair(fn, "output_padding", output_padding, minimum=0)
    c_in, out_per_group, kh, kw = w_shape
    if x_shape[1] != c_in:
        raise ValueError(f"{fn}: weight is for {c_in} input channels but x has {x_shape[1]} {shapes}")
    if c_in % groups:
        raise ValueError(f"{fn}: input channels {c_in} must be divisible by groups={groups} {shapes}")
    c_out = out_per_group * groups
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{fn}: bias must have shape ({c_out},), got {tuple(bias.shape)} {shapes}")
    conv_transpose_output_shape(  # validates output_padding and the output size
        x_shape[2:], (kh, kw), stride=stride_hw, padding=padding_hw, output_padding=output_padding_hw,
        dilation=dilation_hw,
    )  # fmt: skip
    edges = [d * (k - 1) - p for k, p, d in zip((kh, kw), padding_hw, dilation_hw, strict=True)]
    pads = ((edges[0], edges[0] + output_padding_hw[0]), (edges[1], edges[1] + output_padding_hw[1]))
    return ConvSpec(
        batch=x_shape[0], in_channels=c_in, out_channels=c_out, input_hw=(x_shape[2], x_shape[3]),
        kernel=(kh, kw), pads=pads, dilation=dilation_hw, input_dilation=stride_hw, groups=groups,
        dtype=dtype, transposed=True,
    )  # fmt: skip
