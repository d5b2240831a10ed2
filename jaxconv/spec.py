"""The one description of a convolution or pooling call: built and validated once, read by everyone after.

The public ops (:func:`jaxconv.conv2d`, :func:`jaxconv.conv_general_dilated`,
:func:`jaxconv.conv_transpose2d`, the pooling functions) canonicalise their arguments into a
:class:`ConvSpec` or :class:`PoolSpec`; the dispatcher (:mod:`jaxconv.impls`), the ``auto`` rule, the cores
and the bench read its fields and derived sizes instead of recomputing them from array shapes. A spec is
frozen and hashable (a static argument of a jitted core, a dictionary key) and has a stable JSON form
(:meth:`ConvSpec.to_json`), the key of any cache of measurements.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from jaxconv._checks import LAYOUTS, PadPairs, Pair, is_int
from jaxconv.layout import batched_shape, weight_shape

_SPATIAL = "HW"


def _pair_of_ints(cls: str, name: str, value: object, minimum: int | None) -> None:
    if not (isinstance(value, tuple) and len(value) == 2 and all(is_int(v) for v in value)):
        raise TypeError(f"{cls}: {name} must be a tuple of two ints, got {value!r}")
    if minimum is not None and min(value) < minimum:
        raise ValueError(f"{cls}: {name} must be >= {minimum}, got {value!r}")


def _check_common(cls: str, spec: Any, ints: tuple[str, ...], pairs: Mapping[str, int | None]) -> None:
    for name in ints:
        value = getattr(spec, name)
        if not is_int(value) or value < 0:
            raise ValueError(f"{cls}: {name} must be an int >= 0, got {value!r}")
    for name, minimum in pairs.items():
        _pair_of_ints(cls, name, getattr(spec, name), minimum)
    pads = spec.pads
    if not (isinstance(pads, tuple) and len(pads) == 2):
        raise TypeError(f"{cls}: pads must be ((top, bottom), (left, right)), got {pads!r}")
    for pair in pads:
        _pair_of_ints(cls, "pads", pair, None)
    if spec.layout not in LAYOUTS:
        raise ValueError(f"{cls}: layout must be one of {LAYOUTS}, got {spec.layout!r}")
    if not isinstance(spec.dtype, str):
        raise TypeError(f"{cls}: dtype must be a dtype name such as 'float32', got {spec.dtype!r}")


def _window_output(cls: str, padded: Pair, extent: Pair, stride: Pair) -> Pair:
    out = []
    for axis, n, k, s in zip(_SPATIAL, padded, extent, stride, strict=True):
        if k > n:
            raise ValueError(f"{cls}: window extent {k} is larger than the padded input {n} along {axis}")
        out.append((n - k) // s + 1)
    return (out[0], out[1])


class _Forms:
    """What both descriptions offer: a changed copy, and a stable JSON form (the key of a cache)."""

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_json(self) -> str:
        """A stable JSON string (sorted keys, lists for tuples): the same call gives the same text."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls(**_tuples(json.loads(text)))


