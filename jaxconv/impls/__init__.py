"""The implementations being raced, one module each, and their registry.

Every implementation has a convolution core and a pooling core, each taking the call's description
(:mod:`jaxconv.spec`) as a static argument::

    conv(x, w, b, *, spec: ConvSpec, precision) -> y        (x, w, y in spec.layout)
    pool(x, *, spec: PoolSpec) -> the windows' max, or their sum

The public ops (:func:`jaxconv.conv2d`, :func:`jaxconv.max_pool2d`, ...) validate their arguments into a
spec, then call :func:`conv` or :func:`pool` here, which run the core :data:`REGISTRY` names. Adding an
implementation is one module here, one entry in :data:`REGISTRY`, and its tests: the public ops' ``impl=``
choices, the CLI, the bench's contestants, the refusals and the docs' table read the registry.
``"auto"`` is not an implementation but a rule that picks one per call and platform
(:mod:`jaxconv.impls.auto`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import overload

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv._checks import Precision
from jaxconv.impls import auto, band, common, manual, pallas, phases, stencil, taps, winograd, xla
from jaxconv.impls.platform import BACKEND_OF, per_platform
from jaxconv.layout import spatial_widths
from jaxconv.spec import ConvSpec, PoolSpec
from jaxconv.tuning import calls, lookup

ConvCore = Callable[..., jax.Array]
PoolCore = Callable[..., jax.Array]
FLOAT_DTYPES = ("bfloat16", "float16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class Impl:
    """Everything jaxconv knows about one implementation."""

    conv: ConvCore  # conv(x, w, b, *, spec, precision)
    pool: PoolCore  # pool(x, *, spec); a max has no matmul, so several impls share one
    summary: str  # what it computes, in a phrase (the CLI's help, the docs' table)
    label: str  # its name in the bench's tables: the impl and the layout it is raced in
    bench_layout: str = "NHWC"
    interpreted_on: tuple[str, ...] = ()  # backends where it runs in an interpreter: correct, not fast
    groups: str = "native"  # "native", "per_group" (one core call per group) or "densified" (block-diagonal)
    timed_alone: bool = False  # its memory churn slows whatever runs next: the bench times it after the rest
    dtypes: tuple[str, ...] = FLOAT_DTYPES

    def refusal(self, name: str, spec: ConvSpec) -> str | None:
        """Why this implementation cannot run ``spec``, or None."""
        if spec.dtype not in self.dtypes:
            return f"impl={name!r} takes {self.dtypes}, got {spec.dtype}"
        return None


# Pooling under banded, winograd and pallas is shift_add's running tap reduction, so a model can pass
# one impl to all of its layers.
REGISTRY: dict[str, Impl] = {
    "xla": Impl(xla.conv2d_xla, xla.pool_xla, "XLA's own convolution (lax.conv_general_dilated)", "xla NHWC"),
    "manual": Impl(manual.conv2d_manual, manual.pool_manual, "the book's window dot product, vmapped",
                   "manual", bench_layout="NCHW", timed_alone=True),
    "im2col": Impl(taps.conv2d_im2col, taps.pool_im2col, "patches times the kernel, one matmul",
                   "im2col NHWC"),
    "shift_add": Impl(taps.conv2d_shift_add, taps.pool_shift_add, "one small matmul per kernel tap, summed",
                      "shift_add NHWC"),
    "stencil": Impl(stencil.conv2d_stencil, taps.pool_shift_add,
                    "a stencil of broadcast multiply-adds per tap and channel: depthwise and grouped layers",
                    "stencil NHWC"),
    "banded": Impl(band.conv2d_banded, taps.pool_shift_add,
                   "stacked input rows times the kernel's band matrix (doubly-blocked Toeplitz)",
                   "banded NHWC", groups="densified"),
    "winograd": Impl(winograd.conv2d_winograd, taps.pool_shift_add,
                     "Winograd's F(4, r) tiles, fewer multiplications", "winograd NHWC", groups="densified"),
    "pallas": Impl(pallas.conv2d_pallas, taps.pool_shift_add,
                   "a Pallas kernel (Mosaic on TPU, Triton on GPU), its backward passes kernels too",
                   "pallas NHWC", interpreted_on=("cpu",), groups="per_group"),
}  # fmt: skip


class RegistryNames(Sequence[str]):
    """Names in :data:`REGISTRY`, read on each use: an implementation registered later is among them."""

    def __init__(self, *, auto: bool = False, where: Callable[[Impl], bool] | None = None) -> None:
        self._auto, self._where = auto, where

    def _names(self) -> tuple[str, ...]:
        names = tuple(n for n, impl in REGISTRY.items() if self._where is None or self._where(impl))
        return ("auto", *names) if self._auto else names

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]  # its value changes with the registry

    def __repr__(self) -> str:
        return repr(self._names())


# The concrete implementations, and the choices a user may pass ("auto" picks one per call and backend).
IMPLS = RegistryNames()
IMPL_CHOICES = RegistryNames(auto=True)
# Kernels that a CPU runs in Pallas's interpreter: correct, not fast, so races leave them out there.
INTERPRETED_ON_CPU = RegistryNames(where=lambda impl: "cpu" in impl.interpreted_on)


def register(name: str, impl: Impl) -> None:
    """Adds an implementation under ``name``: every op's ``impl=``, the CLI, the bench and the docs' table
    pick it up. ``auto`` picks it only once its rule (:mod:`jaxconv.impls.auto`) names it."""
    if not isinstance(impl, Impl):
        raise TypeError(f"register: impl must be a jaxconv.impls.Impl, got {type(impl).__name__}")
    if not isinstance(name, str) or not name.isidentifier() or name == "auto" or name in REGISTRY:
        raise ValueError(f"register: name must be a new identifier other than 'auto', got {name!r}")
    REGISTRY[name] = impl


def table() -> str:
    """The registry as a Markdown table (the docs' list of implementations)."""
    lines = ["| impl | what it computes | groups | interpreted on |", "|---|---|---|---|"]
    for name, impl in REGISTRY.items():
        lines.append(
            f"| `{name}` | {impl.summary} | {impl.groups} | {', '.join(impl.interpreted_on) or '-'} |"
        )
    return "\n".join(lines)


def spread(x: jax.Array, spec: ConvSpec) -> tuple[jax.Array, ConvSpec]:
    """``x`` spread by ``spec.input_dilation`` and padded (negative pads crop) in one ``lax.pad``, as lax
    does, and the spec of what is left: an ordinary convolution of the spread input. A transposed
    convolution's input is always padded here, its cores see no padding."""
    if not spec.transposed and spec.input_dilation == (1, 1) and min(min(p) for p in spec.pads) >= 0:
        return x, spec
    spatial = [(lo, hi, d - 1) for (lo, hi), d in zip(spec.pads, spec.input_dilation, strict=True)]
    config = spatial_widths(tuple(spatial), spec.layout, none=(0, 0, 0))
    return lax.pad(x, jnp.zeros((), x.dtype), config), spec.spread()


def conv(
    impl: str, x: jax.Array, w: jax.Array, b: jax.Array | None, spec: ConvSpec, *, precision: Precision = None
) -> jax.Array:
    """Runs the convolution ``spec`` describes through the core ``impl`` names. ``"auto"`` runs, on the
    platform the computation is lowered for, the tuning table's winner for the call
    (:mod:`jaxconv.tuning.lookup`), else the core :func:`jaxconv.impls.auto.conv_impl` picks.

    No core takes an input dilation or a crop. A transposed convolution (a spread input at unit stride)
    runs as ordinary convolutions of its phases (:func:`jaxconv.impls.phases.transposed`) under every
    hand-written impl, and under ``auto`` on CPU. Otherwise (and under ``xla``) the input is spread and
    padded first (:func:`spread`).
    """
    pass_ = calls.record("conv", spec, impl, x, w, b)
    if impl != "auto":
        why = REGISTRY[impl].refusal(impl, spec)
        if why is not None:
            raise ValueError(f"conv: {why}")
        return _run(impl, "cpu", x, w, b, spec, precision)
    runs = {
        platform: (lambda x, w, *bias, backend=backend: _run(_tuned_or_auto(backend, "conv", spec, pass_),
                                                             backend, x, w, bias[0] if bias else None,
                                                             spec, precision))
        for platform, backend in BACKEND_OF.items()
    }  # fmt: skip
    return per_platform(runs, x, w, *([] if b is None else [b]))


def _run(impl: str, backend: str, x: jax.Array, w: jax.Array, b: jax.Array | None, spec: ConvSpec,
         precision: Precision) -> jax.Array:  # fmt: skip
    """:func:`conv` for one implementation, or ``auto`` on one backend: phases first where they apply."""
    hand_written = impl not in ("xla", "auto") or (impl == "auto" and backend == "cpu")
    if hand_written and phases.transposes_by_phases(spec):
        y = phases.transposed(x, w, spec, lambda x, w, sub: _run(impl, backend, x, w, None, sub, precision))
        return common.finish(y, b, y.dtype, spec.layout, y_in_layout=True)
    x, spec = spread(x, spec)
    pick = auto.conv_impl(backend, spec) if impl == "auto" else impl
    return REGISTRY[pick].conv(x, w, b, spec=spec, precision=precision)


def _tuned_or_auto(backend: str, op: str, spec: ConvSpec | PoolSpec, pass_: str) -> str:
    """The tuning table's winner for the call on ``backend`` (one this registry has), else ``"auto"``."""
    tuned = lookup.tuned_impl(backend, op, spec, pass_)
    return tuned if tuned in REGISTRY else "auto"


def pool(impl: str, x: jax.Array, spec: PoolSpec) -> jax.Array:
    """Runs the pooling ``spec`` describes (the windows' max, or their sum) through ``impl``'s pooling core;
    ``"auto"`` runs, for the platform lowered for, the tuning table's winner, else the core
    :func:`jaxconv.impls.auto.pool_impl` picks."""
    pass_ = calls.record("pool", spec, impl, x)
    if impl != "auto":
        return REGISTRY[impl].pool(x, spec=spec)
    picks = {}
    for platform, backend in BACKEND_OF.items():
        tuned = _tuned_or_auto(backend, "pool", spec, pass_)
        picks[platform] = auto.pool_impl(backend, spec) if tuned == "auto" else tuned
    runs = {pick: (lambda x, core=REGISTRY[pick].pool: core(x, spec=spec)) for pick in set(picks.values())}
    return per_platform({p: runs[pick] for p, pick in picks.items()}, x)
