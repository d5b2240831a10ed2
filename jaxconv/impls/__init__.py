"""The implementations being raced, one module each, and their registry.

Every implementation has a convolution core and a pooling core, each with one keyword signature
(:mod:`jaxconv.impls.common`), options already canonical::

    conv(x, w, b, *, stride, pads, dilation, groups, layout, precision) -> y
    pool(x, *, mode, window, stride, pads, dilation, layout) -> the windows' max, or their sum

The public ops (:func:`jaxconv.conv2d`, :func:`jaxconv.max_pool2d`, ...) validate and canonicalise
their arguments, then call the core :data:`REGISTRY` names. Adding an implementation is one module
here, one line in :data:`REGISTRY`, and its tests. ``"auto"`` is not an implementation but a rule
that picks one per shape and platform (:mod:`jaxconv.impls.auto`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax

from jaxconv.impls import band, manual, taps, winograd, xla

ConvCore = Callable[..., jax.Array]
PoolCore = Callable[..., jax.Array]


class Impl(NamedTuple):
    """One implementation's two cores."""

    conv: ConvCore
    pool: PoolCore


# A max has no matmul, so pooling has no band or Winograd form: "banded" and "winograd" pool by the
# running tap reduction of shift_add, so a model can pass one impl to all of its layers.
REGISTRY: dict[str, Impl] = {
    "xla": Impl(xla.conv2d_xla, xla.pool_xla),
    "manual": Impl(manual.conv2d_manual, manual.pool_manual),
    "im2col": Impl(taps.conv2d_im2col, taps.pool_im2col),
    "shift_add": Impl(taps.conv2d_shift_add, taps.pool_shift_add),
    "banded": Impl(band.conv2d_banded, taps.pool_shift_add),
    "winograd": Impl(winograd.conv2d_winograd, taps.pool_shift_add),
}
CONV_CORES: dict[str, ConvCore] = {name: impl.conv for name, impl in REGISTRY.items()}
POOL_CORES: dict[str, PoolCore] = {name: impl.pool for name, impl in REGISTRY.items()}

# The concrete implementations, and the choices a user may pass ("auto" picks one per shape and backend).
IMPLS = tuple(REGISTRY)
IMPL_CHOICES = ("auto", *IMPLS)
