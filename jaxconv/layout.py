"""Layout names to XLA dimension numbers, and the shapes each layout implies.

``NCHW`` is the book's (and PyTorch's) layout: ``x (N, C, H, W)``, weight ``(O, C/groups, kh, kw)``.
``NHWC`` is Flax's and TensorFlow's: ``x (N, H, W, C)``, weight ``(kh, kw, C/groups, O)``.
"""

from __future__ import annotations

import jax
from jax import lax

from jaxconv._checks import Pair

# lhs spec, rhs spec, out spec in lax's letters (N batch, C feature, O/I kernel features).
_SPECS = {
    "NCHW": ("NCHW", "OIHW", "NCHW"),
    "NHWC": ("NHWC", "HWIO", "NHWC"),
}


def dimension_numbers(layout: str) -> lax.ConvDimensionNumbers:
    """The ``lax.ConvDimensionNumbers`` for a layout name (Haiku's ``to_dimension_numbers``)."""
    lhs, rhs, out = _SPECS[layout]
    return lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), (lhs, rhs, out))


def channel_axis(layout: str) -> int:
    """Axis of the channels in a batched array of this layout."""
    return 1 if layout == "NCHW" else 3


def channels_of(shape: tuple[int, ...], layout: str) -> int:
    """The channels of a batched (4-D) or unbatched (3-D) array's ``shape``."""
    return shape[len(shape) - 3] if layout == "NCHW" else shape[-1]


def spatial_axes(layout: str) -> tuple[int, int]:
    """Axes of the height and width in a batched array of this layout."""
    return (2, 3) if layout == "NCHW" else (1, 2)


def batched_shape(n: int, c: int, hw: Pair, layout: str) -> tuple[int, int, int, int]:
    """The shape of a batch of ``n`` images of ``c`` channels and size ``hw`` in this layout."""
    return (n, c, hw[0], hw[1]) if layout == "NCHW" else (n, hw[0], hw[1], c)


def weight_shape(
    out_channels: int, in_per_group: int, kernel: Pair, layout: str
) -> tuple[int, int, int, int]:
    """A convolution kernel's shape: ``(O, C/groups, kh, kw)`` in NCHW, ``(kh, kw, C/groups, O)`` in NHWC.

    A transposed convolution's weight is its adjoint's: ``weight_shape(C_in, C_out/groups, ...)``."""
    (kh, kw), o, i = kernel, out_channels, in_per_group
    return (o, i, kh, kw) if layout == "NCHW" else (kh, kw, i, o)


def spatial_widths(pads: tuple[tuple[int, ...], ...], layout: str, none: tuple[int, ...] = (0, 0)) -> list:
    """Per-axis widths of a batched array for ``jnp.pad`` or ``lax.pad``: ``pads`` on the height and width
    (pairs, or ``lax.pad``'s ``(low, high, interior)`` triples), ``none`` on the batch and channels."""
    return [none, *pads, none] if layout == "NHWC" else [none, none, *pads]


def spatial_of(x_shape: tuple[int, ...], layout: str) -> Pair:
    """``(H, W)`` of a batched input."""
    return (x_shape[2], x_shape[3]) if layout == "NCHW" else (x_shape[1], x_shape[2])


def weight_dims(w_shape: tuple[int, ...], layout: str) -> tuple[int, int, Pair]:
    """``(out_channels, in_channels_per_group, (kh, kw))`` of a weight in this layout."""
    if layout == "NCHW":
        return w_shape[0], w_shape[1], (w_shape[2], w_shape[3])
    return w_shape[3], w_shape[2], (w_shape[0], w_shape[1])


def to_nchw(x: jax.Array, layout: str) -> jax.Array:
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def from_nchw(x: jax.Array, layout: str) -> jax.Array:
    return x if layout == "NCHW" else x.transpose(0, 2, 3, 1)


def weight_to_oihw(w: jax.Array, layout: str) -> jax.Array:
    return w if layout == "NCHW" else w.transpose(3, 2, 0, 1)
