"""Output-shape and receptive-field arithmetic on plain Python ints (the book's section 6.3).

Everything here is static: it runs in Python before tracing, so ops can validate shapes and build
XLA padding without touching arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

from jaxconv._checks import PadPairs, Pair, is_int, to_pair

Padding = int | Pair | PadPairs | str | Sequence[Sequence[int]]


def effective_kernel(kernel_hw: Sequence[int], dilation: Sequence[int]) -> Pair:
    """Extent of a dilated kernel: ``(k - 1) * d + 1`` per axis."""
    return ((kernel_hw[0] - 1) * dilation[0] + 1, (kernel_hw[1] - 1) * dilation[1] + 1)


def _same_pads(n: int, k_eff: int, s: int) -> Pair:
    # Output ceil(n / s); the odd pixel of an even total goes after (bottom/right), as in XLA 'SAME'.
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return (total // 2, total - total // 2)


def resolve_padding(fn: str, padding: Padding, input_hw: Pair, kernel_eff: Pair, stride: Pair) -> PadPairs:
    """Turns every accepted padding form into explicit ``((top, bottom), (left, right))``.

    Forms: an int or a pair (added on *each* side, as in the book and PyTorch); explicit pairs
    ``((top, bottom), (left, right))``; ``"valid"`` (no padding); ``"same"`` (output
    ``ceil(in / stride)``, any odd total goes to the bottom/right, XLA's and TensorFlow's rule).
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode == "same":
            return (
                _same_pads(input_hw[0], kernel_eff[0], stride[0]),
                _same_pads(input_hw[1], kernel_eff[1], stride[1]),
            )
        raise ValueError(f"{fn}: padding must be 'same', 'valid', an int or pairs, got {padding!r}")
    if (
        isinstance(padding, tuple | list)
        and len(padding) == 2
        and all(isinstance(p, tuple | list) for p in padding)
    ):
        given = cast(Sequence[Sequence[int]], padding)
        if not all(len(p) == 2 and all(is_int(v) for v in p) for p in given):
            raise TypeError(
                f"{fn}: explicit padding must be ((top, bottom), (left, right)) ints, got {padding!r}"
            )
        pads = ((int(given[0][0]), int(given[0][1])), (int(given[1][0]), int(given[1][1])))
        if min(min(p) for p in pads) < 0:
            raise ValueError(f"{fn}: padding must be >= 0, got {padding!r}")
        return pads
    ph, pw = to_pair(fn, "padding", padding, minimum=0)
    return ((ph, ph), (pw, pw))


