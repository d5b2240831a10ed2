"""``impl="auto"``: which convolution and pooling implementation runs for a shape on a backend.

The rule summarises ``jaxconv bench`` and LeNet training steps measured on a 2-core AVX-512 CPU
(jax 0.10.2; forward+backward, the training case; table in the README):

* GPU and TPU: ``xla`` (cuDNN and the TPU convolution emitter are what hand-written code competes
  with there).
* CPU, at most ``FEW_CHANNELS`` input channels per group (LeNet's first layer, C=1): ``shift_add``.
  25 tiny matmuls beat XLA's convolution ~7x forward and ~2x forward+backward, in a whole
  training step too.
* CPU, a deep contraction (``C/groups * kh * kw >= DEEP_CONTRACTION``: ResNet's 3x3x64, a 1x1 over
  256 channels, the book's 5x5x100): ``im2col``, one big matmul, 2-6x faster forward+backward than
  XLA's CPU convolution, whose backward pass is slow; unless the patch matrix would exceed
  ``MAX_PATCH_BYTES``, then ``xla``, which never materialises it.
* CPU otherwise (LeNet's second layer, 5x5x6 = 150): ``xla``. im2col wins that layer alone but
  loses inside the LeNet training step, where the patch scatter of its backward pass costs more.

Pooling on CPU: windows that tile the input (``stride == window``, LeNet's 2x2/2) use ``shift_add``,
reduced as a reshape, whose gradient is a broadcast; overlapping windows use ``xla``.
Pass an explicit ``impl`` to override; :func:`conv_impl` shows what ``auto`` would pick.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FEW_CHANNELS = 3
DEEP_CONTRACTION = 256
MAX_PATCH_BYTES = 2 << 30


def conv_impl(
    backend: str, *, x_shape: Sequence[int], out_channels: int, kernel: Sequence[int], groups: int,
    itemsize: int = 4, output_hw: Sequence[int] | None = None,
) -> str:  # fmt: skip
    """The implementation ``impl="auto"`` runs for a convolution.

    Args:
      backend: ``jax.default_backend()``: ``"cpu"``, ``"gpu"`` or ``"tpu"``.
      x_shape: the batched input ``(N, C, H, W)`` (NCHW order whatever the layout).
      out_channels, kernel, groups: the layer's.
      itemsize: bytes per element of the input dtype.
      output_hw: ``(OH, OW)`` if known (default: ``(H, W)``, an upper bound for the patch size).

    Examples:
      >>> conv_impl("cpu", x_shape=(256, 1, 28, 28), out_channels=6, kernel=(5, 5), groups=1)
      'shift_add'
      >>> conv_impl("cpu", x_shape=(256, 6, 14, 14), out_channels=16, kernel=(5, 5), groups=1)
      'xla'
      >>> conv_impl("cpu", x_shape=(32, 64, 56, 56), out_channels=64, kernel=(3, 3), groups=1)
      'im2col'
      >>> conv_impl("gpu", x_shape=(256, 6, 14, 14), out_channels=16, kernel=(5, 5), groups=1)
      'xla'
    """
    del out_channels  # the measured rule does not need it; kept so callers pass the whole layer
    if backend != "cpu" or groups != 1:
        return "xla"  # grouped convolutions were not measured: trust XLA
    n, c, h, w = x_shape
    if c <= FEW_CHANNELS:
        return "shift_add"
    depth = c * int(np.prod(kernel))
    oh, ow = output_hw if output_hw is not None else (h, w)
    if depth >= DEEP_CONTRACTION and n * oh * ow * depth * itemsize <= MAX_PATCH_BYTES:
        return "im2col"
    return "xla"


def pool_impl(backend: str, *, input_hw: Sequence[int], window: Sequence[int], stride: Sequence[int],
              pads: Sequence[Sequence[int]]) -> str:  # fmt: skip
    """The implementation ``impl="auto"`` runs for pooling (padded ``input_hw``, canonical pairs).

    Examples:
      >>> pool_impl("cpu", input_hw=(28, 28), window=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0)))
      'shift_add'
      >>> pool_impl("cpu", input_hw=(28, 28), window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)))
      'xla'
    """
    tiles = all(
        k == s and (n + lo + hi) % k == 0
        for n, k, s, (lo, hi) in zip(input_hw, window, stride, pads, strict=True)
    )
    return "shift_add" if backend == "cpu" and tiles else "xla"
