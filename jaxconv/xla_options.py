"""XLA compiler options for the executables jaxconv compiles itself: its training and evaluation steps.

XLA's CPU backend (jax 0.10) hands dots *and reductions* to YNNPACK (the ``__ynn_fusion`` ops of a
compiled step's HLO). Profiled on the 2-core CPU of the README's tables, YNNPACK's reductions of
LeNet's small-channel activations were the slow part: summing conv1's ``(256, 28, 28, 6)`` output
gradient to its bias gradient took 1.2 ms and the first average pool 1.9 ms, where XLA's own
reduction loops read the same data in a fraction of that. :data:`CPU_OPTIONS` gives YNNPACK the
dots only. Whole LeNet training steps (batch 256), compiled both ways in one process and timed in
alternating rounds: 1.11x faster with the defaults (``auto``, NHWC; two runs, 1.105x and 1.112x),
1.34x with ``impl="xla"`` in NCHW, 1.03x (noise) for the modern recipe with batch norm. The losses
agree to float32 rounding (reductions sum in another order).

The options go to the executables jaxconv jits (``jax.jit(..., compiler_options=...)``): its
training and evaluation steps and ``jaxconv bench``'s JAX contestants, never to the process. Your own
jitted functions keep XLA's defaults unless you pass them the same options::

    jax.jit(step, compiler_options=jc.xla_options.compiler_options())

``TrainConfig(cpu_compiler_options=False)`` (``jaxconv train --xla-defaults``) trains with XLA's
defaults, as a plain Flax script does.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer

# DebugOptions fields by name; the value is parsed like the XLA_FLAGS entry of the same name.
CPU_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


@functools.cache
def _accepted_on_cpu() -> bool:
    """Whether this jaxlib knows :data:`CPU_OPTIONS` (they are experimental; a later XLA may drop
    them). Compiles a one-op function with them once per process."""
    try:
        jax.jit(jnp.negative, compiler_options=CPU_OPTIONS).lower(jnp.zeros(2)).compile()
    except jax.errors.JaxRuntimeError as err:
        warnings.warn(
            f"jaxconv: this jaxlib ({jax.__version__}) rejects XLA options {CPU_OPTIONS}; "
            f"compiling with XLA's defaults ({err})",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def compiler_options(backend: str | None = None) -> dict[str, str]:
    """The XLA compiler options jaxconv compiles its steps with on ``backend``.

    Args:
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``...; ``None`` for ``jax.default_backend()``.

    Returns:
      A new dict: :data:`CPU_OPTIONS` on CPU (if this jaxlib accepts them; it warns once if not),
      ``{}`` on other backends, whose compilers these options do not concern.

    Examples:
      >>> compiler_options("gpu")
      {}
    """
    if backend is None:
        backend = jax.default_backend()
    if not isinstance(backend, str):
        raise TypeError(f"compiler_options: backend must be a str ('cpu', ...), got {type(backend).__name__}")
    if backend != "cpu" or not _accepted_on_cpu():
        return {}
    return dict(CPU_OPTIONS)


class TunedJit:
    """``jax.jit(fun, compiler_options=compiler_options())``, built on first use.

    Deciding on first use keeps ``import jaxconv`` from starting a JAX backend (which would be too
    early for ``jax.distributed.initialize``); the backend is JAX's default at that moment.
    Calling it and ``.lower(...)`` behave as on the jitted function. Called inside another ``jit``
    it is a plain nested ``jit``: only the outermost compilation takes options.
    """

    def __init__(self, fun: Callable[..., Any]):
        if not callable(fun):
            raise TypeError(f"TunedJit: fun must be callable, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._nested = jax.jit(fun)
        self._jitted: Any = None

    def _get(self) -> Any:
        if self._jitted is None:
            self._jitted = jax.jit(self._fun, compiler_options=compiler_options())
        return self._jitted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(leaf, Tracer) for leaf in jax.tree.leaves((args, kwargs))):
            return self._nested(*args, **kwargs)
        return self._get()(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().lower(*args, **kwargs)

    def __repr__(self) -> str:
        return f"TunedJit({self._fun.__qualname__})"


def jit(fun: Callable[..., Any]) -> TunedJit:
    """``fun`` jitted with :func:`compiler_options` for the backend it first runs on."""
    return TunedJit(fun)
