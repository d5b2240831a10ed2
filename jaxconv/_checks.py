"""Argument checks shared by every jaxconv op.

Each helper raises ``ValueError`` for a bad value or shape and ``TypeError`` for a wrong kind of
object, with a message naming the calling function and the argument, so a user sees
``conv2d: stride must be >= 1, got (0, 1)`` rather than an XLA shape error three frames deep.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Pair = tuple[int, int]
PadPairs = tuple[Pair, Pair]
# What the cores accept as lax's ``precision=``: None (the backend's default) or a lax.Precision.
Precision = lax.Precision | None
PRECISIONS = {
    None: None,
    "default": lax.Precision.DEFAULT,
    "high": lax.Precision.HIGH,
    "highest": lax.Precision.HIGHEST,
}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

LAYOUTS = ("NCHW", "NHWC")


def is_int(value: object) -> bool:
    # bool is an int subclass but never a sensible size.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_array(fn: str, name: str, value: object, ndims: Sequence[int]) -> jax.Array:
    """Checks that ``value`` is a floating-point array with one of ``ndims`` dimensions.

    Returns it as a ``jax.Array`` (NumPy arrays are accepted, lists are not: like ``jnp``'s own
    reductions we refuse to guess a dtype from Python numbers).
    """
    if not isinstance(value, jax.Array | np.ndarray):
        raise TypeError(f"{fn}: {name} must be a jax or numpy array, got {type(value).__name__}")
    if value.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{fn}: {name} must have {want} dimensions, got shape {tuple(value.shape)}")
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must have a floating-point dtype, got {value.dtype} "
            f"(cast with .astype(jnp.float32))"
        )
    return jnp.asarray(value)


def accumulation_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """Half-precision inputs accumulate in float32, as XLA's own convolution does on CPU."""
    return jnp.dtype(jnp.float32) if jnp.dtype(dtype).itemsize < 4 else jnp.dtype(dtype)


def check_conv_operands(
    fn: str, x: object, weight: object, bias: object
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """``x`` with 3 or 4 dimensions, a 4-D ``weight`` and an optional 1-D ``bias``, of one floating dtype."""
    x = check_array(fn, "x", x, (3, 4))
    weight = check_array(fn, "weight", weight, (4,))
    if bias is not None:
        bias = check_array(fn, "bias", bias, (1,))
    check_same_dtype(fn, x=x, weight=weight, bias=bias)  # type: ignore[arg-type]
    return x, weight, bias  # type: ignore[return-value]


def check_same_dtype(fn: str, **arrays: jax.Array | None) -> None:
    """Refuses mixed dtypes instead of promoting them silently."""
    present = {name: a.dtype for name, a in arrays.items() if a is not None}
    if len(set(present.values())) > 1:
        listed = ", ".join(f"{name}: {dtype}" for name, dtype in present.items())
        raise TypeError(f"{fn}: arrays must share one dtype, got {listed}")


def check_choice(fn: str, name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{fn}: {name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_int(fn: str, name: str, value: object, minimum: int) -> int:
    if not is_int(value):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    if value < minimum:  # type: ignore[operator]
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return int(value)  # type: ignore[arg-type]


def to_pair(fn: str, name: str, value: object, minimum: int, *, pairs_only: bool = False) -> Pair:
    """Canonicalises an int or a pair of ints (each ``>= minimum``) to a pair. ``pairs_only``: as lax
    takes strides and dilations, a sequence of two (an int, or another length, is a ``ValueError``)."""
    if pairs_only and (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2):
        raise ValueError(f"{fn}: {name} must be a pair of ints for a 2-D convolution, got {value!r}")
    if is_int(value):
        pair = (int(value), int(value))  # type: ignore[call-overload]
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(map(is_int, value))
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return pair


def check_precision(fn: str, precision: object) -> Precision:
    """``None``, ``"default"``/``"high"``/``"highest"`` or a ``lax.Precision`` -> a ``lax.Precision`` or None.

    On GPU, ``None``/``"default"`` may run float32 convolutions in TF32 (about 1e-3 relative error);
    ``"highest"`` asks for full float32. CPUs compute float32 at every setting.
    """
    if isinstance(precision, lax.Precision):
        return precision
    if (precision is None or isinstance(precision, str)) and precision in PRECISIONS:
        return PRECISIONS[precision]
    raise ValueError(
        f"{fn}: precision must be None, 'default', 'high', 'highest' or a jax.lax.Precision, "
        f"got {precision!r}"
    )
