"""Choosing per platform inside one traced function: the branch of the platform a program is lowered for.

``jax.default_backend()`` at trace time names the host, not the target: a step traced on a CPU may be
exported for a GPU. ``lax.platform_dependent`` picks the branch when the program is lowered, so a CPU
program holds only the CPU branch and a GPU or TPU program only theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
from jax import lax

# The platforms JAX lowers for, and the backend name (``jax.default_backend()``'s) each one runs as.
BACKEND_OF = {"cpu": "cpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def per_platform(branches: Mapping[str, Callable[..., jax.Array]], *args: jax.Array) -> jax.Array:
    """``branches[platform](*args)`` for the platform the computation is lowered for.

    ``branches`` maps each of :data:`BACKEND_OF`'s platforms to a function; one function object for all
    is called directly, so a program whose branches agree holds no ``platform_dependent`` at all.
    Platforms not named (there are none today) lower as ``cuda``'s, an accelerator's.
    """
    distinct = {id(f): f for f in branches.values()}
    if len(distinct) == 1:
        return next(iter(distinct.values()))(*args)
    return lax.platform_dependent(*args, **branches, default=branches["cuda"])
