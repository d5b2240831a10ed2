"""Cross-correlation as the book writes it (sections 6.2 and 6.4): ``corr2d``, ``convolve2d`` and the
multi-channel forms.

Each function validates its arrays, then runs a valid, stride-1 correlation through the core of the
chosen ``impl`` (:mod:`jaxconv.impls`): ``"xla"`` is ``lax.conv_general_dilated``, ``"manual"`` the
book's window dot product vmapped (:mod:`jaxconv.impls.manual`), and so on.
"""

from __future__ import annotations

import jax

from jaxconv import impls
from jaxconv._checks import check_array, check_choice, check_same_dtype
from jaxconv.impls import IMPL_CHOICES
from jaxconv.shapes import output_size
from jaxconv.spec import ConvSpec

# ---- the book's functions ---------------------------------------------------------------------


def _check_book_args(fn: str, x: jax.Array, k: jax.Array, impl: str) -> None:
    """Checks ``x (C, H, W)`` against ``k (O, C, kh, kw)`` for a valid, stride-1 correlation."""
    check_choice(fn, "impl", impl, IMPL_CHOICES)
    check_same_dtype(fn, X=x, K=k)
    if x.shape[0] != k.shape[1]:
        raise ValueError(
            f"{fn}: K has {k.shape[1]} input channels but X has {x.shape[0]} "
            f"(X: {tuple(x.shape)}, K: {tuple(k.shape)})"
        )
    output_size(fn, x.shape[1:], k.shape[2:], ((0, 0), (0, 0)), (1, 1))


def _book_conv(fn: str, x: jax.Array, k: jax.Array, impl: str) -> jax.Array:
    """Valid, stride-1 correlation of ``x (C, H, W)`` with ``k (O, C, kh, kw)`` -> ``(O, OH, OW)``."""
    _check_book_args(fn, x, k, impl)
    c, h, w = x.shape
    spec = ConvSpec(batch=1, in_channels=c, out_channels=k.shape[0], input_hw=(h, w),
                    kernel=(k.shape[2], k.shape[3]), dtype=x.dtype.name)  # fmt: skip
    return impls.conv(impl, x[None], k, None, spec)[0]


def corr2d(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """2-D cross-correlation of one channel: the book's ``corr2d``.

    Args:
      X: input ``(H, W)``, floating point.
      K: kernel ``(kh, kw)``, same dtype.
      impl: ``"auto"`` (default), ``"xla"`` (``lax.conv_general_dilated``), ``"manual"`` (the
        vmapped definition) or any other name in :data:`jaxconv.IMPLS`, as :func:`jaxconv.conv2d`.

    Returns:
      ``(H - kh + 1, W - kw + 1)``.

    Raises:
      TypeError: non-array or non-float input, mixed dtypes.
      ValueError: wrong number of dimensions, kernel larger than the input, unknown impl.

    Examples:
      >>> X = jnp.arange(9.0).reshape(3, 3)
      >>> K = jnp.arange(4.0).reshape(2, 2)
      >>> corr2d(X, K)
      Array([[19., 25.],
             [37., 43.]], dtype=float32)
    """
    X = check_array("corr2d", "X", X, (2,))
    K = check_array("corr2d", "K", K, (2,))
    return _book_conv("corr2d", X[None], K[None, None], impl)[0]


def convolve2d(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """Strict 2-D convolution: cross-correlation with ``K`` flipped in both axes.

    Shapes as :func:`corr2d`; this is the operation the book contrasts with cross-correlation.

    Examples:
      >>> X = jnp.arange(9.0).reshape(3, 3)
      >>> convolve2d(X, jnp.arange(4.0).reshape(2, 2))
      Array([[ 5., 11.],
             [23., 29.]], dtype=float32)
    """
    X = check_array("convolve2d", "X", X, (2,))
    K = check_array("convolve2d", "K", K, (2,))
    return _book_conv("convolve2d", X[None], K[None, None, ::-1, ::-1], impl)[0]


def corr2d_multi_in(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """Cross-correlation summed over input channels: ``X (C, H, W)``, ``K (C, kh, kw)`` -> ``(OH, OW)``.

    Examples:
      >>> X = jnp.stack([jnp.arange(9.0).reshape(3, 3), jnp.arange(1.0, 10.0).reshape(3, 3)])
      >>> K = jnp.stack([jnp.arange(4.0).reshape(2, 2), jnp.arange(1.0, 5.0).reshape(2, 2)])
      >>> corr2d_multi_in(X, K)
      Array([[ 56.,  72.],
             [104., 120.]], dtype=float32)
    """
    X = check_array("corr2d_multi_in", "X", X, (3,))
    K = check_array("corr2d_multi_in", "K", K, (3,))
    return _book_conv("corr2d_multi_in", X, K[None], impl)[0]


def corr2d_multi_in_out(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """One multi-input correlation per output channel.

    ``X (C, H, W)``, ``K (O, C, kh, kw)`` -> ``(O, H - kh + 1, W - kw + 1)``.
    """
    X = check_array("corr2d_multi_in_out", "X", X, (3,))
    K = check_array("corr2d_multi_in_out", "K", K, (4,))
    return _book_conv("corr2d_multi_in_out", X, K, impl)


def corr2d_multi_in_out_1x1(X: jax.Array, K: jax.Array, *, impl: str = "auto") -> jax.Array:
    """A 1x1 convolution as one matrix product: ``X (C, H, W)``, ``K (O, C, 1, 1)`` -> ``(O, H, W)``.

    ``impl="xla"`` is the book's formulation, ``K.reshape(O, C) @ X.reshape(C, H * W)``, one XLA
    dot; every other impl runs :func:`corr2d_multi_in_out`'s (``"manual"``: the vmapped
    definition with 1x1 windows). All equal :func:`corr2d_multi_in_out`.
    """
    fn = "corr2d_multi_in_out_1x1"
    X = check_array(fn, "X", X, (3,))
    K = check_array(fn, "K", K, (4,))
    if K.shape[2:] != (1, 1):
        raise ValueError(f"{fn}: K must be (O, C, 1, 1), got {tuple(K.shape)}")
    if impl != "xla":
        return _book_conv(fn, X, K, impl)
    _check_book_args(fn, X, K, impl)
    c, h, w = X.shape
    return (K.reshape(K.shape[0], c) @ X.reshape(c, h * w)).reshape(K.shape[0], h, w)
