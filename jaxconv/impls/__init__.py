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
from functools import partial
from typing import NamedTuple

import jax
from jax import lax

from jaxconv._checks import PadPairs, Pair, Precision
from jaxconv.impls import auto, band, common, manual, pallas, taps, winograd, xla
from jaxconv.layout import spatial_of, weight_dims

ConvCore = Callable[..., jax.Array]
PoolCore = Callable[..., jax.Array]


class Impl(NamedTuple):
    """One implementation's two cores."""

    conv: ConvCore
    pool: PoolCore


# A max has no matmul, so pooling has no band or Winograd form: "banded", "winograd" and "pallas" pool
# by the running tap reduction of shift_add, so a model can pass one impl to all of its layers.
REGISTRY: dict[str, Impl] = {
    "xla": Impl(xla.conv2d_xla, xla.pool_xla),
    "manual": Impl(manual.conv2d_manual, manual.pool_manual),
    "im2col": Impl(taps.conv2d_im2col, taps.pool_im2col),
    "shift_add": Impl(taps.conv2d_shift_add, taps.pool_shift_add),
    "banded": Impl(band.conv2d_banded, taps.pool_shift_add),
    "winograd": Impl(winograd.conv2d_winograd, taps.pool_shift_add),
    "pallas": Impl(pallas.conv2d_pallas, taps.pool_shift_add),
}
CONV_CORES: dict[str, ConvCore] = {name: impl.conv for name, impl in REGISTRY.items()}
POOL_CORES: dict[str, PoolCore] = {name: impl.pool for name, impl in REGISTRY.items()}

# The concrete implementations, and the choices a user may pass ("auto" picks one per shape and backend).
IMPLS = tuple(REGISTRY)
IMPL_CHOICES = ("auto", *IMPLS)
# Kernels that a CPU runs in Pallas's interpreter: correct, not fast, so races leave them out there.
INTERPRETED_ON_CPU = ("pallas",)


# The platforms JAX lowers for, and the backend name each one's rule is asked under.
PLATFORMS = {"cpu": "cpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def per_platform(
    picks: dict[str, str], run: Callable[[str], Callable[..., jax.Array]], *args: jax.Array
) -> jax.Array:
    """``run(pick)(*args)`` for the pick of the platform the computation is lowered for.

    ``picks`` maps each of :data:`PLATFORMS` to an impl name. One pick for all runs it directly;
    otherwise ``lax.platform_dependent`` resolves at lowering, so a CPU program holds only the CPU
    branch and a GPU or TPU program only theirs, whatever the host that traced it.
    """
    distinct = set(picks.values())
    if len(distinct) == 1:
        return run(distinct.pop())(*args)
    branches = {platform: run(pick) for platform, pick in picks.items()}
    return lax.platform_dependent(*args, **branches, default=branches["cuda"])  # others: as accelerators


def conv(
    impl: str, x: jax.Array, w: jax.Array, b: jax.Array | None, *, stride: Pair, pads: PadPairs,
    dilation: Pair, groups: int, layout: str, precision: Precision = None,
) -> jax.Array:  # fmt: skip
    """Runs the convolution core ``impl`` names on a batched ``x``, options canonical. ``"auto"`` runs
    the core :func:`jaxconv.impls.auto.conv_impl` picks for this shape on the platform the
    computation is lowered for (:func:`per_platform`)."""
    options = dict(
        stride=stride, pads=pads, dilation=dilation, groups=groups, layout=layout, precision=precision
    )
    if impl != "auto":
        return CONV_CORES[impl](x, w, b, **options)
    (h, wd), c = spatial_of(x.shape, layout), x.shape[1 if layout == "NCHW" else 3]
    o, _, kernel = weight_dims(w.shape, layout)
    padded = (h + pads[0][0] + pads[0][1], wd + pads[1][0] + pads[1][1])
    output_hw = common.valid_output_hw(padded, kernel, stride, dilation)

    def rule(backend: str) -> str:
        return auto.conv_impl(
            backend, x_shape=(x.shape[0], c, h, wd), out_channels=o, kernel=kernel, groups=groups,
            itemsize=x.dtype.itemsize, output_hw=output_hw, stride=stride, dilation=dilation,
        )  # fmt: skip

    picks = {platform: rule(backend) for platform, backend in PLATFORMS.items()}

    def run(pick: str) -> Callable[..., jax.Array]:
        return lambda x, w, *bias: CONV_CORES[pick](x, w, bias[0] if bias else None, **options)

    return per_platform(picks, run, x, w, *([] if b is None else [b]))


def pool(
    impl: str, x: jax.Array, *, mode: str, window: Pair, stride: Pair, pads: PadPairs, dilation: Pair,
    layout: str,
) -> jax.Array:  # fmt: skip
    """Runs the pooling core ``impl`` names on a batched ``x`` (the windows' max, or their sum);
    ``"auto"`` runs the core :func:`jaxconv.impls.auto.pool_impl` picks for the platform the
    computation is lowered for."""
    options = dict(mode=mode, window=window, stride=stride, pads=pads, dilation=dilation, layout=layout)
    if impl != "auto":
        return POOL_CORES[impl](x, **options)
    input_hw = spatial_of(x.shape, layout)
    picks = {
        platform: auto.pool_impl(
            backend, input_hw=input_hw, window=window, stride=stride, pads=pads, dilation=dilation
        )
        for platform, backend in PLATFORMS.items()
    }
    return per_platform(picks, lambda pick: partial(POOL_CORES[pick], **options), x)
