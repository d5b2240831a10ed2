"""``impl="xla"``: XLA's own convolution and window reduction, the reference every other impl races.

The only module of jaxconv that calls ``lax.conv_general_dilated`` and ``lax.reduce_window``. The
layout goes to XLA as ``lax.ConvDimensionNumbers`` (:func:`jaxconv.layout.dimension_numbers`), not
as transposes, as Flax and Haiku do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import Precision, accumulation_dtype
from jaxconv.impls.common import CORE_STATIC, POOL_STATIC
from jaxconv.layout import dimension_numbers, spatial_axes
from jaxconv.spec import ConvSpec, PoolSpec


@partial(jax.jit, static_argnames=CORE_STATIC)
def conv2d_xla(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    spec: ConvSpec,
    precision: Precision = None,
) -> jax.Array:
    """Batched convolution through ``lax.conv_general_dilated``; options already canonical."""
    stride, pads, dilation, groups, layout = spec.stride, spec.pads, spec.dilation, spec.groups, spec.layout
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=dimension_numbers(layout),
        feature_group_count=groups,
        precision=precision,
    )
    if b is not None:
        y = y + (b[None, :, None, None] if layout == "NCHW" else b[None, None, None, :])
    return y


@partial(jax.jit, static_argnames=POOL_STATIC)
def pool_xla(x: jax.Array, *, spec: PoolSpec) -> jax.Array:
    """The windows' max (``x.dtype``) or sum (accumulation dtype) through ``lax.reduce_window``."""
    mode, layout = spec.mode, spec.layout
    window, stride, pads, dilation = spec.window, spec.stride, spec.pads, spec.dilation
    spatial = spatial_axes(layout)
    dims, strides, padding, dilations = [1] * 4, [1] * 4, [(0, 0)] * 4, [1] * 4
    for axis, k, s, p, d in zip(spatial, window, stride, pads, dilation, strict=True):
        dims[axis], strides[axis], padding[axis], dilations[axis] = k, s, p, d
    if mode == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, padding, window_dilation=dilations)
    acc = accumulation_dtype(x.dtype)
    return lax.reduce_window(x.astype(acc), 0.0, lax.add, dims, strides, padding, window_dilation=dilations)


def conv_general_dilated_lax(
    lhs: jax.Array, rhs: jax.Array, window_strides: Any, padding: Any, **options: Any
) -> jax.Array:
    """``lax.conv_general_dilated`` itself: :func:`jaxconv.conv_general_dilated`'s ``impl="xla"``, and
    its path for what jaxconv's cores do not do (other ranks, batch groups, integer dtypes, ...)."""
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **options)


def conv_transpose_lax(
    lhs: jax.Array, rhs: jax.Array, strides: Any, padding: Any, **options: Any
) -> jax.Array:
    """``lax.conv_transpose`` itself: :func:`jaxconv.conv_transpose`'s ``impl="xla"`` and its path for
    other ranks."""
    return lax.conv_transpose(lhs, rhs, strides, padding, **options)
