"""The layers ``jaxconv bench`` races: :class:`ConvShape` and the standard set, LeNet's two layers to a
ResNet's."""

from __future__ import annotations

import dataclasses

from jaxconv.spec import ConvSpec


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One convolution layer: ``(batch, in_channels, H, W)`` through ``out_channels`` square kernels,
    grouped by ``groups`` (``groups == in_channels``: depthwise), dilated by ``dilation``; with
    ``transposed``, the transposed convolution (:func:`jaxconv.conv_transpose2d`) of that stride, padding
    and ``output_padding``."""

    name: str
    batch: int
    in_channels: int
    out_channels: int
    size: int
    kernel: int
    padding: int = 0
    stride: int = 1
    groups: int = 1
    dilation: int = 1
    transposed: bool = False
    output_padding: int = 0

    def __post_init__(self) -> None:
        for field in (
            "batch",
            "in_channels",
            "out_channels",
            "size",
            "kernel",
            "stride",
            "groups",
            "dilation",
        ):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"ConvShape: {field} must be an int >= 1, got {getattr(self, field)!r}")
        for field in ("padding", "output_padding"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 0:
                raise ValueError(f"ConvShape: {field} must be an int >= 0, got {getattr(self, field)!r}")
        if not isinstance(self.transposed, bool):
            raise TypeError(f"ConvShape: transposed must be a bool, got {self.transposed!r}")
        if self.output_padding and not self.transposed:
            raise ValueError(f"ConvShape: output_padding {self.output_padding} needs transposed=True")
        self.spec()  # validates groups against the channels, and the sizes

    @classmethod
    def parse(cls, text: str) -> ConvShape:
        """``"N,C,O,H,K[,P[,S]][,g=G][,d=D][,t][,op=P]"``: e.g. ``"256,6,16,14,5"`` (LeNet's second layer),
        ``"32,144,144,56,3,1,g=144"`` (a depthwise 3x3), ``"64,128,64,16,4,1,2,t"`` (a transposed 4x4,
        stride 2, upsampling 16 to 32)."""
        parts = [p.strip() for p in text.split(",")]
        numbers = [p for p in parts if "=" not in p and p != "t"]
        options = {"g": "groups", "d": "dilation", "op": "output_padding"}
        named: dict[str, int | bool] = {}
        for part in parts[len(numbers) :]:
            key, _, value = part.partition("=")
            if part == "t":
                named["transposed"] = True
            elif key in options and value.isdigit():
                named[options[key]] = int(value)
            else:
                raise ValueError(f"shape option {part!r} in {text!r}: expected g=G, d=D, t or op=P")
        if not 5 <= len(numbers) <= 7 or not all(p.isdigit() for p in numbers) or "t" in numbers:
            raise ValueError(
                f"shape must be N,C,O,H,K[,P[,S]] integers, then g=G, d=D, t, op=P, got {text!r}"
            )
        n, c, o, h, k, *rest = (int(p) for p in numbers)
        return cls(text, n, c, o, h, k, *rest, **named)  # type: ignore[arg-type]

    def spec(self, layout: str = "NCHW", dtype: str = "float32") -> ConvSpec:
        """The layer as the description of a call (:class:`jaxconv.spec.ConvSpec`); a transposed layer as
        the convolution of its spread input that :func:`jaxconv.conv_transpose2d` runs."""
        p, k, d, s = self.padding, self.kernel, self.dilation, self.stride
        common = dict(
            batch=self.batch, in_channels=self.in_channels, out_channels=self.out_channels,
            input_hw=(self.size, self.size), kernel=(k, k), dilation=(d, d), groups=self.groups,
            layout=layout, dtype=dtype,
        )  # fmt: skip
        if not self.transposed:
            return ConvSpec(**common, stride=(s, s), pads=((p, p), (p, p)))  # type: ignore[arg-type]
        edge = d * (k - 1) - p
        pads = ((edge, edge + self.output_padding), (edge, edge + self.output_padding))
        return ConvSpec(**common, pads=pads, input_dilation=(s, s), transposed=True)  # type: ignore[arg-type]

    @property
    def output_size(self) -> int:
        return self.spec().output_hw[0]

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(O, C/G, k, k)``; transposed, ``(C, O/G, k, k)`` (PyTorch's, as
        :func:`jaxconv.conv_transpose2d`)."""
        k, g = self.kernel, self.groups
        if self.transposed:
            return (self.in_channels, self.out_channels // g, k, k)
        return (self.out_channels, self.in_channels // g, k, k)

    @property
    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (the backward pass is twice this). A transposed
        layer counts the products of real inputs: each input element meets every tap once."""
        if self.transposed:
            c, o, k = self.in_channels, self.out_channels // self.groups, self.kernel
            return 2 * self.batch * self.size**2 * c * o * k * k
        return self.spec().flops

    def describe(self) -> str:
        named = (("g", self.groups, 1), ("d", self.dilation, 1), ("op", self.output_padding, 0))
        options = "".join(f" {label}{value}" for label, value, default in named if value != default)
        kind = " transposed" if self.transposed else ""
        return (
            f"{self.batch}, {self.in_channels}->{self.out_channels}, {self.size}², "
            f"k{self.kernel} p{self.padding} s{self.stride}{options}{kind}"
        )


STANDARD_SHAPES = (
    ConvShape("lenet_conv1", 256, 1, 6, 28, 5, 2),
    ConvShape("lenet_conv2", 256, 6, 16, 14, 5),
    ConvShape("book_100", 8, 100, 100, 64, 5, 2),
    ConvShape("resnet_3x3", 32, 64, 64, 56, 3, 1),
    ConvShape("resnet_3x3_s2", 32, 64, 64, 56, 3, 1, 2),
    ConvShape("pointwise_1x1", 32, 256, 64, 56, 1),
    # The layers modern CNNs add (issue 36's table): depthwise (MobileNet), grouped (ResNeXt), dilated
    # (DeepLab), transposed (U-Net, GAN decoders).
    ConvShape("depthwise_3x3", 32, 144, 144, 56, 3, 1, groups=144),
    ConvShape("depthwise_3x3_s2", 32, 96, 96, 112, 3, 1, 2, groups=96),
    ConvShape("depthwise_7x7", 32, 96, 96, 56, 7, 3, groups=96),
    ConvShape("grouped_3x3_g32", 32, 128, 128, 56, 3, 1, groups=32),
    ConvShape("dilated_3x3_d2", 16, 64, 64, 64, 3, 2, dilation=2),
    ConvShape("transposed_4x4_s2", 64, 128, 64, 16, 4, 1, 2, transposed=True),
    ConvShape("transposed_2x2_s2", 16, 128, 64, 32, 2, 0, 2, transposed=True),
    ConvShape("transposed_3x3_s2_op1", 16, 64, 32, 32, 3, 1, 2, transposed=True, output_padding=1),
)
