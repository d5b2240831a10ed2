"""``impl="auto"``: which convolution and pooling implementation runs for a shape on a backend.

The rule summarises ``jaxconv bench`` (forward+backward, the training case) and LeNet training
steps measured on a 2-core AVX-512 CPU (jax 0.10.2; tables in docs/guide/race.md and docs/performance.md):

* GPU and TPU: ``xla`` (cuDNN and the TPU convolution emitter are what hand-written code competes
  with there). The Pallas kernel (``impl="pallas"``, :mod:`jaxconv.impls.pallas`) is never picked:
  no accelerator has timed it yet, and ``auto`` picks only what a measurement says wins. Grouped
  convolutions everywhere: ``xla`` (not measured).
* CPU, stride 1, undilated, a 3x3 to 5x5 kernel, at least ``WINOGRAD_MIN_CHANNELS`` input and
  output channels: ``winograd`` (:mod:`jaxconv.impls.winograd`). On the nine such layers measured
  (16-128 channels, 8x8 to 64x64) it ran forward+backward 1.15-3x faster than the best other
  hand-written impl, except 16->16 on 56x56 (1.03x, where ``xla`` itself was fastest). With 1-6
  input channels its transforms cost more than the products they save (1.2-4x slower than banded).
* CPU, few output channels: ``banded``. A band tile of ``T`` output columns reading ``span``
  input columns (:func:`jaxconv.impls.band.band_tile`) copies ``T * kw - span`` fewer input columns than
  im2col's ``T`` patches, and multiplies by zero ``T * O * (span - kw)`` more times. Where the zeros
  per column saved are at most ``BAND_ZEROS_PER_SAVED_COPY`` the band wins: LeNet's two layers (9
  and 20) and a 3->16 5x5 layer on 32x32 (24) ran 1.1-3.7x faster than im2col forward+backward;
  3x3 layers with 32-64 output channels (64, 128) and the book's 100-channel layer (150) ran
  1.1-1.5x slower. Those were measured with tiles of 6 columns on the 5x5 layers. ``band_tile`` now
  prefers tiles that divide the row (4 there), which puts the 5x5 layers at 6, 16 and 100: the same
  picks.
* CPU otherwise (strided, 1x1, larger kernels): ``im2col``, one big matmul, 1.1-9x faster
  forward+backward than XLA's CPU convolution, whose backward pass is slow, on every shape measured
  (contractions of 75 to 2,500);
  unless the patch matrix would exceed ``MAX_PATCH_BYTES``: then ``xla``, which never
  materialises it.

Pooling on CPU: windows that tile the input (``stride == window``, LeNet's 2x2/2) use ``shift_add``,
reduced as a reshape, whose gradient is a broadcast; overlapping windows use ``xla``.
Pass an explicit ``impl`` to override; :func:`conv_impl` shows what ``auto`` would pick on a backend.
The pick is made for the platform a computation is lowered for, not for the host that traced it
(``lax.platform_dependent``): a step exported for CUDA from a CPU host runs XLA's convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

from jaxconv.impls.band import band_span, band_tile
from jaxconv.impls.winograd import MAX_TAPS, TILE

WINOGRAD_MIN_CHANNELS = 16
BAND_ZEROS_PER_SAVED_COPY = 40
MAX_BAND_BYTES = 64 << 20
MAX_PATCH_BYTES = 2 << 30


def conv_impl(
    backend: str, *, x_shape: Sequence[int], out_channels: int, kernel: Sequence[int], groups: int,
    itemsize: int = 4, output_hw: Sequence[int] | None = None, stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
) -> str:  # fmt: skip
    """The implementation ``impl="auto"`` runs for a convolution.

    Args:
      backend: the backend the pick is for, ``"cpu"``, ``"gpu"`` or ``"tpu"``. ``impl="auto"`` asks for
        each platform a computation may be lowered for and lets the lowering choose
        (:func:`jaxconv.impls.per_platform`), so a GPU program gets the GPU pick even when traced on a CPU.
      x_shape: the batched input ``(N, C, H, W)`` (NCHW order whatever the layout).
      out_channels, kernel, groups: the layer's.
      itemsize: bytes per element of the input dtype.
      output_hw: ``(OH, OW)`` if known (default: ``(H, W)``, an upper bound for the patch size).
      stride, dilation: ``(along H, along W)``. Winograd needs both 1 on both axes; the band runs
        along rows, so its cost depends on the width's.

    Examples:
      >>> conv_impl("cpu", x_shape=(256, 1, 28, 28), out_channels=6, kernel=(5, 5), groups=1)
      'banded'
      >>> conv_impl("cpu", x_shape=(256, 6, 14, 14), out_channels=16, kernel=(5, 5), groups=1)
      'banded'
      >>> conv_impl("cpu", x_shape=(32, 64, 56, 56), out_channels=64, kernel=(3, 3), groups=1)
      'winograd'
      >>> conv_impl("cpu", x_shape=(32, 64, 56, 56), out_channels=64, kernel=(3, 3), groups=1,
      ...           output_hw=(28, 28), stride=(2, 2))
      'im2col'
      >>> conv_impl("gpu", x_shape=(256, 6, 14, 14), out_channels=16, kernel=(5, 5), groups=1)
      'xla'
    """
    for name, pair in (("stride", stride), ("dilation", dilation)):
        if not isinstance(pair, Sequence):
            raise TypeError(f"conv_impl: {name} must be an (H, W) pair, got {type(pair).__name__} {pair!r}")
        if len(pair) != 2:
            raise ValueError(f"conv_impl: {name} must be an (H, W) pair, got {tuple(pair)}")
    if backend != "cpu" or groups != 1:
        return "xla"
    n, c, h, w = x_shape
    kh, kw = kernel
    oh, ow = output_hw if output_hw is not None else (h, w)
    if (
        tuple(stride) == tuple(dilation) == (1, 1)
        and 3 <= min(kh, kw) <= max(kh, kw) <= MAX_TAPS
        and min(c, out_channels) >= WINOGRAD_MIN_CHANNELS
        and winograd_tile_bytes(n, c, (oh, ow), (kh, kw), itemsize) <= MAX_PATCH_BYTES
    ):
        return "winograd"
    sw, dw = stride[1], dilation[1]
    if band_zeros_per_saved_copy(ow, kw, out_channels, sw, dw) <= BAND_ZEROS_PER_SAVED_COPY:
        tile = band_tile(ow, kw, sw, dw)
        span = band_span(tile, kw, sw, dw)
        if kh * span * c * tile * out_channels * itemsize <= MAX_BAND_BYTES:
            return "banded"
    if n * oh * ow * c * kh * kw * itemsize <= MAX_PATCH_BYTES:
        return "im2col"
    return "xla"


def winograd_tile_bytes(
    n: int, c: int, output_hw: Sequence[int], kernel: Sequence[int], itemsize: int = 4
) -> int:
    """Bytes of Winograd's transformed input tiles, ``(ah * aw, N * tiles, C)``.

    Examples:
      >>> winograd_tile_bytes(32, 64, (56, 56), (3, 3)) / (32 * 64 * 56 * 56 * 4)  # vs the input
      2.25
    """
    tiles = [-(-o // TILE) for o in output_hw]
    transformed = [TILE + k - 1 for k in kernel]
    return transformed[0] * transformed[1] * n * tiles[0] * tiles[1] * c * itemsize


def band_zeros_per_saved_copy(out_width: int, kw: int, out_channels: int, stride: int = 1,
                              dilation: int = 1) -> float:  # fmt: skip
    """Multiplications by zero the band adds per input column it saves copying, against im2col
    (per kernel row and input channel; ``inf`` where it saves none, e.g. a 1x1 kernel).

    Examples:
      >>> band_zeros_per_saved_copy(28, 5, 6)  # LeNet's first layer: tiles of 4 reading 8 columns
      6.0
      >>> band_zeros_per_saved_copy(56, 3, 64)  # a ResNet layer
      128.0
    """
    tile = band_tile(out_width, kw, stride, dilation)
    span = band_span(tile, kw, stride, dilation)
    saved = tile * kw - span
    return tile * out_channels * (span - kw) / saved if saved > 0 else float("inf")


def pool_impl(backend: str, *, input_hw: Sequence[int], window: Sequence[int], stride: Sequence[int],
              pads: Sequence[Sequence[int]], dilation: Sequence[int] = (1, 1)) -> str:  # fmt: skip
    """The implementation ``impl="auto"`` runs for pooling (unpadded ``input_hw``, canonical pairs).

    A dilated window pools by ``shift_add`` everywhere: JAX has no gradient for a dilated
    ``reduce_window`` max, and the taps have one.

    Examples:
      >>> pool_impl("cpu", input_hw=(28, 28), window=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0)))
      'shift_add'
      >>> pool_impl("cpu", input_hw=(28, 28), window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)))
      'xla'
    """
    if tuple(dilation) != (1, 1):
        return "shift_add"
    tiles = all(
        k == s and (n + lo + hi) % k == 0
        for n, k, s, (lo, hi) in zip(input_hw, window, stride, pads, strict=True)
    )
    return "shift_add" if backend == "cpu" and tiles else "xla"
