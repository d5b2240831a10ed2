"""``impl="auto"``: which convolution and pooling implementation runs for a call on a backend.

The rule, read from a :class:`jaxconv.spec.ConvSpec`; the measurements behind each threshold are in
docs/performance.md ("Why auto picks what it picks") and docs/guide/race.md:

* GPU and TPU: ``xla`` (cuDNN and the TPU convolution emitter are what hand-written code competes
  with there; the Pallas kernel is picked only where a measurement says it wins, and none has yet).
  Grouped convolutions everywhere: ``xla`` (not measured).
* CPU, stride 1, a 2x2 to 5x5 kernel (dilated or not), at least ``WINOGRAD_MIN_CHANNELS`` input and
  output channels: ``winograd``. With fewer channels its transforms cost more than the products they
  save. The 2x2 kernels are a transposed 4x4 stride-2 layer's phases; a dilated kernel ran faster in
  winograd directly than on its phases.
* CPU, a transposed convolution (spread input, unit stride): its phases
  (:func:`jaxconv.impls.phases.transposed`), each picked for by this rule.
* CPU, grouped: :func:`grouped_impl`.
* CPU, few output channels: ``banded``. A band tile of ``T`` output columns reading ``span``
  input columns (:func:`jaxconv.impls.band.band_tile`) copies ``T * kw - span`` fewer input columns than
  im2col's ``T`` patches, and multiplies by zero ``T * O * (span - kw)`` more times; where the zeros
  per column saved are at most ``BAND_ZEROS_PER_SAVED_COPY`` the band wins.
* CPU otherwise (strided, 1x1, larger kernels): ``im2col``, one big matmul (XLA's CPU convolution's
  backward pass is slow), unless the patch matrix would exceed ``MAX_PATCH_BYTES``: then ``xla``,
  which never materialises it.

Pooling on CPU: windows that tile the input (``stride == window``, LeNet's 2x2/2) use ``shift_add``,
reduced as a reshape, whose gradient is a broadcast; overlapping windows use ``xla``.
Pass an explicit ``impl`` to override; :func:`conv_impl` shows what ``auto`` would pick on a backend.
The pick is made for the platform a computation is lowered for, not for the host that traced it
(:mod:`jaxconv.impls.platform`): a step exported for CUDA from a CPU host runs XLA's convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

from jaxconv.impls.band import band_span, band_tile
from jaxconv.impls.stencil import runs_stencil
from jaxconv.impls.winograd import MAX_TAPS, TILE
from jaxconv.spec import ConvSpec, PoolSpec

WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_KERNEL = 2
BAND_ZEROS_PER_SAVED_COPY = 40
MAX_BAND_BYTES = 64 << 20
MAX_PATCH_BYTES = 2 << 30
MAX_SHIFT_ADD_CHANNELS_PER_GROUP = 16


def conv_impl(backend: str, spec: ConvSpec) -> str:
    """The implementation ``impl="auto"`` runs for the convolution ``spec`` describes on ``backend``.

    Args:
      backend: ``"cpu"``, ``"gpu"`` or ``"tpu"``. ``impl="auto"`` asks for each platform a computation may
        be lowered for and lets the lowering choose, so a GPU program gets the GPU pick even when traced
        on a CPU.
      spec: the call, input already spread (``input_dilation`` 1, as :func:`jaxconv.impls.spread` leaves it).

    Examples:
      >>> lenet_conv2 = ConvSpec(batch=256, in_channels=6, out_channels=16, input_hw=(14, 14), kernel=(5, 5))
      >>> conv_impl("cpu", lenet_conv2), conv_impl("gpu", lenet_conv2)
      ('banded', 'xla')
      >>> resnet = ConvSpec(batch=32, in_channels=64, out_channels=64, input_hw=(56, 56), kernel=(3, 3),
      ...                   pads=((1, 1), (1, 1)))
      >>> conv_impl("cpu", resnet), conv_impl("cpu", resnet.replace(stride=(2, 2)))
      ('winograd', 'im2col')
    """
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"conv_impl: spec must be a ConvSpec, got {type(spec).__name__}")
    if backend != "cpu":
        return "xla"
    if spec.groups != 1:
        return grouped_impl(spec)
    n, c, o, itemsize = spec.batch, spec.in_channels, spec.out_channels, spec.itemsize
    (kh, kw), (oh, ow) = spec.kernel, spec.output_hw
    if (
        spec.stride == (1, 1)
        and WINOGRAD_MIN_KERNEL <= min(kh, kw) <= max(kh, kw) <= MAX_TAPS
        and min(c, o) >= WINOGRAD_MIN_CHANNELS
        and winograd_tile_bytes(n, c, (oh, ow), (kh, kw), itemsize) <= MAX_PATCH_BYTES
    ):
        return "winograd"
    sw, dw = spec.stride[1], spec.dilation[1]
    if band_zeros_per_saved_copy(ow, kw, o, sw, dw) <= BAND_ZEROS_PER_SAVED_COPY:
        tile = band_tile(ow, kw, sw, dw)
        span = band_span(tile, kw, sw, dw)
        if kh * span * c * tile * o * itemsize <= MAX_BAND_BYTES:
            return "banded"
    if n * oh * ow * c * kh * kw * itemsize <= MAX_PATCH_BYTES:
        return "im2col"
    return "xla"


def grouped_impl(spec: ConvSpec) -> str:
    """A grouped convolution on CPU: ``stencil`` for depthwise layers and few channels per group
    (:func:`jaxconv.impls.stencil.runs_stencil`),
    ``shift_add``'s product per tap for more, ``xla`` for many (not measured).

    Examples:
      >>> mobilenet = ConvSpec(batch=32, in_channels=144, out_channels=144, input_hw=(56, 56),
      ...                      kernel=(3, 3), pads=((1, 1), (1, 1)), groups=144)
      >>> resnext = mobilenet.replace(in_channels=128, out_channels=128, groups=32)
      >>> grouped_impl(mobilenet), grouped_impl(resnext)
      ('stencil', 'stencil')
    """
    if runs_stencil(spec):
        return "stencil"
    return "shift_add" if spec.in_channels_per_group <= MAX_SHIFT_ADD_CHANNELS_PER_GROUP else "xla"


def describe_pick(backend: str, spec: ConvSpec) -> str:
    """What ``auto`` runs for ``spec`` on ``backend``, in words: an impl's name, or ``"phases: ..."`` with
    the impls of the phases (:mod:`jaxconv.impls.phases`) where it splits the call.

    Examples:
      >>> up = ConvSpec(batch=16, in_channels=128, out_channels=64, input_hw=(32, 32), kernel=(2, 2),
      ...               pads=((1, 1), (1, 1)), input_dilation=(2, 2), transposed=True)
      >>> describe_pick("cpu", up), describe_pick("gpu", up)
      ('phases: im2col', 'xla')
    """
    from jaxconv.impls import phases  # phases is below auto in the registry's imports

    if backend != "cpu" or not phases.transposes_by_phases(spec):
        return conv_impl(backend, spec.spread())
    subs = phases.phase_specs(spec)
    return "phases: " + ", ".join(sorted({describe_pick(backend, sub) for sub in subs}))


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


def pool_impl(backend: str, spec: PoolSpec) -> str:
    """The implementation ``impl="auto"`` runs for the pooling ``spec`` describes on ``backend``.

    On a CPU a max pools by its tap slices (``shift_add``): forward+backward several times faster
    than ``reduce_window`` and its ``select_and_scatter`` gradient; so does an average in ``NHWC``
    or over tiling windows, while an overlapping ``NCHW`` average runs XLA's, whose window needs no
    transposes (docs/performance.md, "Max pooling's gradient"). A dilated window pools by
    ``shift_add`` everywhere: JAX has no gradient for a dilated ``reduce_window`` max.

    Examples:
      >>> lenet_pool = PoolSpec(batch=256, channels=6, input_hw=(28, 28), window=(2, 2), stride=(2, 2))
      >>> pool_impl("cpu", lenet_pool), pool_impl("gpu", lenet_pool)
      ('shift_add', 'xla')
      >>> pool_impl("cpu", lenet_pool.replace(window=(3, 3), pads=((1, 1), (1, 1))))
      'shift_add'
    """
    if not isinstance(spec, PoolSpec):
        raise TypeError(f"pool_impl: spec must be a PoolSpec, got {type(spec).__name__}")
    if spec.dilation != (1, 1):
        return "shift_add"
    if backend != "cpu":
        return "xla"
    return "shift_add" if spec.mode == "max" or spec.layout == "NHWC" or spec.tiles_input else "xla"
