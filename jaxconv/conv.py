"""``conv2d``: the convolution layer's maths with PyTorch- and Flax-grade options (section 6.3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv import impls
from jaxconv._checks import (
    LAYOUTS,
    PADDING_MODES,
    PadPairs,
    Pair,
    check_choice,
    check_conv_operands,
    check_int,
    check_precision,
    to_pair,
)
from jaxconv.impls import IMPL_CHOICES
from jaxconv.layout import channel_axis, spatial_of, spatial_widths, weight_dims
from jaxconv.shapes import Padding, effective_kernel, output_size, resolve_padding
from jaxconv.spec import ConvSpec


def conv2d(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: int | Pair = 1,
    padding: Padding = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    precision: str | lax.Precision | None = None,
    layout: str = "NCHW",
    impl: str = "auto",
) -> jax.Array:
    """2-D cross-correlation of a batch, what deep-learning libraries call a convolution.

    Args:
      x: ``(N, C, H, W)`` or unbatched ``(C, H, W)``; with ``layout="NHWC"``, ``(N, H, W, C)`` or
        ``(H, W, C)``.
      weight: ``(O, C/groups, kh, kw)``; with ``layout="NHWC"``, ``(kh, kw, C/groups, O)``.
      bias: ``(O,)`` or None. All arrays share one floating-point dtype.
      stride: int or pair, >= 1.
      padding: an int or pair of rows/columns added on *each* side (the book, PyTorch);
        ``((top, bottom), (left, right))``; ``"valid"``; or ``"same"``, output ``ceil(in/stride)``,
        where an odd total padding puts the extra row/column at the bottom/right.
      dilation: int or pair, >= 1: spacing between kernel taps.
      groups: split channels into this many independent groups; ``C`` and ``O`` divisible by it.
      padding_mode: what the padding holds, PyTorch's names: ``"zeros"`` (default), ``"reflect"``
        (mirrored without the edge, each pad < the input size), ``"replicate"`` (the edge
        repeated) or ``"circular"`` (wrapped around, each pad <= the input size).
      precision: ``None`` (the backend's default; on GPU that can be TF32 for float32),
        ``"default"``, ``"high"``, ``"highest"`` or a ``jax.lax.Precision``; every impl honours it.
      layout: ``"NCHW"`` (default, the book's) or ``"NHWC"``.
      impl: ``"auto"`` (default: the fastest for the call and backend, see :mod:`jaxconv.impls.auto`) or
        any name in :data:`jaxconv.IMPLS`, the registry's implementations (:mod:`jaxconv.impls`):
        ``"xla"`` (``lax.conv_general_dilated``), ``"manual"`` (the book's vmapped definition), and the
        hand-written forms. All give the same numbers up to rounding (winograd's transforms add up to
        ~1e-5 relative error in float32); ``"pallas"`` runs in Pallas's interpreter on CPU and takes
        reverse-mode gradients only.

    Returns:
      ``(N, O, OH, OW)`` (or the layout's equivalent, unbatched if ``x`` was), with
      ``(OH, OW) = conv_output_shape((H, W), (kh, kw), padding=..., stride=..., dilation=...)``.

    Raises:
      TypeError: non-array, non-float or mixed-dtype arrays; non-int options.
      ValueError: wrong dimensions, channel/group mismatch, bias shape, stride or dilation < 1,
        negative padding, unknown padding string, layout or impl, kernel larger than the input.

    Examples:
      >>> x = jnp.ones((1, 2, 8, 8))
      >>> conv2d(x, jnp.ones((3, 2, 3, 3)), padding=1, stride=2).shape
      (1, 3, 4, 4)
      >>> conv2d(x, jnp.ones((3, 2, 3, 3)), padding="same", impl="manual")[0, 0, 0, :3]
      Array([ 8., 12., 12.], dtype=float32)
    """
    x, weight, bias = check_conv_operands("conv2d", x, weight, bias)
    impl = check_choice("conv2d", "impl", impl, IMPL_CHOICES)
    padding_mode = check_choice("conv2d", "padding_mode", padding_mode, PADDING_MODES)
    lax_precision = check_precision("conv2d", precision)
    batched = x.ndim == 4
    xb = x if batched else x[None]
    spec = conv2d_spec(xb.shape, weight.shape, bias, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, layout=layout, dtype=x.dtype)  # fmt: skip
    if padding_mode != "zeros":
        xb, spec = pad_spatial("conv2d", xb, spec.pads, padding_mode, layout), spec.spread()
    y = impls.conv(impl, xb, weight, bias, spec, precision=lax_precision)
    return y if batched else y[0]


def conv2d_spec(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], bias: jax.Array | None, *, stride: int | Pair,
    padding: Padding, dilation: int | Pair, groups: int, layout: str, dtype: jnp.dtype,
) -> ConvSpec:  # fmt: skip
    """Validates :func:`conv2d`'s options against a batched ``x_shape`` and the weight's shape, with
    conv2d's messages, and describes the call."""
    fn = "conv2d"
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    groups = check_int(fn, "groups", groups, minimum=1)
    stride_hw = to_pair(fn, "stride", stride, minimum=1)
    dilation_hw = to_pair(fn, "dilation", dilation, minimum=1)
    shapes = f"(x: {tuple(x_shape)}, weight: {tuple(w_shape)}, layout {layout})"
    c = x_shape[channel_axis(layout)]
    o, c_per_group, kernel_hw = weight_dims(w_shape, layout)
    if c % groups or o % groups:
        raise ValueError(
            f"{fn}: input channels {c} and output channels {o} must be divisible by groups={groups} {shapes}"
        )
    if c_per_group != c // groups:
        raise ValueError(
            f"{fn}: weight has {c_per_group} input channels per group but x has {c} channels "
            f"in {groups} group(s), i.e. {c // groups} per group {shapes}"
        )
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"{fn}: bias must have shape ({o},), got {tuple(bias.shape)} {shapes}")
    input_hw = spatial_of(x_shape, layout)
    kernel_eff = effective_kernel(kernel_hw, dilation_hw)
    pads = resolve_padding(fn, padding, input_hw, kernel_eff, stride_hw)
    output_size(fn, input_hw, kernel_eff, pads, stride_hw)  # refuses a kernel larger than the padded input
    return ConvSpec(
        batch=x_shape[0], in_channels=c, out_channels=o, input_hw=input_hw, kernel=kernel_hw,
        stride=stride_hw, pads=pads, dilation=dilation_hw, groups=groups, layout=layout,
        dtype=jnp.dtype(dtype).name,
    )  # fmt: skip


_JNP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_spatial(fn: str, x: jax.Array, pads: PadPairs, mode: str, layout: str) -> jax.Array:
    """Pads the spatial axes of a batched ``x`` by ``pads`` in PyTorch's ``padding_mode`` ``mode``.

    Refuses what PyTorch refuses: reflect pads as large as the input, circular pads larger than it.
    """
    hw = spatial_of(x.shape, layout)
    for axis, n, (lo, hi) in zip("HW", hw, pads, strict=True):
        too_big = max(lo, hi) >= n if mode == "reflect" else max(lo, hi) > n if mode == "circular" else False
        if too_big:
            limit = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{fn}: {mode} padding {(lo, hi)} along {axis} must be {limit} the input size {n} "
                f"(x: {tuple(x.shape)}, layout {layout})"
            )
    return jnp.pad(x, spatial_widths(pads, layout), mode=_JNP_PAD_MODES[mode])
