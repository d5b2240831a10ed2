"""The convolution and pooling calls a traced function makes, as the dispatcher sees them.

:func:`jaxconv.tune` and :func:`jaxconv.explain` trace a function inside :func:`recording`; every call that
reaches :func:`jaxconv.impls.conv` or :func:`jaxconv.impls.pool` (the public ops, the Flax layers,
``jc.conv_general_dilated`` inside any model) is noted with its description, the impl asked for, and
whether it is differentiated: a call whose operands are being linearized (``jax.grad``, ``jax.vjp``)
runs its backward pass too, so its forward+backward time is what matters.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

from jaxconv.spec import ConvSpec, PoolSpec

# Tracers of values being differentiated: reverse mode linearizes (a LinearizeTracer, which JAX does
# not export), forward mode and older JAX versions push JVPTracers. Matched by name for that reason.
_DIFFERENTIATING = ("JVPTracer", "LinearizeTracer")


@dataclasses.dataclass(frozen=True)
class Call:
    """One convolution (``op="conv"``) or pooling (``"pool"``) call: its description, the ``impl`` asked
    for, and its pass (``"forward"``, or ``"forward+backward"`` where it is differentiated)."""

    op: str
    spec: ConvSpec | PoolSpec
    impl: str
    pass_: str


_RECORDER: contextvars.ContextVar[list[Call] | None] = contextvars.ContextVar("jaxconv_calls", default=None)


def pass_of(*operands: object) -> str:
    """``"forward+backward"`` if any operand is being differentiated at this point of a trace, else
    ``"forward"``."""
    differentiated = any(t.__name__ in _DIFFERENTIATING for a in operands for t in type(a).__mro__)
    return "forward+backward" if differentiated else "forward"


def record(op: str, spec: ConvSpec | PoolSpec, impl: str, *operands: object) -> str:
    """Notes the call if a :func:`recording` is open; returns its pass either way."""
    pass_ = pass_of(*operands)
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder.append(Call(op, spec, impl, pass_))
    return pass_


@contextlib.contextmanager
def recording() -> Iterator[list[Call]]:
    """Collects, in order, the calls traced within the block (repeats included).

    Only what is traced is seen: a jitted function JAX has already traced for these shapes is taken
    from its cache without running Python, so :func:`jaxconv.tune` clears JAX's caches first.
    """
    calls: list[Call] = []
    token = _RECORDER.set(calls)
    try:
        yield calls
    finally:
        _RECORDER.reset(token)
