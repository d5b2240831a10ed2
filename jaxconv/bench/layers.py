"""The layers ``jaxconv bench`` races: :class:`ConvShape` and the standard set, LeNet's two layers to a
ResNet's."""

from __future__ import annotations

import dataclasses

from jaxconv.shapes import conv_output_shape
from jaxconv.spec import ConvSpec


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One convolution layer: ``(batch, in_channels, H, W)`` through ``out_channels`` square kernels."""

    name: str
    batch: int
    in_channels: int
    out_channels: int
    size: int
    kernel: int
    padding: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        for field in ("batch", "in_channels", "out_channels", "size", "kernel", "stride"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"ConvShape: {field} must be an int >= 1, got {getattr(self, field)!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"ConvShape: padding must be an int >= 0, got {self.padding!r}")
        conv_output_shape((self.size, self.size), self.kernel, padding=self.padding, stride=self.stride)

    @classmethod
    def parse(cls, text: str) -> ConvShape:
        """``"N,C,O,H,K[,P[,S]]"``, e.g. ``"256,6,16,14,5"`` (LeNet's second layer)."""
        parts = text.split(",")
        if not 5 <= len(parts) <= 7 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"shape must be N,C,O,H,K[,P[,S]] with integers, got {text!r}")
        n, c, o, h, k, *rest = (int(p) for p in parts)
        return cls(text, n, c, o, h, k, *rest)

    def spec(self, layout: str = "NCHW", dtype: str = "float32") -> ConvSpec:
        """The layer as the description of a call (:class:`jaxconv.spec.ConvSpec`)."""
        p = self.padding
        return ConvSpec(
            batch=self.batch, in_channels=self.in_channels, out_channels=self.out_channels,
            input_hw=(self.size, self.size), kernel=(self.kernel, self.kernel),
            stride=(self.stride, self.stride), pads=((p, p), (p, p)), layout=layout, dtype=dtype,
        )  # fmt: skip

    @property
    def output_size(self) -> int:
        return self.spec().output_hw[0]

    @property
    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (the backward pass is twice this)."""
        return self.spec().flops

    def describe(self) -> str:
        return (
            f"{self.batch}, {self.in_channels}->{self.out_channels}, {self.size}², "
            f"k{self.kernel} p{self.padding} s{self.stride}"
        )


STANDARD_SHAPES = (
    ConvShape("lenet_conv1", 256, 1, 6, 28, 5, 2),
    ConvShape("lenet_conv2", 256, 6, 16, 14, 5),
    ConvShape("book_100", 8, 100, 100, 64, 5, 2),
    ConvShape("resnet_3x3", 32, 64, 64, 56, 3, 1),
    ConvShape("resnet_3x3_s2", 32, 64, 64, 56, 3, 1, 2),
    ConvShape("pointwise_1x1", 32, 256, 64, 56, 1),
)
