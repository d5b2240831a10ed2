"""What ``impl="auto"`` runs for one call: the tuning table's measured winner, else the rule.

:func:`tuned_impl` is asked at trace time, per platform the call may be lowered for; ``None`` sends the
dispatcher to the hand-written rule (:mod:`jaxconv.impls.auto`), so a program traced with an empty table
is exactly the program of the rule. On a miss it tunes the call there and then only when asked to
(:func:`jaxconv.tuning.tune_on_miss`, or ``JAXCONV_TUNE_ON_MISS=1``): tuning takes seconds per call, which
no one should meet by surprise inside ``jax.jit``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator, Mapping

from jaxconv.spec import ConvSpec, PoolSpec
from jaxconv.tuning import table

ON_MISS_ENV_VAR = "JAXCONV_TUNE_ON_MISS"
# Set by jaxconv.tuning.tuner (above the dispatcher, which calls this module) when it is imported.
MissHandler = Callable[[str, ConvSpec | PoolSpec, str], "table.Entry | None"]
_miss_handler: list[MissHandler] = []
TUNING_ON_MISS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("jaxconv_tune_on_miss",
                                                                             default=None)  # fmt: skip


_RULE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("jaxconv_rule_only", default=False)


@contextlib.contextmanager
def rule_only() -> Iterator[None]:
    """Within the block ``auto`` is the hand-written rule alone: no table, no tuning on a miss (what the
    tuner times as the rule's candidate)."""
    token = _RULE_ONLY.set(True)
    try:
        yield
    finally:
        _RULE_ONLY.reset(token)


_PICKS: contextvars.ContextVar[Mapping[tuple[str, str, str], str] | None] = contextvars.ContextVar(
    "jaxconv_picks", default=None
)


def pick_key(op: str, spec: ConvSpec | PoolSpec, pass_: str) -> tuple[str, str, str]:
    return (op, spec.to_json(), pass_)


@contextlib.contextmanager
def with_picks(picks: Mapping[tuple[str, str, str], str]) -> Iterator[None]:
    """Within the block, a call whose :func:`pick_key` is in ``picks`` runs that impl (``"auto"``: the rule's
    pick), before any table: the tuner traces a step so with some picks changed, to time it in context."""
    token = _PICKS.set(dict(picks))
    try:
        yield
    finally:
        _PICKS.reset(token)


def set_miss_handler(handler: MissHandler) -> None:
    """Registers the function that tunes one call on a miss (:mod:`jaxconv.tuning.tuner` does)."""
    _miss_handler[:] = [handler]


def tuning_on_miss() -> bool:
    """Whether a miss tunes the call now: :func:`jaxconv.tuning.tune_on_miss`'s setting, else
    ``JAXCONV_TUNE_ON_MISS`` (``1``, ``true`` or ``yes``)."""
    setting = TUNING_ON_MISS.get()
    if setting is not None:
        return setting
    return os.environ.get(ON_MISS_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def tuned_entry(backend: str, op: str, spec: ConvSpec | PoolSpec, pass_: str) -> table.Entry | None:
    """The active table's entry for the call on ``backend`` (tuning it first on a miss, if asked and if
    ``backend`` is this process's), or ``None``: then the rule picks."""
    if _RULE_ONLY.get():
        return None
    entry = table.lookup(backend, op, spec, pass_)
    if entry is None and tuning_on_miss() and _miss_handler and _is_local(backend):
        entry = _miss_handler[0](op, spec, pass_)
    return entry


def tuned_impl(backend: str, op: str, spec: ConvSpec | PoolSpec, pass_: str) -> str | None:
    """:func:`with_picks`'s pick for the call, else :func:`tuned_entry`'s impl, or ``None``."""
    picks = _PICKS.get()
    if picks is not None and pick_key(op, spec, pass_) in picks and _is_local(backend):
        return picks[pick_key(op, spec, pass_)]
    entry = tuned_entry(backend, op, spec, pass_)
    return None if entry is None else entry.impl


def _is_local(backend: str) -> bool:
    import jax

    return jax.default_backend() == backend
