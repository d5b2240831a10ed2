"""Strict JAX numerics for every test: implicit rank or dtype promotion is an error (Equinox)."""

import os

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Each new shape recompiles, so property tests draw few, slow examples (JAX's sampler does ~10).
settings.register_profile("jaxconv", max_examples=20, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jaxconv"))


@pytest.fixture(params=["xla", "manual"])
def impl(request):
    return request.param
