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
