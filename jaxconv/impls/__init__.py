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

from jaxconv._checks import PadPairs, Pair, Precision
from jaxconv.impls import auto, band, manual, taps, winograd, xla
from jaxconv.impls.common import valid_output_hw
from jaxconv.layout import spatial_of, weight_dims

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


def conv(
    impl: str, x: jax.Array, w: jax.Array, b: jax.Array | None, *, stride: Pair, pads: PadPairs,
    dilation: Pair, groups: int, layout: str, precision: Precision = None,
) -> jax.Array:  # fmt: skip
    """Runs the convolution core ``impl`` names on a batched ``x``, options canonical; ``"auto"`` runs
    the core :func:`jaxconv.impls.auto.conv_impl` picks for this shape on JAX's default backend."""
    if impl == "auto":
        (h, wd), c = spatial_of(x.shape, layout), x.shape[1 if layout == "NCHW" else 3]
        o, _, kernel = weight_dims(w.shape, layout)
        padded = (h + pads[0][0] + pads[0][1], wd + pads[1][0] + pads[1][1])
        impl = auto.conv_impl(
            jax.default_backend(),
            x_shape=(x.shape[0], c, h, wd),
            out_channels=o,
            kernel=kernel,
            groups=groups,
            itemsize=x.dtype.itemsize,
            output_hw=valid_output_hw(padded, kernel, stride, dilation),
            stride=stride,
            dilation=dilation,
        )
    return CONV_CORES[impl](
        x,
        w,
        b,
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=groups,
        layout=layout,
        precision=precision,
    )


def pool(
    impl: str, x: jax.Array, *, mode: str, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair,
    layout: str,
) -> jax.Array:  # fmt: skip
    """Runs the pooling core ``impl`` names on a batched ``x`` (the windows' max, or their sum);
    ``"auto"`` runs the core :func:`jaxconv.impls.auto.pool_impl` picks."""
    if impl == "auto":
        input_hw = spatial_of(x.shape, layout)
        impl = auto.pool_impl(
            jax.default_backend(),
            input_hw=input_hw,
            window=window,
            stride=stride,
            pads=pads,
            dilation=dilation,
        )
    core = POOL_CORES[impl]
    return core(x, mode=mode, window=window, stride=stride, pads=pads, dilation=dilation, layout=layout)
