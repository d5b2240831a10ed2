"""Flax's pooling functions' signatures over jaxconv's pooling: a drop-in for ``flax.linen.max_pool``.

A Flax model pools with plain functions (``nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")``),
which run XLA's ``reduce_window`` and, for the gradient, its ``select_and_scatter``; on a CPU that
gradient is slow (docs/performance.md, "Tuning auto"). :func:`max_pool` takes the same arguments and
returns the same values and gradients through :func:`jaxconv.max_pool2d`, so its ``impl`` (``auto``,
tunable with :func:`jaxconv.tune`) runs the pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv.pool import max_pool2d


def max_pool(
    inputs: jax.Array,
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: str | Sequence[tuple[int, int]] = "VALID",
    *,
    impl: str = "auto",
) -> jax.Array:
    """``flax.linen.max_pool`` on ``(N, H, W, C)`` inputs, computed by :func:`jaxconv.max_pool2d`.

    Args:
      inputs: ``(N, H, W, C)``, float.
      window_shape: ``(wh, ww)``.
      strides: ``(sh, sw)``; default ``(1, 1)``, as Flax's.
      padding: ``"VALID"``, ``"SAME"``, ``"SAME_LOWER"`` or ``((top, bottom), (left, right))``, padded
        with -inf.
      impl: jaxconv's pooling implementation (``"auto"``: the tuning table's, else the rule's pick).

    Returns:
      ``(N, OH, OW, C)``, as ``flax.linen.max_pool`` returns.

    Examples:
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> max_pool(x, (3, 3), strides=(2, 2), padding="SAME")[0, ..., 0]
      Array([[10., 11.],
             [14., 15.]], dtype=float32)
    """
    if getattr(inputs, "ndim", None) != 4:
        raise ValueError(
            f"max_pool: inputs must be (N, H, W, C), got shape {getattr(inputs, 'shape', inputs)!r}"
        )
    window = tuple(window_shape)
    stride = (1, 1) if strides is None else tuple(strides)
    if len(window) != 2 or len(stride) != 2:
        raise ValueError(
            f"max_pool: window_shape and strides need 2 entries, got {window_shape!r}, {strides!r}"
        )
    if isinstance(padding, str):
        if padding not in ("VALID", "SAME", "SAME_LOWER"):
            raise ValueError(
                f"max_pool: padding must be 'VALID', 'SAME', 'SAME_LOWER' or pairs, got {padding!r}"
            )
        pads = lax.padtype_to_pads(inputs.shape[1:3], window, stride, padding)
    else:
        pads = [tuple(pair) for pair in padding]
        if len(pads) != 2 or any(len(pair) != 2 for pair in pads):
            raise ValueError(f"max_pool: padding needs 2 (low, high) pairs, got {padding!r}")
    (top, bottom), (left, right) = pads
    if max(top, bottom) > window[0] // 2 or max(left, right) > window[1] // 2:
        # Flax pads any amount; jaxconv's pooling, as PyTorch's, at most half a window: pad here instead.
        widths = ((0, 0), (top, bottom), (left, right), (0, 0))
        inputs = jnp.pad(inputs, widths, constant_values=-jnp.inf)
        (top, bottom), (left, right) = (0, 0), (0, 0)
    return max_pool2d(inputs, (window[0], window[1]), stride=(stride[0], stride[1]),
                      padding=((top, bottom), (left, right)), layout="NHWC", impl=impl)  # fmt: skip
