"""Translating conventions: PyTorch and Flax hyper-parameters, kernels and checkpoints to jaxconv.

jaxconv's options mean what PyTorch's mean, so PyTorch translates almost one to one; Flax differs in
its defaults (``padding="SAME"``, pooling ``strides=1``), its layout (NHWC, HWIO kernels) and its
padding forms. The functions here return keyword arguments for :func:`jaxconv.conv2d` /
``nn.Conv2D`` and the pooling ops, convert kernels between OIHW and HWIO, turn ``"SAME"`` into
explicit ``(low, high)`` pads for a given input size and back, and read a PyTorch ``state_dict``
of the book's LeNet (a ``torch.save`` file) into :class:`jaxconv.nn.LeNet` parameters without
importing torch. A Flax default that changes the numbers a PyTorch user expects raises a warning.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxconv._checks import PadPairs, Pair, to_pair
from jaxconv.shapes import effective_kernel, resolve_padding


class ConventionWarning(UserWarning):
    """A Flax default differs from PyTorch's and changes the result."""


def oihw_to_hwio(kernel: Any) -> Any:
    """PyTorch's ``(O, I, kh, kw)`` kernel as Flax's ``(kh, kw, I, O)`` (numpy or jax array)."""
    if kernel.ndim != 4:
        raise ValueError(f"oihw_to_hwio: kernel must have 4 dimensions, got shape {tuple(kernel.shape)}")
    return kernel.transpose(2, 3, 1, 0)


def hwio_to_oihw(kernel: Any) -> Any:
    """Flax's ``(kh, kw, I, O)`` kernel as PyTorch's ``(O, I, kh, kw)``."""
    if kernel.ndim != 4:
        raise ValueError(f"hwio_to_oihw: kernel must have 4 dimensions, got shape {tuple(kernel.shape)}")
    return kernel.transpose(3, 2, 0, 1)


def explicit_padding(
    padding: Any,
    input_hw: int | Pair,
    kernel_size: int | Pair,
    *,
    stride: int | Pair = 1,
    dilation: int | Pair = 1,
) -> PadPairs:
    """Any padding form (int, pair, pairs, ``"same"``, ``"valid"``) as ``((top, bottom), (left, right))``
    for this input size: what ``lax.conv_general_dilated`` takes.

    Examples:
      >>> explicit_padding("same", 28, 5)
      ((2, 2), (2, 2))
      >>> explicit_padding("SAME", 8, 3, stride=2)  # an odd total: the extra row goes last
      ((0, 1), (0, 1))
    """
    fn = "explicit_padding"
    hw = to_pair(fn, "input_hw", input_hw, minimum=1)
    k = effective_kernel(
        to_pair(fn, "kernel_size", kernel_size, minimum=1), to_pair(fn, "dilation", dilation, 1)
    )
    return resolve_padding(fn, padding, hw, k, to_pair(fn, "stride", stride, minimum=1))


def padding_for_torch(pads: Sequence[Sequence[int]]) -> int | Pair | str:
    """Explicit pads as the simplest form ``torch.nn.Conv2d(padding=...)`` accepts.

    Symmetric pads become an int or pair; asymmetric ones (e.g. ``"SAME"`` with an even kernel or
    a stride) cannot be said in ``Conv2d``: pad the input with ``F.pad`` first. Raises ValueError.

    Examples:
      >>> padding_for_torch(((2, 2), (2, 2)))
      2
      >>> padding_for_torch(((1, 1), (0, 0)))
      (1, 0)
    """
    (top, bottom), (left, right) = pads
    if top != bottom or left != right:
        raise ValueError(
            f"padding_for_torch: pads {tuple(map(tuple, pads))} are asymmetric; torch.nn.Conv2d pads both "
            f"sides alike: apply F.pad(x, ({left}, {right}, {top}, {bottom})) first and use padding=0"
        )
    return top if top == left else (top, left)


def from_torch_conv2d(
    in_channels: int, out_channels: int, kernel_size: int | Pair, stride: int | Pair = 1,
    padding: int | Pair | str = 0, dilation: int | Pair = 1, groups: int = 1, bias: bool = True,
    padding_mode: str = "zeros",
) -> dict[str, Any]:  # fmt: skip
    """``torch.nn.Conv2d(...)``'s arguments as ``jaxconv.nn.Conv2D(**kwargs)``'s (NCHW, same meaning).

    Examples:
      >>> from_torch_conv2d(1, 6, kernel_size=5, padding=2)["padding"]
      2
    """
    if (
        isinstance(padding, str)
        and padding.lower() == "same"
        and to_pair("from_torch_conv2d", "stride", stride, 1) != (1, 1)
    ):
        raise ValueError(
            "from_torch_conv2d: PyTorch refuses padding='same' with stride > 1, so no such layer exists"
        )
    del in_channels  # Conv2D infers it from its input
    return dict(features=out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation, groups=groups, use_bias=bias, padding_mode=padding_mode,
                layout="NCHW")  # fmt: skip


_UNSET: Any = object()


