"""Names the docstring examples use without importing them."""

import jax.numpy as jnp
import pytest

import jaxconv as jc


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["jnp"] = jnp
    doctest_namespace["jc"] = jc