@dataclasses.dataclass(frozen=True)
class ConvSpec(_Forms):
    """One 2-D convolution call, canonical: what a core computes, on which shapes.

    The input ``(batch, in_channels, *input_hw)`` (in ``layout``'s order) is spread by ``input_dilation``
    (``d - 1`` zeros between neighbours: a transposed convolution), padded by ``pads`` (negative values
    crop, as in lax), and correlated with a ``kernel`` of ``in_channels / groups`` input and
    ``out_channels`` output channels, dilated by ``dilation``, at ``stride``. ``transposed`` marks the
    call of a transposed convolution (:func:`jaxconv.conv_transpose2d`), the kernel already flipped.

    Examples:
      >>> spec = ConvSpec(batch=256, in_channels=6, out_channels=16, input_hw=(14, 14), kernel=(5, 5))
      >>> spec.output_hw, spec.x_shape, spec.w_shape
      ((10, 10), (256, 6, 14, 14), (16, 6, 5, 5))
      >>> ConvSpec.from_json(spec.to_json()) == spec
      True
    """

    batch: int
    in_channels: int
    out_channels: int
    input_hw: Pair
    kernel: Pair
    stride: Pair = (1, 1)
    pads: PadPairs = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    input_dilation: Pair = (1, 1)
    groups: int = 1
    layout: str = "NCHW"
    dtype: str = "float32"
    transposed: bool = False

    def __post_init__(self) -> None:
        cls = "ConvSpec"
        if not isinstance(self.transposed, bool):
            raise TypeError(f"{cls}: transposed must be a bool, got {self.transposed!r}")
        pairs = {"input_hw": 0, "kernel": 1, "stride": 1, "dilation": 1, "input_dilation": 1}
        _check_common(cls, self, ("batch", "in_channels", "out_channels"), pairs)
        if not is_int(self.groups) or self.groups < 1:
            raise ValueError(f"{cls}: groups must be an int >= 1, got {self.groups!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"{cls}: in_channels {self.in_channels} and out_channels {self.out_channels} must be "
                f"divisible by groups={self.groups}"
            )
        _window_output(cls, self.padded_hw, self.kernel_extent, self.stride)

    # ---- derived sizes ----------------------------------------------------------------------

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def spread_hw(self) -> Pair:
        """The input's spatial size after ``input_dilation`` (0 stays 0)."""
        h, w = ((n - 1) * d + 1 if n else 0 for n, d in zip(self.input_hw, self.input_dilation, strict=True))
        return (h, w)

    @property
    def padded_hw(self) -> Pair:
        (h, w), ((top, bottom), (left, right)) = self.spread_hw, self.pads
        return (h + top + bottom, w + left + right)

    @property
    def kernel_extent(self) -> Pair:
        """A dilated kernel's extent, ``(k - 1) * d + 1`` per axis."""
        h, w = ((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation, strict=True))
        return (h, w)

    @property
    def output_hw(self) -> Pair:
        return _window_output("ConvSpec", self.padded_hw, self.kernel_extent, self.stride)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """The batched input's shape in ``layout``."""
        return batched_shape(self.batch, self.in_channels, self.input_hw, self.layout)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        """The kernel's shape: ``(O, C/groups, kh, kw)`` in NCHW, ``(kh, kw, C/groups, O)`` in NHWC."""
        return weight_shape(self.out_channels, self.in_channels_per_group, self.kernel, self.layout)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return batched_shape(self.batch, self.out_channels, self.output_hw, self.layout)

    @property
    def itemsize(self) -> int:
        return int(np.dtype(self.dtype).itemsize)  # bfloat16 too: jax registers ml_dtypes' with NumPy

    @property
    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (each gradient pass costs as much)."""
        oh, ow = self.output_hw
        return (
            2 * self.batch * self.out_channels * oh * ow * self.in_channels_per_group * math.prod(self.kernel)
        )

    # ---- forms ------------------------------------------------------------------------------

    def spread(self) -> ConvSpec:
        """The spec of the same convolution on the input already spread and padded (or cropped):
        ``input_dilation`` 1 and zero pads, what a core that takes neither runs."""
        return self.replace(
            input_hw=self.padded_hw, pads=((0, 0), (0, 0)), input_dilation=(1, 1), transposed=False
        )


@dataclasses.dataclass(frozen=True)
class PoolSpec(_Forms):
    """One 2-D pooling call, canonical: the ``window`` (dilated by ``dilation``) slides at ``stride`` over
    the input ``(batch, channels, *input_hw)`` (in ``layout``'s order) padded by ``pads`` (with -inf for a
    max, zeros for a sum; these pads include any extra rows ``ceil_mode`` adds); ``mode`` is ``"max"`` or
    ``"avg"`` (the cores return the windows' sum, the op divides).

    Examples:
      >>> PoolSpec(batch=256, channels=6, input_hw=(28, 28), window=(2, 2), stride=(2, 2)).output_hw
      (14, 14)
    """

    batch: int
    channels: int
    input_hw: Pair
    window: Pair
    stride: Pair
    pads: PadPairs = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    mode: str = "max"
    layout: str = "NCHW"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        cls = "PoolSpec"
        _check_common(
            cls, self, ("batch", "channels"), {"input_hw": 1, "window": 1, "stride": 1, "dilation": 1}
        )
        if self.mode not in ("max", "avg"):
            raise ValueError(f"{cls}: mode must be 'max' or 'avg', got {self.mode!r}")
        _window_output(cls, self.padded_hw, self.window_extent, self.stride)

    @property
    def padded_hw(self) -> Pair:
        (h, w), ((top, bottom), (left, right)) = self.input_hw, self.pads
        return (h + top + bottom, w + left + right)

    @property
    def window_extent(self) -> Pair:
        h, w = ((k - 1) * d + 1 for k, d in zip(self.window, self.dilation, strict=True))
        return (h, w)

    @property
    def output_hw(self) -> Pair:
        return _window_output("PoolSpec", self.padded_hw, self.window_extent, self.stride)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return batched_shape(self.batch, self.channels, self.input_hw, self.layout)

    @property
    def tiles_input(self) -> bool:
        """Whether the windows tile the padded input exactly: ``stride == window``, undilated, dividing it."""
        return self.dilation == (1, 1) and all(
            k == s and n % k == 0 for n, k, s in zip(self.padded_hw, self.window, self.stride, strict=True)
        )


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON's lists back to the (nested) tuples a spec holds."""

    def convert(value: Any) -> Any:
        return tuple(convert(v) for v in value) if isinstance(value, list) else value

    return {name: convert(value) for name, value in fields.items()}
