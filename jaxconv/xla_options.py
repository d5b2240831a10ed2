"""XLA compiler options for the executables jaxconv compiles itself: its training and evaluation steps.

XLA's CPU backend (jax 0.10) hands dots *and reductions* to YNNPACK (the ``__ynn_fusion`` ops of a
compiled step's HLO). YNNPACK's reductions of LeNet's small-channel activations were the slow part of
its training step, so both option sets below give YNNPACK the dots only; LeNet's steps run faster so,
and their losses agree to float32 rounding (reductions sum in another order).

Given a dot, YNNPACK also takes the elementwise ops around it (a bias, an activation, Winograd's
output transform) into the same fusion. :data:`CPU_OPTIONS_SEPARATE_DOTS` hands it each dot alone
and leaves the elementwise work to XLA's own loops. Neither is faster everywhere (docs/guide/training.md,
docs/performance.md): LeNet's training step runs faster with separate dots (fused, the sigmoid's
constant 1 reaches YNNPACK as a full array that XLA fills first, every step), Winograd's layers alone
with fused ones.

So jaxconv's training and evaluation steps compile with separate dots (``fuse_elementwise=False``),
and ``jaxconv bench``'s contestants with the fused form, as do :func:`compiler_options` and
:func:`jit` unless told otherwise.

The options go to the executables jaxconv jits (``jax.jit(..., compiler_options=...)``): its
training and evaluation steps and ``jaxconv bench``'s JAX contestants, never to the process. Your own
jitted functions keep XLA's defaults unless you pass them the same options::

    jax.jit(step, compiler_options=jc.xla_options.compiler_options())
    jc.xla_options.jit(step, fuse_elementwise=False)  # a LeNet-sized step: as jaxconv's own

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
# YNNPACK takes the dots, each with the elementwise ops XLA fuses around it.
CPU_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
# YNNPACK takes each dot alone; XLA's loops do the elementwise work (jaxconv's training steps).
CPU_OPTIONS_SEPARATE_DOTS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}


def _cpu_options(fuse_elementwise: bool) -> dict[str, str]:
    return CPU_OPTIONS if fuse_elementwise else CPU_OPTIONS_SEPARATE_DOTS


@functools.cache
def _accepted_on_cpu(fuse_elementwise: bool) -> bool:
    """Whether this jaxlib knows the CPU options (they are experimental; a later XLA may drop
    them). Compiles a one-op function with them once per process and option set."""
    options = _cpu_options(fuse_elementwise)
    try:
        jax.jit(jnp.negative, compiler_options=options).lower(jnp.zeros(2)).compile()
    except jax.errors.JaxRuntimeError as err:
        warnings.warn(
            f"jaxconv: this jaxlib ({jax.__version__}) rejects XLA options {options}; "
            f"compiling with XLA's defaults ({err})",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def compiler_options(backend: str | None = None, *, fuse_elementwise: bool = True) -> dict[str, str]:
    """The XLA compiler options jaxconv compiles with on ``backend``.

    Args:
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``...; ``None`` for ``jax.default_backend()``.
      fuse_elementwise: on CPU, whether YNNPACK takes each dot with the elementwise ops around it
        (:data:`CPU_OPTIONS`, what ``jaxconv bench`` compiles with) or alone
        (:data:`CPU_OPTIONS_SEPARATE_DOTS`, what jaxconv's training steps compile with; module doc).

    Returns:
      A new dict: the CPU options on CPU (if this jaxlib accepts them; it warns once if not),
      ``{}`` on other backends, whose compilers these options do not concern.

    Examples:
      >>> compiler_options("gpu")
      {}
      >>> compiler_options("cpu", fuse_elementwise=False)
      {'xla_cpu_experimental_ynn_fusion_type': 'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'}
    """
    if backend is None:
        backend = jax.default_backend()
    if not isinstance(backend, str):
        raise TypeError(f"compiler_options: backend must be a str ('cpu', ...), got {type(backend).__name__}")
    if not isinstance(fuse_elementwise, bool):
        raise TypeError(f"compiler_options: fuse_elementwise must be a bool, got {fuse_elementwise!r}")
    if backend != "cpu" or not _accepted_on_cpu(fuse_elementwise):
        return {}
    return dict(_cpu_options(fuse_elementwise))


class TunedJit:
    """``jax.jit(fun, compiler_options=compiler_options(fuse_elementwise=...))``, built on first use.

    Deciding on first use keeps ``import jaxconv`` from starting a JAX backend (which would be too
    early for ``jax.distributed.initialize``); the backend is JAX's default at that moment.
    Calling it and ``.lower(...)`` behave as on the jitted function. Called inside another ``jit``
    it is a plain nested ``jit``: only the outermost compilation takes options.
    """

    def __init__(self, fun: Callable[..., Any], *, fuse_elementwise: bool = True):
        if not callable(fun):
            raise TypeError(f"TunedJit: fun must be callable, got {type(fun).__name__}")
        if not isinstance(fuse_elementwise, bool):
            raise TypeError(f"TunedJit: fuse_elementwise must be a bool, got {fuse_elementwise!r}")
        functools.update_wrapper(self, fun)
        self._fun = fun
        self.fuse_elementwise = fuse_elementwise
        self._nested = jax.jit(fun)
        self._jitted: Any = None

    def _get(self) -> Any:
        if self._jitted is None:
            options = compiler_options(fuse_elementwise=self.fuse_elementwise)
            self._jitted = jax.jit(self._fun, compiler_options=options)
        return self._jitted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(leaf, Tracer) for leaf in jax.tree.leaves((args, kwargs))):
            return self._nested(*args, **kwargs)
        return self._get()(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().lower(*args, **kwargs)

    def __repr__(self) -> str:
        separate = "" if self.fuse_elementwise else ", fuse_elementwise=False"
        return f"TunedJit({self._fun.__qualname__}{separate})"


def jit(fun: Callable[..., Any], *, fuse_elementwise: bool = True) -> TunedJit:
    """``fun`` jitted with :func:`compiler_options` (``fuse_elementwise`` as given) for the backend it
    first runs on."""
    return TunedJit(fun, fuse_elementwise=fuse_elementwise)
