"""``conv_general_dilated``: jaxconv's convolutions behind ``jax.lax.conv_general_dilated``'s signature.

A drop-in for any model that calls ``lax.conv_general_dilated`` or takes a function with its
signature (``flax.nnx.Conv(..., conv_general_dilated=...)``, ``flax.linen.Conv(...,
conv_general_dilated=...)``). It translates lax's conventions into the cores' (dimension numbers to
a layout and transposes, padding strings to explicit pads, input dilation to a spread input) and
dispatches to :mod:`jaxconv.impls`; the convolution itself is the chosen impl's.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv import impls
from jaxconv._checks import Pair, check_choice, check_int, check_same_dtype, to_pair
from jaxconv.impls import IMPL_CHOICES
from jaxconv.impls.xla import conv_general_dilated_lax, conv_transpose_lax
from jaxconv.shapes import effective_kernel
from jaxconv.spec import ConvSpec

_FN = "conv_general_dilated"


def _explicit_pads(padding: object) -> tuple[Pair, Pair]:
    """``((lo, hi), (lo, hi))`` ints (negative crops, as in lax) from a sequence of two pairs."""
    try:
        pairs = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)  # type: ignore[union-attr]
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{_FN}: padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of (low, high) pairs, "
            f"got {padding!r}"
        ) from e
    if len(pairs) != 2:
        raise ValueError(f"{_FN}: padding needs 2 (low, high) pairs for a 2-D convolution, got {padding!r}")
    return (pairs[0], pairs[1])


def _simple_precision(precision: object) -> tuple[bool, lax.Precision | None]:
    """``(True, p)`` for a precision jaxconv's cores take (None, a ``lax.Precision``, its names, or a
    pair of one precision); ``(False, None)`` for the rest (unequal pairs, dot algorithms)."""
    if precision is None or isinstance(precision, lax.Precision):
        return True, precision
    if isinstance(precision, str):
        try:
            return True, lax.Precision(precision)
        except ValueError as e:
            raise ValueError(f"{_FN}: precision {precision!r} is not a jax.lax.Precision name") from e
    if isinstance(precision, tuple | list) and len(precision) == 2:
        (ok_a, a), (ok_b, b) = _simple_precision(precision[0]), _simple_precision(precision[1])
        if ok_a and ok_b and a == b:
            return True, a
    return False, None


def _lax_only(lhs: Any, rhs: Any, batch_group_count: object, precision: object,
              preferred_element_type: Any, out_sharding: object) -> str | None:  # fmt: skip
    """Why this call is lax's alone (jaxconv's cores are 2-D, floating point, ungrouped over the batch),
    or None."""
    if not isinstance(lhs, jax.Array | np.ndarray) or not isinstance(rhs, jax.Array | np.ndarray):
        return None  # refused below, with jaxconv's message
    if lhs.ndim != 4 or rhs.ndim != 4:
        shapes = f"lhs: {tuple(lhs.shape)}, rhs: {tuple(rhs.shape)}"
        return f"{lhs.ndim - 2}-D convolutions ({shapes}); jaxconv's are 2-D"
    if batch_group_count != 1:
        return f"batch_group_count={batch_group_count!r}"
    if not (jnp.issubdtype(lhs.dtype, jnp.floating) and jnp.issubdtype(rhs.dtype, jnp.floating)):
        return f"non-floating dtypes (lhs: {lhs.dtype}, rhs: {rhs.dtype})"
    if not _simple_precision(precision)[0]:
        return f"precision={precision!r} (jaxconv's cores take one lax.Precision for both operands)"
    if preferred_element_type is not None and not jnp.issubdtype(preferred_element_type, jnp.floating):
        return f"preferred_element_type={preferred_element_type!r}"
    if out_sharding is not None:
        return f"out_sharding={out_sharding!r}"
    return None


def _goes_to_lax(impl: str, lhs: Any, rhs: Any, batch_group_count: object, precision: object,
                 preferred_element_type: Any, out_sharding: object) -> bool:  # fmt: skip
    """Whether lax runs the call: ``impl="xla"``, or ``"auto"`` for what jaxconv's cores do not do (which
    a hand-written impl refuses)."""
    arrays = isinstance(lhs, jax.Array | np.ndarray) and isinstance(rhs, jax.Array | np.ndarray)
    if arrays and lhs.ndim != rhs.ndim and impl not in ("xla", "auto"):  # those raise lax's own error
        raise ValueError(
            f"{_FN}: lhs and rhs must have one rank, got lhs: {tuple(lhs.shape)}, rhs: {tuple(rhs.shape)}"
        )
    why = _lax_only(lhs, rhs, batch_group_count, precision, preferred_element_type, out_sharding)
    if why is not None and impl not in ("xla", "auto"):
        raise ValueError(
            f"{_FN}: impl={impl!r} does not do {why}; impl='auto' or 'xla' hands such a call to lax"
        )
    return impl == "xla" or why is not None


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def _transpose(x: jax.Array, perm: Sequence[int]) -> jax.Array:
    return x if tuple(perm) == tuple(range(x.ndim)) else x.transpose(perm)


def conv_general_dilated(
    lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
    precision: Any = None, preferred_element_type: Any = None, out_sharding: Any = None, *,
    impl: str = "auto",
) -> jax.Array:  # fmt: skip
    """``jax.lax.conv_general_dilated`` through a jaxconv implementation.

    Takes exactly ``lax.conv_general_dilated``'s arguments, with its meanings and defaults, plus
    ``impl``. Hand ``functools.partial(jc.conv_general_dilated, impl="banded")`` to Flax's
    ``nnx.Conv(..., conv_general_dilated=...)`` or Linen's ``nn.Conv(..., conv_general_dilated=...)``,
    or call it where a model calls lax.

    Args:
      lhs: the input, rank 4 (two spatial dimensions), laid out as ``dimension_numbers`` says.
      rhs: the kernel, rank 4, the same floating dtype.
      window_strides: two ints >= 1, in the kernel's spatial order (as lax).
      padding: ``"SAME"``, ``"SAME_LOWER"``, ``"VALID"``, or two ``(low, high)`` pairs (negative
        values crop, as in lax).
      lhs_dilation: two ints >= 1 or None: input dilation, i.e. a transposed convolution; only with
        explicit padding (as lax).
      rhs_dilation: two ints >= 1 or None: kernel dilation.
      dimension_numbers: None (``("NCHW", "OIHW", "NCHW")``), three layout strings in any
        permutation, or a ``lax.ConvDimensionNumbers``.
      feature_group_count: groups; the input's channels are ``feature_group_count`` times the
        kernel's input channels.
      batch_group_count, out_sharding: lax's; anything but 1 and None goes to lax (below).
      precision: None, a ``lax.Precision`` or its name, or a pair of one precision.
      preferred_element_type: None (the input dtype) or a floating dtype for the result.
      impl: ``"auto"`` (default), ``"xla"`` (``lax.conv_general_dilated`` itself) or any other name in
        :data:`jaxconv.IMPLS`, as :func:`jaxconv.conv2d`.

    With ``impl="auto"``, what jaxconv's cores do not do runs through lax unchanged: 1-D and 3-D
    convolutions, ``batch_group_count != 1``, integer dtypes, pairs of unequal precisions or dot
    algorithms, an integer ``preferred_element_type``, and ``out_sharding``. A hand-written impl
    named for such a call raises ``ValueError`` saying what it does not do.

    Returns:
      lax's result: the shape and layout ``dimension_numbers``' output spec gives, in
      ``preferred_element_type`` (default: the input dtype). An empty input or output (a zero-size axis,
      or a window larger than the padded input) gives lax's shape filled with zeros under every impl.

    Raises:
      ValueError, TypeError: with ``impl="auto"`` or ``"xla"``, for a call lax refuses, lax's own error (code
        and tests written against lax see the same). With a hand-written impl, jaxconv's: an unknown
        ``impl``; shapes or ``dimension_numbers`` that do not fit; channel and group mismatch; a bad padding,
        stride or dilation; a crop larger than the input; what only lax does (``ValueError``);
        non-array or mixed-dtype operands (``TypeError``).

    Examples:
      >>> x, k = jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 4))
      >>> dn = ("NHWC", "HWIO", "NHWC")
      >>> y = jc.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn, impl="banded")
      >>> y.shape, float(y[0, 0, 0, 0]), float(y[0, 4, 4, 0])
      ((1, 8, 8, 4), 12.0, 27.0)
      >>> bool((y == jc.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn, impl="xla")).all())
      True
    """
    impl = check_choice(_FN, "impl", impl, IMPL_CHOICES)
    lax_call = partial(
        conv_general_dilated_lax, window_strides=window_strides, padding=padding,
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type,
        **({} if out_sharding is None else {"out_sharding": out_sharding}),
    )  # fmt: skip
    if _goes_to_lax(impl, lhs, rhs, batch_group_count, precision, preferred_element_type, out_sharding):
        return lax_call(lhs, rhs)
    if impl == "auto" and isinstance(lhs, jax.Array | np.ndarray) and isinstance(rhs, jax.Array | np.ndarray):
        jax.eval_shape(lax_call, lhs, rhs)  # a call lax refuses raises lax's own error, as under impl="xla"
    x, w, spec, out_perm = _canonical(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
        preferred_element_type,
    )  # fmt: skip
    if spec is None:  # an empty input or output: lax's shape, and zeros (every sum there has no term)
        out = jax.eval_shape(lax_call, lhs, rhs)
        return jnp.zeros(out.shape, out.dtype)
    y = impls.conv(impl, x, w, None, spec, precision=_simple_precision(precision)[1])
    out_dtype = x.dtype if preferred_element_type is None else jnp.dtype(preferred_element_type)
    return _transpose(y, out_perm).astype(out_dtype)


def _canonical(
    lhs: Any, rhs: Any, window_strides: Any, padding: Any, lhs_dilation: Any, rhs_dilation: Any,
    dimension_numbers: Any, feature_group_count: Any, preferred_element_type: Any,
) -> tuple[jax.Array, jax.Array, ConvSpec | None, tuple[int, ...]]:  # fmt: skip
    """Validates a call jaxconv's cores run and translates lax's conventions into theirs: the operands
    transposed to NCHW/OIHW (when the input is NCHW) or NHWC/HWIO, in the result's dtype where that is
    wider; the call's description (None where the input or the output is empty); and the permutation that
    lays the core's output out as lax would."""
    for name, value in (("lhs", lhs), ("rhs", rhs)):
        if not isinstance(value, jax.Array | np.ndarray):
            raise TypeError(f"{_FN}: {name} must be a jax or numpy array, got {type(value).__name__}")
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    check_same_dtype(_FN, lhs=lhs, rhs=rhs)
    shapes = f"(lhs: {tuple(lhs.shape)}, rhs: {tuple(rhs.shape)}, dimension_numbers: {dimension_numbers!r})"
    try:
        lhs_perm, rhs_perm, out_perm = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{_FN}: dimension_numbers do not fit the operands {shapes}: {e}") from e
    groups = check_int(_FN, "feature_group_count", feature_group_count, minimum=1)
    strides, in_dilation, dilation = (
        to_pair(_FN, name, (1, 1) if value is None else value, 1, pairs_only=True)
        for name, value in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                            ("rhs_dilation", rhs_dilation))
    )  # fmt: skip
    c, o, c_per_group = lhs.shape[lhs_perm[1]], rhs.shape[rhs_perm[0]], rhs.shape[rhs_perm[1]]
    if c != c_per_group * groups or o % groups:
        raise ValueError(
            f"{_FN}: lhs has {c} feature channels and rhs {c_per_group} input and {o} output channels; "
            f"with feature_group_count={groups} they need {c_per_group * groups} and a multiple of {groups} "
            f"{shapes}"
        )
    kernel = (rhs.shape[rhs_perm[2]], rhs.shape[rhs_perm[3]])
    input_hw = (lhs.shape[lhs_perm[2]], lhs.shape[lhs_perm[3]])
    if isinstance(padding, str):
        if in_dilation != (1, 1):
            raise ValueError(
                f"{_FN}: string padding {padding!r} with lhs_dilation {in_dilation} is not defined: "
                "pass explicit pads (as lax)"
            )
        try:
            low_high = lax.padtype_to_pads(input_hw, effective_kernel(kernel, dilation), strides, padding)
        except (RuntimeError, TypeError, ValueError) as e:
            raise ValueError(
                f"{_FN}: padding must be 'SAME', 'SAME_LOWER', 'VALID' or (low, high) pairs, got {padding!r}"
            ) from e
        pads = ((low_high[0][0], low_high[0][1]), (low_high[1][0], low_high[1][1]))
    else:
        pads = _explicit_pads(padding)
    # lax's sizes: an empty axis stays empty when spread; a window larger than the padded input gives an
    # empty output, not an error.
    spread_hw = tuple(max(0, (n - 1) * d + 1) for n, d in zip(input_hw, in_dilation, strict=True))
    padded_hw = tuple(n + lo + hi for n, (lo, hi) in zip(spread_hw, pads, strict=True))
    if min(padded_hw) < 0:
        raise ValueError(
            f"{_FN}: negative padding {pads} crops more than the input's spatial size {spread_hw} {shapes}"
        )
    extent = effective_kernel(kernel, dilation)
    empty = lhs.size == 0 or rhs.size == 0 or any(p < k for p, k in zip(padded_hw, extent, strict=True))

    # The cores take NCHW/OIHW or NHWC/HWIO: the input's own layout where it is NCHW, else NHWC.
    layout = "NCHW" if tuple(lhs_perm) == (0, 1, 2, 3) else "NHWC"
    to_layout = (lambda p: p) if layout == "NCHW" else (lambda p: (p[0], p[2], p[3], p[1]))
    x = _transpose(lhs, to_layout(lhs_perm))
    w = _transpose(
        rhs, rhs_perm if layout == "NCHW" else (rhs_perm[2], rhs_perm[3], rhs_perm[1], rhs_perm[0])
    )
    out_dtype = lhs.dtype if preferred_element_type is None else jnp.dtype(preferred_element_type)
    if out_dtype.itemsize > x.dtype.itemsize:
        # A wider result: compute in it (products of the narrower inputs are exact there, as in lax).
        x, w = x.astype(out_dtype), w.astype(out_dtype)
    if empty:
        return x, w, None, _inverse(to_layout(out_perm))
    spec = ConvSpec(
        batch=lhs.shape[lhs_perm[0]], in_channels=c, out_channels=o, input_hw=input_hw, kernel=kernel,
        stride=strides, pads=pads, dilation=dilation, input_dilation=in_dilation, groups=groups,
        layout=layout, dtype=x.dtype.name,
    )  # fmt: skip
    return x, w, spec, _inverse(to_layout(out_perm))


