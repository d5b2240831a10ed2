"""What a training run is: :class:`TrainConfig` (the book's recipe by default) and the optax optimizer it
names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxconv._checks import LAYOUTS
from jaxconv.impls import IMPL_CHOICES
from jaxconv.nn.lenet import VARIANTS, LeNet
from jaxconv.nnx.functional import functional
from jaxconv.nnx.lenet import LeNet as NNXLeNet
from jaxconv.nnx.lenet import set_linen_variables

# The Flax API the model is written in: both train through the same loop (jaxconv.nnx.functional).
APIS = ("linen", "nnx")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
# Fields that may change between a run and its resumption.
RESUMABLE = ("epochs", "resume", "progress", "data_dir", "out", "devices", "steps_per_dispatch")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. The defaults are the book's recipe: classic LeNet, SGD lr 0.9, batch 256,
    10 epochs."""

    variant: str = "classic"
    impl: str = "auto"
    # Both layouts start from the same weights and compute the same function; NHWC is faster on CPU.
    layout: str = "NHWC"
    batch_norm: bool = False
    api: str = "linen"
    epochs: int = 10
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.9
    momentum: float = 0.0
    weight_decay: float = 1e-4
    schedule: str = "constant"
    seed: int = 0
    limit_train: int | None = None  # use only the first N training images (tests, quick looks)
    limit_test: int | None = None
    eval_batch_size: int = 1000
    data_dir: str | None = None
    out: str = "runs/lenet"
    resume: bool = False
    progress: bool = True
    devices: int | None = None  # data-parallel over this many devices (None: all JAX sees)
    # The steps compiled with jaxconv's XLA options on CPU (xla_options.CPU_OPTIONS_SEPARATE_DOTS);
    # False: XLA's defaults, as a plain Flax script gets.
    cpu_compiler_options: bool = True
    # Training steps per dispatch: >1 runs that many full batches as one lax.scan, the same steps with
    # less launch overhead per step (meant for accelerators, where a LeNet step is microseconds).
    steps_per_dispatch: int = 1

    def __post_init__(self) -> None:
        for name, choices in (("variant", VARIANTS), ("impl", IMPL_CHOICES), ("layout", LAYOUTS),
                              ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("api", APIS)):  # fmt: skip
            if getattr(self, name) not in choices:
                raise ValueError(f"TrainConfig: {name} must be one of {choices}, got {getattr(self, name)!r}")
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
        for name in ("batch_norm", "resume", "progress", "cpu_compiler_options"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TrainConfig: {name} must be a bool, got {getattr(self, name)!r}")
        if self.batch_norm and self.variant != "modern":
            raise ValueError("TrainConfig: batch_norm needs variant='modern'")

    def model(self) -> LeNet:
        """The Linen LeNet this config trains (with ``api="nnx"``: the same network in NNX, :meth:`init`)."""
        return LeNet(self.variant, impl=self.impl, layout=self.layout, batch_norm=self.batch_norm)

    def init(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """``(apply_fn, variables)``: the model as a pure function with Linen's contract and its initial
        variables, in the config's Flax ``api``. A seed gives the same initial weights in both APIs (the
        NNX model is loaded with the Linen model's draw), so a run reproduces across them."""
        linen = self.model()
        shape = (1, 1, 28, 28) if self.layout == "NCHW" else (1, 28, 28, 1)
        variables = dict(linen.init(jax.random.key(self.seed), jnp.zeros(shape, jnp.float32)))
        if self.api == "linen":
            return linen.apply, variables
        model = NNXLeNet(self.variant, impl=self.impl, layout=self.layout, batch_norm=self.batch_norm,
                         rngs=nnx.Rngs(self.seed))  # fmt: skip
        return functional(set_linen_variables(model, variables))


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax optimizer and learning-rate schedule the config names."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        lr: optax.ScalarOrSchedule = config.lr
    elif config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.lr, decay_steps=total)
    else:
        lr = optax.warmup_cosine_decay_schedule(0.0, config.lr, steps_per_epoch, decay_steps=total)
    if config.optimizer == "sgd":
        return optax.sgd(lr, momentum=config.momentum or None)
    if config.optimizer == "adam":
        return optax.adam(lr)
    return optax.adamw(lr, weight_decay=config.weight_decay)