def output_size(
    fn: str,
    input_hw: Sequence[int],
    kernel_eff: Sequence[int],
    pads: Sequence[Sequence[int]],
    stride: Sequence[int],
) -> Pair:
    """``floor((n + p_top + p_bottom - k_eff) / s) + 1`` per axis, refusing empty outputs."""
    out = []
    for axis, n, k, (lo, hi), s in zip("HW", input_hw, kernel_eff, pads, stride, strict=True):
        if k > n + lo + hi:
            raise ValueError(
                f"{fn}: kernel extent {k} (after dilation) is larger than the padded input "
                f"{n + lo + hi} along {axis} (input {tuple(input_hw)}, padding {pads})"
            )
        out.append((n + lo + hi - k) // s + 1)
    return (out[0], out[1])


def conv_output_shape(
    input_hw: int | Pair,
    kernel_size: int | Pair,
    *,
    padding: Padding = 0,
    stride: int | Pair = 1,
    dilation: int | Pair = 1,
) -> Pair:
    """Spatial output shape of a convolution: the book's ``floor((n - k + p + s) / s)``.

    Generalised to dilation (``k`` becomes ``(k - 1) * d + 1``) and to every padding form of
    :func:`jaxconv.conv2d` (``p`` is the total of both sides).

    Args:
      input_hw: input height and width, an int for a square input.
      kernel_size: kernel height and width.
      padding: an int or pair (per side), ``((top, bottom), (left, right))``, "valid" or "same".
      stride: int or pair, >= 1.
      dilation: int or pair, >= 1.

    Returns:
      ``(oh, ow)``.

    Raises:
      ValueError: a size < 1, negative padding, or a kernel larger than the padded input.

    Examples:
      >>> conv_output_shape(8, 3, padding=1, stride=2)
      (4, 4)
      >>> conv_output_shape(8, (3, 5), padding=(0, 1), stride=(3, 4))
      (2, 2)
    """
    fn = "conv_output_shape"
    hw = to_pair(fn, "input_hw", input_hw, minimum=1)
    k = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    s = to_pair(fn, "stride", stride, minimum=1)
    d = to_pair(fn, "dilation", dilation, minimum=1)
    k_eff = effective_kernel(k, d)
    return output_size(fn, hw, k_eff, resolve_padding(fn, padding, hw, k_eff, s), s)


def conv_transpose_output_shape(
    input_hw: int | Sequence[int],
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> Pair:
    """Spatial output shape of a transposed convolution (PyTorch's formula):
    ``(n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1``.

    Inverts :func:`conv_output_shape` (int/pair padding): ``output_padding`` picks which of the
    input sizes a stride > 1 maps to the same output size; it must be below ``max(stride, dilation)``.

    Examples:
      >>> conv_transpose_output_shape(4, 3, stride=2, padding=1)
      (7, 7)
      >>> conv_transpose_output_shape(4, 3, stride=2, padding=1, output_padding=1)
      (8, 8)
      >>> conv_output_shape(8, 3, stride=2, padding=1)
      (4, 4)
    """
    fn = "conv_transpose_output_shape"
    hw = to_pair(fn, "input_hw", input_hw, minimum=1)
    k = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    s = to_pair(fn, "stride", stride, minimum=1)
    p = to_pair(fn, "padding", padding, minimum=0)
    op = to_pair(fn, "output_padding", output_padding, minimum=0)
    d = to_pair(fn, "dilation", dilation, minimum=1)
    out = []
    for axis, n, ki, si, pi, opi, di in zip("HW", hw, k, s, p, op, d, strict=True):
        if opi >= max(si, di):
            raise ValueError(
                f"{fn}: output_padding must be smaller than stride or dilation, got output_padding {op}, "
                f"stride {s}, dilation {d}"
            )
        size = (n - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        if size < 1:
            raise ValueError(
                f"{fn}: output size along {axis} would be {size} < 1 (input {hw}, kernel {k}, stride {s}, "
                f"padding {p}, dilation {d}): padding too large"
            )
        out.append(size)
    return (out[0], out[1])


def check_pool_padding(fn: str, pads: PadPairs, kernel_hw: Pair) -> None:
    """PyTorch's rule: each side pads at most half the window, so no window is all padding."""
    for (lo, hi), k in zip(pads, kernel_hw, strict=True):
        if max(lo, hi) > k // 2:
            raise ValueError(
                f"{fn}: padding must be at most half the window on each side, got padding "
                f"{pads} for kernel_size {kernel_hw}"
            )


def pool_output_shape(
    input_hw: int | Pair,
    kernel_size: int | Pair,
    *,
    padding: Padding = 0,
    stride: int | Pair | None = None,
) -> Pair:
    """Spatial output shape of pooling; ``stride`` defaults to the window, as in the book.

    Examples:
      >>> pool_output_shape(4, 3, padding=1, stride=2)
      (2, 2)
      >>> pool_output_shape(4, 3)
      (1, 1)
    """
    fn = "pool_output_shape"
    hw = to_pair(fn, "input_hw", input_hw, minimum=1)
    k = to_pair(fn, "kernel_size", kernel_size, minimum=1)
    s = k if stride is None else to_pair(fn, "stride", stride, minimum=1)
    pads = resolve_padding(fn, padding, hw, k, s)
    check_pool_padding(fn, pads, k)
    return output_size(fn, hw, k, pads, s)


class ReceptiveField(NamedTuple):
    """Receptive field of one output element: ``size`` in input pixels and ``jump`` (input
    pixels between neighbouring outputs), each as ``(height, width)``."""

    size: Pair
    jump: Pair


def receptive_field(layers: Sequence[Sequence[int | Pair]]) -> ReceptiveField:
    """Receptive field of a stack of convolution/pooling layers, first layer first.

    Each layer is ``(kernel, stride)`` or ``(kernel, stride, dilation)`` with ints or pairs. The
    recursion is ``size += (k - 1) * d * jump`` then ``jump *= s``; padding moves the field but
    does not change its size.

    Examples:
      >>> receptive_field([(3, 1), (3, 1)])
      ReceptiveField(size=(5, 5), jump=(1, 1))
      >>> receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)])  # LeNet's conv/pool stack
      ReceptiveField(size=(16, 16), jump=(4, 4))
    """
    fn = "receptive_field"
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(f"{fn}: layers must be a sequence of (kernel, stride[, dilation]), got {layers!r}")
    size, jump = [1, 1], [1, 1]
    for i, layer in enumerate(layers):
        if not isinstance(layer, tuple | list) or len(layer) not in (2, 3):
            raise ValueError(f"{fn}: layers[{i}] must be (kernel, stride[, dilation]), got {layer!r}")
        k = to_pair(fn, f"layers[{i}] kernel", layer[0], minimum=1)
        s = to_pair(fn, f"layers[{i}] stride", layer[1], minimum=1)
        d = to_pair(fn, f"layers[{i}] dilation", layer[2] if len(layer) == 3 else 1, minimum=1)
        for a in range(2):
            size[a] += (k[a] - 1) * d[a] * jump[a]
            jump[a] *= s[a]
    return ReceptiveField((size[0], size[1]), (jump[0], jump[1]))
