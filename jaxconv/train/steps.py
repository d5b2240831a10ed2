"""The jitted training and evaluation steps: a Flax ``TrainState``, ``train_step(state, batch) -> (state,
metrics)`` with gradients and the optimizer update in one jit region, and ``eval_step``.

Both compile with jaxconv's XLA options on CPU (:mod:`jaxconv.xla_options`) unless the config asks
for XLA's defaults (:func:`make_steps`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state
from jax import lax

from jaxconv import xla_options
from jaxconv.train.config import TrainConfig, make_optimizer


class TrainState(train_state.TrainState):
    """Flax's ``TrainState`` plus batch-norm statistics (None without batch norm) and the layout."""

    batch_stats: Any = None
    layout: str = struct.field(pytree_node=False, default="NCHW")


def create_train_state(config: TrainConfig, steps_per_epoch: int) -> TrainState:
    """The initial state of a run: the model's variables (Linen or NNX, :meth:`TrainConfig.init`), its
    apply function and the optimizer's state."""
    apply_fn, variables = config.init()
    return TrainState.create(
        apply_fn=apply_fn,
        params=variables["params"],
        tx=make_optimizer(config, steps_per_epoch),
        batch_stats=variables.get("batch_stats"),
        layout=config.layout,
    )


def _images(state: TrainState, images: jax.Array) -> jax.Array:
    """``uint8 (B, 28, 28)`` -> float32 in [0, 1], in the model's layout (like ToTensor)."""
    x = images.astype(jnp.float32) / 255.0
    return x[:, None] if state.layout == "NCHW" else x[..., None]


def _metrics(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
        "loss_sum": losses.sum(),
        "correct": (logits.argmax(-1) == labels).sum(),
        "count": jnp.asarray(labels.shape[0]),
    }


# jaxconv's XLA options with each dot alone: faster LeNet steps than with YNNPACK's elementwise
# fusions (xla_options' doc, docs/performance.md).
_step_jit = functools.partial(xla_options.jit, fuse_elementwise=False)


@_step_jit
def train_step(state: TrainState, batch: tuple[jax.Array, jax.Array]) -> tuple[TrainState, dict]:
    """One SGD step on ``batch = (images uint8 (B, 28, 28), labels int32 (B,))``."""
    images, labels = batch
    x = _images(state, images)

    def loss_fn(params):
        if state.batch_stats is None:
            logits, updates = state.apply_fn({"params": params}, x, train=True), {}
        else:
            variables = {"params": params, "batch_stats": state.batch_stats}
            logits, updates = state.apply_fn(variables, x, train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, (logits, updates)

    (_, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    if updates:
        state = state.replace(batch_stats=updates["batch_stats"])
    return state, _metrics(logits, labels)


@_step_jit
def eval_step(state: TrainState, batch: tuple[jax.Array, jax.Array]) -> dict[str, jax.Array]:
    images, labels = batch
    variables = {"params": state.params}
    if state.batch_stats is not None:
        variables["batch_stats"] = state.batch_stats
    return _metrics(state.apply_fn(variables, _images(state, images), train=False), labels)


def _train_step_at(
    state: TrainState, images: jax.Array, labels: jax.Array, idx: jax.Array
) -> tuple[TrainState, dict]:
    """:func:`train_step` on the rows ``idx`` of the device-resident training set: the gather
    and the step are one executable, one dispatch per step."""
    return train_step(state, (images[idx], labels[idx]))


def _eval_step_at(
    state: TrainState, images: jax.Array, labels: jax.Array, idx: jax.Array
) -> dict[str, jax.Array]:
    """:func:`eval_step` on the rows ``idx`` of a device-resident set."""
    return eval_step(state, (images[idx], labels[idx]))


def _train_steps_at(
    state: TrainState, images: jax.Array, labels: jax.Array, idx: jax.Array
) -> tuple[TrainState, dict]:
    """:func:`train_step` on each row of ``idx (steps, B)`` in turn, one ``lax.scan`` in one dispatch;
    the metrics stacked ``(steps,)``. The same steps as ``steps`` calls of :func:`_train_step_at`."""
    return lax.scan(lambda s, i: _train_step_at(s, images, labels, i), state, idx)


class Steps(NamedTuple):
    """A run's jitted steps, all on the rows ``idx`` of device-resident images and labels."""

    train: Any  # train(state, images, labels, idx (B,)) -> (state, metrics)
    eval: Any  # eval(state, images, labels, idx (B,)) -> metrics
    train_several: Any  # train_several(state, images, labels, idx (steps, B)): a lax.scan, one dispatch


# Compiled with jaxconv's XLA options (xla_options) or with XLA's defaults, as a plain Flax script is.
_TUNED = Steps(_step_jit(_train_step_at), _step_jit(_eval_step_at), _step_jit(_train_steps_at))
_PLAIN = Steps(jax.jit(_train_step_at), jax.jit(_eval_step_at), jax.jit(_train_steps_at))
train_step_at, eval_step_at, train_steps_at = _TUNED


def make_steps(config: TrainConfig) -> Steps:
    """The jitted steps ``config`` trains with: compiled with jaxconv's CPU options
    (``config.cpu_compiler_options``) or with XLA's defaults. The same objects for every config of one
    kind, so their compilations are shared."""
    return _TUNED if config.cpu_compiler_options else _PLAIN


def step_compiler_options(config: TrainConfig) -> dict[str, str]:
    """The XLA options :func:`make_steps` ``(config)`` compiles with on JAX's default backend (``{}``:
    XLA's defaults), for records of a run."""
    if not config.cpu_compiler_options:
        return {}
    return xla_options.compiler_options(fuse_elementwise=train_step_at.fuse_elementwise)