def from_flax_conv(
    features: int, kernel_size: Sequence[int], strides: int | Sequence[int] | None = 1, padding: Any = _UNSET,
    kernel_dilation: int | Sequence[int] | None = 1, feature_group_count: int = 1, use_bias: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """``flax.linen.Conv(...)``'s arguments as ``jaxconv.nn.Conv2D(**kwargs)``'s (NHWC, HWIO kernel).

    Flax's default padding is ``"SAME"`` while PyTorch's (and jaxconv's) is 0: leaving ``padding``
    out keeps Flax's meaning and warns, since a PyTorch user's numbers would change. Flax's
    ``"CIRCULAR"`` becomes ``padding="same", padding_mode="circular"``.
    """
    if padding is _UNSET:
        warnings.warn(
            "from_flax_conv: Flax pads 'SAME' by default, PyTorch and jaxconv pad 0; keeping 'same'. "
            "Pass padding= explicitly to silence this.",
            ConventionWarning,
            stacklevel=2,
        )
        padding = "SAME"
    mode = "zeros"
    if isinstance(padding, str) and padding.upper() == "CIRCULAR":
        padding, mode = "same", "circular"
    elif isinstance(padding, Sequence) and not isinstance(padding, str):
        padding = tuple(tuple(p) if isinstance(p, Sequence) else (p, p) for p in padding)
    return dict(features=features, kernel_size=tuple(kernel_size), stride=1 if strides is None else strides,
                padding=padding.lower() if isinstance(padding, str) else padding,
                dilation=1 if kernel_dilation is None else kernel_dilation, groups=feature_group_count,
                use_bias=use_bias, padding_mode=mode, layout="NHWC")  # fmt: skip


def from_flax_pool(window_shape: Sequence[int], strides: Sequence[int] | None = None, padding: Any = "VALID",
                   count_include_pad: bool = True) -> dict[str, Any]:  # fmt: skip
    """``flax.linen.max_pool/avg_pool(x, window_shape, strides, padding)`` as jaxconv pooling kwargs.

    Flax's stride defaults to 1 (overlapping windows), PyTorch's and jaxconv's to the window; a
    missing ``strides`` keeps Flax's 1 and warns.

    Examples:
      >>> from_flax_pool((2, 2), strides=(2, 2))["stride"]
      (2, 2)
    """
    if strides is None:
        warnings.warn(
            "from_flax_pool: Flax pools with stride 1 by default, PyTorch and jaxconv with stride = window; "
            "keeping 1. Pass strides= explicitly to silence this.",
            ConventionWarning,
            stacklevel=2,
        )
        strides = (1, 1)
    return dict(kernel_size=tuple(window_shape), stride=tuple(strides),
                padding=padding.lower() if isinstance(padding, str) else padding,
                count_include_pad=count_include_pad, layout="NHWC")  # fmt: skip


# ---- reading torch.save files without torch ---------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}  # fmt: skip


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], size, [s * item for s in stride]).copy()


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a ``torch.save`` zip's ``data.pkl`` into numpy arrays, refusing any other class."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"read_torch_state_dict: refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        _, dtype, key, _location, numel = pid
        data = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(data, dtype=dtype, count=numel)


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save(model.state_dict(), path)`` file as numpy arrays, without torch.

    Only plain tensors in (ordered) dicts are accepted; anything else is refused rather than executed.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"read_torch_state_dict: {path} is not a torch.save zip file (saved with torch >= 1.6?)"
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"read_torch_state_dict: {path} holds {len(pickles)} data.pkl files, expected 1")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            state = _TorchUnpickler(f, archive, prefix).load()
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"read_torch_state_dict: {path} is not a state_dict of tensors")
    return dict(state)


# nn.Sequential positions of the book's LeNet (d2l 6.6) -> jaxconv.nn.LeNet module names.
BOOK_LENET_LAYERS = {"0": "conv1", "3": "conv2", "7": "fc1", "9": "fc2", "11": "fc3"}


def lenet_params_from_torch(state_dict: dict[str, Any] | str | Path, layout: str = "NCHW") -> dict:
    """The book's PyTorch LeNet ``state_dict`` (or a ``torch.save`` file of it) as
    ``jaxconv.nn.LeNet("classic", layout=layout)`` params: conv kernels kept OIHW (or made HWIO),
    linear weights transposed to Flax's ``(in, out)``. Same logits (a test checks)."""
    state = read_torch_state_dict(state_dict) if isinstance(state_dict, str | Path) else state_dict
    expected = {f"{i}.{p}" for i in BOOK_LENET_LAYERS for p in ("weight", "bias")}
    if set(state) != expected:
        raise ValueError(
            f"lenet_params_from_torch: expected the book's LeNet keys {sorted(expected)}, got {sorted(state)}"
        )
    params: dict = {}
    for index, name in BOOK_LENET_LAYERS.items():
        weight, bias = (np.asarray(state[f"{index}.{p}"], np.float32) for p in ("weight", "bias"))
        if name.startswith("conv"):
            kernel = weight if layout == "NCHW" else oihw_to_hwio(weight)
        else:
            kernel = weight.T
        params[name] = {"kernel": kernel, "bias": bias}
    return params
