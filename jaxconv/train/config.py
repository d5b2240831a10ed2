"""What a training run is: :class:`TrainConfig` (the book's recipe by default) and the optax optimizer it
names."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import nnx

from jaxconv._checks import LAYOUTS
from jaxconv.impls import IMPL_CHOICES
from jaxconv.nnx.functional import functional
from jaxconv.train.models import MODELS

# The Flax API the model is written in: both train through the same loop (jaxconv.nnx.functional).
APIS = ("linen", "nnx")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
# Fields that may change between a run and its resumption.
RESUMABLE = ("epochs", "resume", "progress", "data_dir", "out", "devices", "steps_per_dispatch", "tune")


def _field(default: Any, help: str, **cli: Any) -> Any:
    """A config field with its command-line help (and, in ``cli``, how ``jaxconv train`` spells it)."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. The defaults are the book's recipe: classic LeNet, SGD lr 0.9, batch 256,
    10 epochs. Each field's help is its ``jaxconv train`` flag's (:func:`jaxconv.cli.main`)."""

    variant: str = _field("classic", "the model (jaxconv.train.models.MODELS)")
    impl: str = _field("auto", "convolution implementation")
    # Both layouts start from the same weights and compute the same function; NHWC is faster on CPU.
    layout: str = _field("NHWC", "the arrays' layout (both start from the same weights)")
    batch_norm: bool = _field(False, "batch norm (modern variant only)")
    api: str = _field("linen", "the Flax API of the model (same loop, same weights)")
    epochs: int = _field(10, "epochs to train")
    batch_size: int = _field(256, "training batch size")
    optimizer: str = _field("sgd", "the optax optimizer")
    lr: float = _field(0.9, "learning rate")
    momentum: float = _field(0.0, "SGD momentum")
    weight_decay: float = _field(1e-4, "AdamW weight decay")
    schedule: str = _field("constant", "learning-rate schedule")
    seed: int = _field(0, "random seed of the weights and the batch order")
    limit_train: int | None = _field(None, "use only the first N training images")
    limit_test: int | None = _field(None, "use only the first N test images")
    eval_batch_size: int = _field(1000, "evaluation batch size")
    data_dir: str | None = _field(None, "folder holding the four Fashion-MNIST .gz files")
    out: str = _field(
        "runs/lenet", "output folder", cli_default=None, cli_help="output folder (default runs/lenet-VARIANT)"
    )
    resume: bool = _field(False, "continue from OUT/checkpoint.msgpack")
    progress: bool = _field(True, "a progress bar", flag="--no-progress", cli_help="no progress bar")
    devices: int | None = _field(None, "train data-parallel over this many devices (default: all JAX sees)",
                                 group="scale-out")  # fmt: skip
    # The steps compiled with jaxconv's XLA options on CPU (xla_options.CPU_OPTIONS_SEPARATE_DOTS);
    # False: XLA's defaults, as a plain Flax script gets.
    cpu_compiler_options: bool = _field(
        True, "compile the steps with jaxconv's CPU options", flag="--xla-defaults",
        cli_help="compile the steps with XLA's default options, not jaxconv's CPU ones",
    )  # fmt: skip
    # Training steps per dispatch: >1 runs that many full batches as one lax.scan, the same steps with
    # less launch overhead per step (meant for accelerators, where a LeNet step is microseconds).
    steps_per_dispatch: int = _field(1, "training steps per dispatch (a lax.scan; for accelerators)")
    # impl="auto" picks from a measurement of this run's own calls on this machine, kept in the tuning
    # table for the next run (jaxconv.tune; docs/guide/tuning.md).
    tune: bool = _field(False, "first time auto's candidates for the steps' calls here (jaxconv.tune)")

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices():
                raise ValueError(
                    f"TrainConfig: {name} must be one of {tuple(choices())}, got {getattr(self, name)!r}"
                )
        for name in ("epochs", "batch_size", "eval_batch_size", "steps_per_dispatch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig: {name} must be an int >= 1, got {getattr(self, name)!r}")
        for name in ("limit_train", "limit_test", "devices"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"TrainConfig: {name} must be None or >= 1, got {getattr(self, name)!r}")
        if not 0 < self.lr < float("inf"):
            raise ValueError(f"TrainConfig: lr must be finite and > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"TrainConfig: momentum must be in [0, 1), got {self.momentum!r}")
        for name in ("batch_norm", "resume", "progress", "cpu_compiler_options", "tune"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TrainConfig: {name} must be a bool, got {getattr(self, name)!r}")
        if self.batch_norm and not MODELS[self.variant].batch_norm:
            with_it = tuple(name for name, model in MODELS.items() if model.batch_norm)
            raise ValueError(f"TrainConfig: batch_norm needs variant={with_it[0]!r}" if len(with_it) == 1
                             else f"TrainConfig: batch_norm needs a variant of {with_it}")  # fmt: skip

    def model(self) -> nn.Module:
        """The Linen model this config trains (with ``api="nnx"``: the same network in NNX, :meth:`init`)."""
        return MODELS[self.variant].linen(impl=self.impl, layout=self.layout, batch_norm=self.batch_norm)

    def init(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """``(apply_fn, variables)``: the model as a pure function with Linen's contract and its initial
        variables, in the config's Flax ``api``. A seed gives the same initial weights in both APIs (the
        NNX model is loaded with the Linen model's draw), so a run reproduces across them."""
        linen = self.model()
        shape = (1, 1, 28, 28) if self.layout == "NCHW" else (1, 28, 28, 1)
        variables = dict(linen.init(jax.random.key(self.seed), jnp.zeros(shape, jnp.float32)))
        if self.api == "linen":
            return LinenApply(linen), variables
        entry = MODELS[self.variant]
        if entry.nnx is None or entry.from_linen is None:
            raise ValueError(f"TrainConfig: variant {self.variant!r} has no NNX form; use api='linen'")
        model = entry.nnx(
            impl=self.impl, layout=self.layout, batch_norm=self.batch_norm, rngs=nnx.Rngs(self.seed)
        )
        return functional(entry.from_linen(model, variables))


