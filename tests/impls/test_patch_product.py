"""patch_product: the value and every derivative of ``P @ K``, checked against float64 NumPy, and the
weight gradient's operand order that makes it faster on XLA's CPU dot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxconv.impls.patch_product import patch_product
from tests import reference
from tests.draws import examples


def _operands(m: int, d: int, e: int, seed: int = 0) -> tuple[jax.Array, jax.Array, jax.Array]:
    kp, kk, kg = jax.random.split(jax.random.key(seed), 3)
    return (jax.random.normal(kp, (m, d)), jax.random.normal(kk, (d, e)), jax.random.normal(kg, (m, e)))


@examples(10)
@given(m=st.integers(1, 40), d=st.integers(1, 12), e=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_value_and_gradients_are_those_of_the_product(m, d, e, seed):
    p, k, g = _operands(m, d, e, seed)
    y, pullback = jax.vjp(patch_product, p, k)
    dp, dk = pullback(g)
    p64, k64, g64 = (np.asarray(a, np.float64) for a in (p, k, g))
    reference.assert_close(y, p64 @ k64)
    reference.assert_close(dp, g64 @ k64.T)
    reference.assert_close(dk, p64.T @ g64)  # D > E takes the (Gᵀ P)ᵀ route, D <= E the plain one


@pytest.mark.parametrize("d, e", [(7, 3), (3, 7)])
def test_forward_mode_and_second_derivatives_match_jnp_dot(d, e):
    p, k, _ = _operands(30, d, e)

    def loss(p, k, product):
        return jnp.sum(jnp.sin(product(p, k)))

    ours = lambda p, k: loss(p, k, patch_product)  # noqa: E731
    plain = lambda p, k: loss(p, k, jnp.dot)  # noqa: E731
    np.testing.assert_allclose(
        jax.jvp(ours, (p, k), (p, k))[1], jax.jvp(plain, (p, k), (p, k))[1], rtol=1e-5, atol=1e-5
    )
    for argnum in (0, 1):
        np.testing.assert_allclose(
            jax.hessian(ours, argnum)(p, k), jax.hessian(plain, argnum)(p, k), rtol=1e-5, atol=1e-5
        )


def _kernel_gradient_jaxpr(d: int, e: int) -> str:
    p, k, g = _operands(64, d, e)
    return str(jax.make_jaxpr(lambda k, g: jax.vjp(lambda k: patch_product(p, k), k)[1](g))(k, g))


def test_the_kernel_gradient_puts_the_wider_operand_second():
    # D > E: Gᵀ (E, M) @ P (M, D) -> (E, D), kept from XLA's transpose folding, then transposed.
    wide = _kernel_gradient_jaxpr(d=9, e=4)
    assert "f32[4,9] = dot_general" in wide and "optimization_barrier" in wide
    # D <= E: as autodiff writes it, which XLA may fold into Pᵀ @ G, the order that is faster there.
    assert "optimization_barrier" not in _kernel_gradient_jaxpr(d=4, e=9)


def test_other_backends_keep_autodiffs_form():
    # The order is Eigen's, measured on CPU; a program lowered for another platform must not hold the
    # barrier, whatever the host that traced it.
    p, k, g = _operands(64, 9, 4)
    kernel_gradient = jax.jit(lambda k, g: jax.vjp(lambda k: patch_product(p, k), k)[1](g))
    for platform, barrier in (("cpu", True), ("cuda", False), ("rocm", False), ("tpu", False)):
        program = jax.export.export(kernel_gradient, platforms=[platform])(k, g).mlir_module()
        assert ("optimization_barrier" in program) is barrier, platform


def test_a_constant_operand_gets_no_gradient_product():
    # A convolution of data: with P constant, the backward pass must not compute G @ Kᵀ (M, D).
    jaxpr = _kernel_gradient_jaxpr(d=9, e=4)
    assert "f32[64,9] = dot_general" not in jaxpr


def test_checks_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"patch_product: needs patches \(M, D\) and kernel \(D, E\), got "
                       r"patches: \(4, 3\), kernel: \(2, 5\)"):  # fmt: skip
        patch_product(jnp.ones((4, 3)), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"got patches: \(4,\), kernel: \(4, 2\)"):
        patch_product(jnp.ones(4), jnp.ones((4, 2)))
    with pytest.raises(TypeError, match="must share one floating dtype, got float32 and bfloat16"):
        patch_product(jnp.ones((4, 3)), jnp.ones((3, 2), jnp.bfloat16))
    with pytest.raises(TypeError, match="got int32 and int32"):
        patch_product(jnp.ones((4, 3), jnp.int32), jnp.ones((3, 2), jnp.int32))
