"""Adaptive and global pooling: choose the output size, the windows follow (PyTorch's rule).

Output cell ``i`` of ``o`` along an axis of size ``n`` pools input ``[floor(i * n / o),
ceil((i + 1) * n / o))``. When ``o`` divides ``n`` those are ordinary ``n / o`` windows with stride
``n / o`` and go through :func:`jaxconv.max_pool2d` / :func:`jaxconv.avg_pool2d` with the chosen
``impl``; otherwise the (overlapping, unequal) windows are reduced one axis at a time, which is
exact for both max and mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._checks import LAYOUTS, Pair, accumulation_dtype, check_array, check_choice
from jaxconv.impls import IMPL_CHOICES
from jaxconv.layout import channels_of, spatial_axes, spatial_of
from jaxconv.pool import avg_pool2d, max_pool2d


def _bins(n: int, o: int) -> list[tuple[int, int]]:
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def _output_hw(fn: str, output_size: object, input_hw: Pair) -> Pair:
    """An int, or a pair of ints/None (None keeps that input size), each >= 1."""
    sizes = (output_size, output_size) if not isinstance(output_size, tuple | list) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
    out = []
    for size, n in zip(sizes, input_hw, strict=True):
        size = n if size is None else size
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{fn}: output_size must hold ints >= 1 (or None), got {output_size!r}")
        out.append(int(size))
    return (out[0], out[1])


def _adaptive(fn: str, mode: str, x: jax.Array, output_size: object, layout: str, impl: str) -> jax.Array:
    layout = check_choice(fn, "layout", layout, LAYOUTS)
    impl = check_choice(fn, "impl", impl, IMPL_CHOICES)
    x = check_array(fn, "x", x, (3, 4))
    batched = x.ndim == 4
    xb = x if batched else x[None]
    input_hw = spatial_of(xb.shape, layout)
    out_hw = _output_hw(fn, output_size, input_hw)
    if all(n % o == 0 for n, o in zip(input_hw, out_hw, strict=True)):
        window = (input_hw[0] // out_hw[0], input_hw[1] // out_hw[1])
        pool = max_pool2d if mode == "max" else avg_pool2d
        y = pool(xb, window, layout=layout, impl=impl)
    else:
        y = xb.astype(accumulation_dtype(xb.dtype)) if mode == "avg" else xb
        axes = spatial_axes(layout)
        for axis, n, o in zip(axes, input_hw, out_hw, strict=True):
            parts = [jax.lax.slice_in_dim(y, a, b, axis=axis) for a, b in _bins(n, o)]
            reduce = jnp.max if mode == "max" else jnp.mean
            y = jnp.concatenate([reduce(p, axis=axis, keepdims=True) for p in parts], axis=axis)
        y = y.astype(xb.dtype)
    assert not isinstance(y, tuple)
    return y if batched else y[0]


def adaptive_avg_pool2d(
    x: jax.Array, output_size: int | Sequence[int | None], *, layout: str = "NCHW", impl: str = "auto"
) -> jax.Array:
    """Average pooling to a chosen ``(OH, OW)`` (PyTorch's ``adaptive_avg_pool2d``).

    Examples:
      >>> adaptive_avg_pool2d(jnp.arange(10.0).reshape(1, 1, 2, 5), (1, 3))
      Array([[[[3. , 4.5, 6. ]]]], dtype=float32)
    """
    return _adaptive("adaptive_avg_pool2d", "avg", x, output_size, layout, impl)


def adaptive_max_pool2d(
    x: jax.Array, output_size: int | Sequence[int | None], *, layout: str = "NCHW", impl: str = "auto"
) -> jax.Array:
    """Max pooling to a chosen ``(OH, OW)`` (PyTorch's ``adaptive_max_pool2d``, without indices).

    Examples:
      >>> adaptive_max_pool2d(jnp.arange(10.0).reshape(1, 1, 2, 5), (1, 3))
      Array([[[[6., 8., 9.]]]], dtype=float32)
    """
    return _adaptive("adaptive_max_pool2d", "max", x, output_size, layout, impl)


def global_avg_pool2d(x: jax.Array, *, layout: str = "NCHW", impl: str = "auto") -> jax.Array:
    """Mean over all positions: ``(N, C, H, W) -> (N, C)`` (Keras's GlobalAveragePooling2D; PyTorch's
    ``AdaptiveAvgPool2d(1)`` keeps the two unit axes: use :func:`adaptive_avg_pool2d` for that)."""
    y = adaptive_avg_pool2d(x, 1, layout=layout, impl=impl)
    return y.reshape(y.shape[: y.ndim - 3] + (channels_of(y.shape, layout),))


def global_max_pool2d(x: jax.Array, *, layout: str = "NCHW", impl: str = "auto") -> jax.Array:
    """Max over all positions: ``(N, C, H, W) -> (N, C)`` (or ``(C, H, W) -> (C,)``)."""
    y = adaptive_max_pool2d(x, 1, layout=layout, impl=impl)
    return y.reshape(y.shape[: y.ndim - 3] + (channels_of(y.shape, layout),))
