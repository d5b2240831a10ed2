"""The registry is the one list of implementations: a new one is one entry, and everything else sees it."""

import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from jaxconv import bench, cli, impls
from jaxconv.impls import REGISTRY, Impl, taps
from tests import reference


@pytest.fixture
def toy():
    """A toy implementation, registered for one test: shift_add's cores under another name, float32 only."""
    calls = []

    def conv(x, w, b, *, spec, precision=None):
        calls.append(spec)
        return taps.conv2d_shift_add(x, w, b, spec=spec, precision=precision)

    impls.register(
        "toy", Impl(conv, taps.pool_shift_add, "a toy: shift_add renamed", "toy NHWC", dtypes=("float32",))
    )
    yield calls
    del REGISTRY["toy"]  # registered for this test only


def test_a_registered_implementation_is_everywhere(toy):
    assert "toy" in jc.IMPLS and "toy" in jc.IMPL_CHOICES and jc.IMPL_CHOICES[0] == "auto"
    assert ("toy NHWC", "toy", "NHWC") in bench.candidates()
    parser = cli._parser()
    assert parser.parse_args(["train", "--impl", "toy"]).impl == "toy"
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "toy" in commands.choices["bench"].format_help()
    assert "| `toy` | a toy: shift_add renamed |" in impls.table()

    x = jax.random.normal(jax.random.key(0), (2, 3, 9, 9))
    w = jax.random.normal(jax.random.key(1), (4, 3, 3, 3))
    y = jc.conv2d(x, w, padding=1, stride=2, impl="toy")
    np.testing.assert_allclose(y, reference.conv2d(x, w, padding=1, stride=2), rtol=1e-5, atol=1e-5)
    assert toy[-1].stride == (2, 2) and toy[-1].pads == ((1, 1), (1, 1))
    y = jc.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), lhs_dilation=(2, 2), impl="toy")
    np.testing.assert_allclose(y, jc.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), lhs_dilation=(2, 2)),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    assert toy[-1].input_dilation == (1, 1)  # the dispatcher spread the input for a core that does not


def test_a_refusal_names_the_implementation(toy):
    x = jnp.ones((1, 2, 5, 5), jnp.bfloat16)
    with pytest.raises(ValueError, match=r"conv: impl='toy' takes \('float32',\), got bfloat16"):
        jc.conv2d(x, jnp.ones((1, 2, 3, 3), jnp.bfloat16), impl="toy")


def test_register_refuses_names_and_objects_it_cannot_take(toy):
    entry = dataclasses.replace(REGISTRY["xla"])
    for name in ("auto", "xla", "toy", "not an identifier", 3):
        with pytest.raises(ValueError, match=r"register: name must be a new identifier other than 'auto'"):
            impls.register(name, entry)
    with pytest.raises(TypeError, match=r"register: impl must be a jaxconv.impls.Impl, got tuple"):
        impls.register("other", (None, None))


def test_the_views_follow_the_registry():
    assert tuple(jc.IMPLS) == tuple(REGISTRY) and tuple(jc.IMPL_CHOICES) == ("auto", *REGISTRY)
    assert jc.IMPLS == tuple(REGISTRY) and jc.IMPL_CHOICES[1:] == tuple(REGISTRY)
    assert tuple(impls.INTERPRETED_ON_CPU) == ("pallas",)
