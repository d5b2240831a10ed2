"""The patches-times-kernel matmul of ``im2col`` and ``banded``, with its weight gradient's operands
ordered for XLA's CPU dot.

Both hand-written convolutions end in one product ``y = P @ K``: patches ``P (M, D)`` (``M`` output
rows or tiles, ``D`` taps times channels) by a kernel matrix ``K (D, E)``. Autodiff gives the
kernel gradient as ``Pᵀ @ G`` for the output gradient ``G (M, E)``, a dot contracting the long
``M`` axis of both operands. XLA's CPU backend runs that form with Eigen (YNNPACK takes only dots
that contract the left operand's last axis), and Eigen's rate depends on which operand it is given
second: the same product computed as ``(Gᵀ @ P)ᵀ``, the wider operand second, runs faster when
``D > E`` and slower when ``D < E`` (docs/performance.md). XLA's algebraic
simplifier folds a transpose after a dot back into the dot by swapping its operands, so an
``optimization_barrier`` keeps the small ``(E, D)`` result apart from its transpose.

:func:`patch_product` is ``P @ K`` with a custom JVP whose kernel term transposes to that order
when ``D > E`` in CPU programs (other platforms' programs get autodiff's form); its value and every derivative
(reverse, forward, higher order) are those of ``P @ K``. Zero tangents stay symbolic, so a
convolution of data (no input gradient) computes no ``G @ Kᵀ``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxconv._checks import Precision


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _product(patches: jax.Array, kernel: jax.Array, precision: Precision) -> jax.Array:
    return jnp.dot(patches, kernel, precision=precision, preferred_element_type=patches.dtype)


def _kernel_term(patches: jax.Array, kernel_dot: jax.Array, precision: Precision) -> jax.Array:
    """``patches @ kernel_dot``, written so that its transpose is ``(Gᵀ @ patches)ᵀ`` (module doc)."""

    def autodiff_form(patches: jax.Array, kernel_dot: jax.Array) -> jax.Array:
        return jnp.dot(patches, kernel_dot, precision=precision, preferred_element_type=patches.dtype)

    def eigen_order(patches: jax.Array, kernel_dot: jax.Array) -> jax.Array:
        # (K̇ᵀ Pᵀ)ᵀ: its transpose is the dot Gᵀ P, the barrier, then the small (E, D) transpose.
        kernel_t = lax.optimization_barrier(kernel_dot.T)
        y_t = lax.dot_general(
            kernel_t,
            patches,
            (((1,), (1,)), ((), ())),
            precision=precision,
            preferred_element_type=patches.dtype,
        )
        return y_t.T

    # Eigen's order, measured on CPU only, in CPU programs; elsewhere (and when the wider operand is
    # already second in Pᵀ @ G) autodiff's form, which XLA is free to order.
    if patches.shape[1] <= kernel_dot.shape[1]:
        return autodiff_form(patches, kernel_dot)
    return lax.platform_dependent(patches, kernel_dot, cpu=eigen_order, default=autodiff_form)


@partial(_product.defjvp, symbolic_zeros=True)
def _product_jvp(
    precision: Precision, primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    patches, kernel = primals
    patches_dot, kernel_dot = tangents
    y = _product(patches, kernel, precision)
    y_dot = None
    if not isinstance(patches_dot, SymbolicZero):
        y_dot = jnp.dot(patches_dot, kernel, precision=precision, preferred_element_type=y.dtype)
    if not isinstance(kernel_dot, SymbolicZero):
        kernel_part = _kernel_term(patches, kernel_dot, precision)
        y_dot = kernel_part if y_dot is None else y_dot + kernel_part
    return y, jnp.zeros_like(y) if y_dot is None else y_dot


def patch_product(patches: jax.Array, kernel: jax.Array, *, precision: Precision = None) -> jax.Array:
    """``patches (M, D) @ kernel (D, E) -> (M, E)``, its kernel gradient computed as ``(Gᵀ P)ᵀ``
    when ``D > E`` on CPU (module doc).

    Args:
      patches: ``(M, D)`` floating array.
      kernel: ``(D, E)``, the same dtype as ``patches``.
      precision: passed to the dots: ``None`` (the backend's default) or a ``lax.Precision``.

    Returns:
      ``(M, E)`` in the operands' dtype.

    Raises:
      ValueError: if either is not 2-D or the inner sizes differ.
      TypeError: if the dtypes differ or are not floating.

    Examples:
      >>> import jax.numpy as jnp
      >>> patch_product(jnp.ones((4, 3)), jnp.ones((3, 2)))[0]
      Array([3., 3.], dtype=float32)
    """
    if patches.ndim != 2 or kernel.ndim != 2 or patches.shape[1] != kernel.shape[0]:
        raise ValueError(
            f"patch_product: needs patches (M, D) and kernel (D, E), got patches: {patches.shape}, "
            f"kernel: {kernel.shape}"
        )
    if patches.dtype != kernel.dtype or not jnp.issubdtype(patches.dtype, jnp.floating):
        raise TypeError(
            f"patch_product: patches and kernel must share one floating dtype, got {patches.dtype} "
            f"and {kernel.dtype}"
        )
    return _product(patches, kernel, precision)