@dataclasses.dataclass(frozen=True)
class LinenApply:
    """``module.apply``, equal and hashing alike for equal modules: a jitted step takes the apply function
    as a static argument (``TrainState.apply_fn``), so two runs of one model in a process share its
    compilation, where two bound methods ``module.apply`` never compare equal."""

    module: nn.Module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.apply(*args, **kwargs)


# The fields with a fixed set of values, each read when checked (a model or impl registered later counts).
CHOICES: dict[str, Callable[[], Sequence[str]]] = {
    "variant": lambda: tuple(MODELS),
    "impl": lambda: IMPL_CHOICES,
    "layout": lambda: LAYOUTS,
    "optimizer": lambda: OPTIMIZERS,
    "schedule": lambda: SCHEDULES,
    "api": lambda: APIS,
}


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax optimizer and learning-rate schedule the config names.

    The same settings give the same object: a jitted step takes it as a static argument
    (``TrainState.tx``), so runs with one recipe share their compilation."""
    total = 0 if config.schedule == "constant" else config.epochs * steps_per_epoch  # constant: unused
    return _optimizer(config.optimizer, config.lr, config.momentum, config.weight_decay, config.schedule,
                      total, steps_per_epoch)  # fmt: skip


@functools.cache
def _optimizer(name: str, lr: float, momentum: float, weight_decay: float, schedule: str, total: int,
               steps_per_epoch: int) -> optax.GradientTransformation:  # fmt: skip
    if schedule == "constant":
        rate: optax.ScalarOrSchedule = lr
    elif schedule == "cosine":
        rate = optax.cosine_decay_schedule(lr, decay_steps=total)
    else:
        rate = optax.warmup_cosine_decay_schedule(0.0, lr, steps_per_epoch, decay_steps=total)
    if name == "sgd":
        return optax.sgd(rate, momentum=momentum or None)
    if name == "adam":
        return optax.adam(rate)
    return optax.adamw(rate, weight_decay=weight_decay)