def _transpose_padding(k: int, s: int, padding: str | tuple[int, int]) -> tuple[int, int]:
    """``lax.conv_transpose``'s padding of the spread input along one axis, for kernel extent ``k`` and
    stride ``s``: ``padding`` names the forward convolution's padding (a string, or a pair with
    ``use_consistent_padding``)."""
    if padding == "SAME":
        total = k + s - 2
        low = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total, low = k + s - 2 + max(k - s, 0), k - 1
    else:
        assert isinstance(padding, tuple)
        low, high = (k - p - 1 for p in padding)
        total = low + high
    return low, total - low


def conv_transpose(
    lhs: jax.Array, rhs: jax.Array, strides: Sequence[int], padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int] | None = None, dimension_numbers: Any = None, transpose_kernel: bool = False,
    precision: Any = None, preferred_element_type: Any = None, use_consistent_padding: bool = False, *,
    impl: str = "auto",
) -> jax.Array:  # fmt: skip
    """``jax.lax.conv_transpose`` through a jaxconv implementation: its arguments, meanings and defaults
    (``dimension_numbers`` default to ``("NHWC", "HWIO", "NHWC")``, the kernel is not flipped unless
    ``transpose_kernel``), plus ``impl`` as :func:`conv_general_dilated`.

    The call becomes lax's own: :func:`conv_general_dilated` with ``lhs_dilation=strides`` and the
    padding lax computes, which jaxconv runs as ordinary convolutions of the phases of the un-spread input
    (:mod:`jaxconv.impls.phases`), so no product meets an inserted zero. ``impl="xla"`` is
    ``lax.conv_transpose`` itself; under ``"auto"`` a call lax refuses raises lax's error.

    Examples:
      >>> x, k = jnp.ones((1, 4, 4, 3)), jnp.ones((2, 2, 3, 5))
      >>> y = jc.conv_transpose(x, k, (2, 2), "SAME")
      >>> y.shape, bool((y == jc.conv_transpose(x, k, (2, 2), "SAME", impl="xla")).all())
      ((1, 8, 8, 5), True)
    """
    fn = "conv_transpose"
    impl = check_choice(fn, "impl", impl, IMPL_CHOICES)
    lax_call = partial(
        conv_transpose_lax, strides=strides, padding=padding, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers, transpose_kernel=transpose_kernel, precision=precision,
        preferred_element_type=preferred_element_type, use_consistent_padding=use_consistent_padding,
    )  # fmt: skip
    arrays = isinstance(lhs, jax.Array | np.ndarray) and isinstance(rhs, jax.Array | np.ndarray)
    if impl == "xla" or (impl == "auto" and arrays and (lhs.ndim != 4 or rhs.ndim != 4)):
        return lax_call(lhs, rhs)
    if impl == "auto" and arrays:
        jax.eval_shape(lax_call, lhs, rhs)  # a call lax refuses raises lax's own error
    if not arrays:
        raise TypeError(f"{fn}: lhs and rhs must be jax or numpy arrays, got {type(lhs).__name__}, "
                        f"{type(rhs).__name__}")  # fmt: skip
    if lhs.ndim != 4 or rhs.ndim != 4:
        raise ValueError(f"{fn}: impl={impl!r} does 2-D convolutions, got lhs {lhs.shape}, rhs {rhs.shape}")
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    dimension_numbers = ("NHWC", "HWIO", "NHWC") if dimension_numbers is None else dimension_numbers
    try:
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{fn}: dimension_numbers {dimension_numbers!r} do not fit lhs {lhs.shape}, "
                         f"rhs {rhs.shape}: {e}") from e  # fmt: skip
    strides = to_pair(fn, "strides", strides, 1, pairs_only=True)
    dilation = to_pair(
        fn, "rhs_dilation", (1, 1) if rhs_dilation is None else rhs_dilation, 1, pairs_only=True
    )
    extent = effective_kernel((rhs.shape[dn.rhs_spec[2]], rhs.shape[dn.rhs_spec[3]]), dilation)
    if isinstance(padding, str) or use_consistent_padding:
        if isinstance(padding, str) and padding not in ("SAME", "VALID"):
            raise ValueError(f"{fn}: padding must be 'SAME', 'VALID' or (low, high) pairs, got {padding!r}")
        forward = [padding] * 2 if isinstance(padding, str) else list(_explicit_pads(padding))
        pads = tuple(_transpose_padding(k, s, p) for k, s, p in zip(extent, strides, forward, strict=True))
    else:
        pads = _explicit_pads(padding)
    if transpose_kernel:  # flip the spatial axes and swap the channel axes, as lax
        rhs = jnp.flip(rhs, axis=(dn.rhs_spec[2], dn.rhs_spec[3])).swapaxes(dn.rhs_spec[0], dn.rhs_spec[1])
    return conv_general_dilated(
        lhs, rhs, (1, 1), pads, strides, dilation, dn, precision=precision,
        preferred_element_type=preferred_element_type, impl=impl,
    )  # fmt: skip
