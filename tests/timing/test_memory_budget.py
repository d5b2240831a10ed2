"""What a compiled contestant needs (XLA's buffer assignment) and what the device has free."""

import os

import jax
import jax.numpy as jnp

from jaxconv.timing import memory_budget


def test_footprint_is_xla_buffer_assignment():
    compiled = jax.jit(lambda a: (a * 2).sum(axis=0)).lower(jnp.ones((1000, 10), jnp.float32)).compile()
    stats = compiled.memory_analysis()
    expected = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    assert memory_budget.footprint(compiled) == expected >= 40_000 + 40
    free = memory_budget.available_memory()
    if jax.default_backend() == "cpu":  # the host's memory
        assert free is None or 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    else:  # the device's
        assert free is None or 0 < free <= jax.devices()[0].memory_stats()["bytes_limit"]
