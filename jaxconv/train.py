"""Training LeNet on Fashion-MNIST with optax: the book's recipe and its modern variant.

Follows Flax's examples: a ``TrainState``, a jitted ``train_step(state, batch) -> (state, metrics)``
with gradients and the optimizer update in one jit region, a jitted ``eval_step``, metrics summed
on the device and read once per epoch, and ``train_and_evaluate(config)`` for the CLI and scripts.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state
from tqdm.auto import tqdm

from jaxconv import checkpoint, distributed, xla_options
from jaxconv._checks import IMPL_CHOICES, LAYOUTS
from jaxconv.curves import plot_history
from jaxconv.data import FashionMNIST, batch_indices, load_fashion_mnist
from jaxconv.nn.lenet import VARIANTS, LeNet

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
# Fields that may change between a run and its resumption.
RESUMABLE = ("epochs", "resume", "progress", "data_dir", "out", "devices")
CHECK_EVERY = 50  # steps between checks for a diverged (NaN/inf) loss


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. The defaults are the book's recipe: classic LeNet, SGD lr 0.9, batch 256,
    10 epochs."""

    variant: str = "classic"
    impl: str = "auto"
    # Both layouts start from the same weights and compute the same function; NHWC is faster on CPU.
    layout: str = "NHWC"
    batch_norm: bool = False
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

    def __post_init__(self) -> None:
        for name, choices in (("variant", VARIANTS), ("impl", IMPL_CHOICES), ("layout", LAYOUTS),
                              ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):  # fmt: skip
            if getattr(self, name) not in choices:
                raise ValueError(f"TrainConfig: {name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
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
        return LeNet(self.variant, impl=self.impl, layout=self.layout, batch_norm=self.batch_norm)


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


class TrainState(train_state.TrainState):
    """Flax's ``TrainState`` plus batch-norm statistics (None without batch norm) and the layout."""

    batch_stats: Any = None
    layout: str = struct.field(pytree_node=False, default="NCHW")


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


def create_train_state(config: TrainConfig, steps_per_epoch: int) -> TrainState:
    model = config.model()
    dummy = jnp.zeros((1, 1, 28, 28) if config.layout == "NCHW" else (1, 28, 28, 1), jnp.float32)
    variables = model.init(jax.random.key(config.seed), dummy)
    return TrainState.create(
        apply_fn=model.apply,
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


# jaxconv's XLA options with each dot alone: 1.03-1.16x faster LeNet steps than with YNNPACK's
# elementwise fusions (xla_options' doc).
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


# Compiled with jaxconv's XLA options (xla_options) or with XLA's defaults: steps_for(config) picks.
train_step_at = _step_jit(_train_step_at)
eval_step_at = _step_jit(_eval_step_at)
_PLAIN_STEPS = (jax.jit(_train_step_at), jax.jit(_eval_step_at))


def steps_for(config: TrainConfig) -> tuple[Any, Any]:
    """``(train_step_at, eval_step_at)`` as ``config.cpu_compiler_options`` compiles them."""
    return (train_step_at, eval_step_at) if config.cpu_compiler_options else _PLAIN_STEPS


def step_compiler_options(config: TrainConfig) -> dict[str, str]:
    """The XLA options :func:`steps_for` ``(config)`` compiles with on JAX's default backend (``{}``:
    XLA's defaults), for records of a run."""
    if not config.cpu_compiler_options:
        return {}
    return xla_options.compiler_options(fuse_elementwise=train_step_at.fuse_elementwise)


def _summed(metrics: list[dict[str, jax.Array]]) -> dict[str, float]:
    total = jax.device_get(jax.tree.map(lambda *m: jnp.stack(m).sum(), *metrics))
    return {
        "loss": float(total["loss_sum"] / total["count"]),
        "acc": float(total["correct"] / total["count"]),
    }


def evaluate(state: TrainState, images: jax.Array, labels: jax.Array, batch_size: int,
             step: Any = eval_step_at) -> dict[str, float]:  # fmt: skip
    """Loss and accuracy over a device-resident set, in batches split over the state's mesh;
    ``step`` is an ``eval_step_at`` (:func:`steps_for`)."""
    mesh = _mesh_of(state)
    n = images.shape[0]
    metrics = [
        step(state, images, labels, distributed.put_batch(np.arange(i, min(i + batch_size, n)), mesh))
        for i in range(0, n, batch_size)
    ]
    return _summed(metrics)


def _mesh_of(state: TrainState) -> jax.sharding.Mesh:
    sharding = jax.tree.leaves(state.params)[0].sharding
    if not isinstance(sharding, jax.sharding.NamedSharding) or not isinstance(
        sharding.mesh, jax.sharding.Mesh
    ):
        raise ValueError("evaluate: the state must be placed on a mesh (distributed.put_replicated)")
    return sharding.mesh


def _check_finite(losses: list[jax.Array], epoch: int, first_step: int, out: Path, last_good: int) -> None:
    """Raises DivergenceError naming the first non-finite batch loss of this epoch, if any."""
    values = np.asarray(jax.device_get(losses))
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        batch = int(bad[0]) + 1
        kept = (
            f"the last good checkpoint (epoch {last_good}) is kept at {out / 'checkpoint.msgpack'}"
            if last_good
            else "no checkpoint was written"
        )
        raise DivergenceError(
            f"training diverged: loss is {values[bad[0]]} at epoch {epoch}, step {first_step + batch} "
            f"(batch {batch} of the epoch); {kept}. Try a smaller --lr."
        )


def _batch_rows(n: int, batch_size: int) -> set[int]:
    """The batch sizes an epoch over ``n`` examples produces: full batches and the remainder."""
    return {min(batch_size, n), n % batch_size} - {0}


def _compile(state: TrainState, train: tuple[jax.Array, jax.Array], test: tuple[jax.Array, jax.Array],
             batch_size: int, eval_batch_size: int, steps: tuple[Any, Any]) -> float:  # fmt: skip
    """Compiles the steps for every batch shape they will see, so epoch timings exclude compilation.

    Returns the seconds it took. ``jit``'s cache keeps the executables for the loop's calls.
    """
    start = time.perf_counter()
    sharding = distributed.batch_sharding(_mesh_of(state))
    lowered = [
        step.lower(state, images, labels, jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=sharding))
        for step, (images, labels), size in ((steps[0], train, batch_size), (steps[1], test, eval_batch_size))
        for rows in _batch_rows(images.shape[0], size)
    ]
    for low in lowered:
        low.compile()
    return time.perf_counter() - start


def train_and_evaluate(config: TrainConfig, data: FashionMNIST | None = None) -> list[dict]:
    """Trains, evaluating after each epoch; writes ``history.json``, ``curves.png`` and
    ``checkpoint.msgpack`` under ``config.out``. Returns the history (one dict per epoch).

    Raises:
      DivergenceError: the loss became NaN/inf (the last good checkpoint stays on disk).
      FileNotFoundError / ValueError: ``resume`` without a compatible checkpoint.
    """
    data = data or load_fashion_mnist(config.data_dir)
    out = Path(config.out)
    mesh = distributed.make_mesh(config.devices)
    # The datasets are small (47 MB): a copy on every device, so a step only gathers its rows.
    train_x, train_y, test_x, test_y = (
        distributed.put_replicated(a, mesh)
        for a in (
            data.train_images[: config.limit_train],
            data.train_labels[: config.limit_train].astype(np.int32),
            data.test_images[: config.limit_test],
            data.test_labels[: config.limit_test].astype(np.int32),
        )
    )
    n_train, n_test = train_x.shape[0], test_x.shape[0]
    distributed.check_divisible(
        mesh, **{f"training batch of {r}": r for r in _batch_rows(n_train, config.batch_size)},
        **{f"test batch of {r}": r for r in _batch_rows(n_test, config.eval_batch_size)},
    )  # fmt: skip
    steps_per_epoch = -(-n_train // config.batch_size)
    state = create_train_state(config, steps_per_epoch)
    config_dict = dataclasses.asdict(config)
    history: list[dict] = []
    done = 0
    if config.resume:
        state, done, history, saved = checkpoint.load(out / "checkpoint.msgpack", state)
        # A field newer than the checkpoint is not compared (the checkpoint cannot have set it).
        changed = {
            k: (saved[k], v) for k, v in config_dict.items() if k not in RESUMABLE and saved.get(k, v) != v
        }
        if changed:
            raise ValueError(f"train: --resume with a different config than the checkpoint's: {changed}")

    state = jax.tree.map(lambda a: distributed.put_replicated(np.asarray(a), mesh), state)
    main = distributed.is_main_process()

    def say(line: str) -> None:  # one process speaks for all
        if main:
            print(line, flush=True)

    train_step_fn, eval_step_fn = steps_for(config)
    compile_seconds = _compile(state, (train_x, train_y), (test_x, test_y), config.batch_size,
                               config.eval_batch_size, (train_step_fn, eval_step_fn))  # fmt: skip
    say(f"compiled train and eval steps in {compile_seconds:.2f} s on {mesh.size} device(s)")
    for epoch in range(done + 1, config.epochs + 1):
        start, first_step = time.perf_counter(), int(state.step)
        metrics = []
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", leave=False, unit="step",
                   disable=not (config.progress and main))  # fmt: skip
        for i, idx in enumerate(batch_indices(n_train, config.batch_size, config.seed, epoch), start=1):
            state, m = train_step_fn(
                state, train_x, train_y, distributed.put_batch(idx.astype(np.int32), mesh)
            )
            metrics.append(m)
            bar.update()
            if i % CHECK_EVERY == 0 or i == steps_per_epoch:  # a device sync, so not every step
                _check_finite([m["loss_sum"] for m in metrics], epoch, first_step, out, done)
        bar.close()
        train = _summed(metrics)
        train_seconds = time.perf_counter() - start
        test = evaluate(state, test_x, test_y, config.eval_batch_size, eval_step_fn)
        history.append({
            "epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"], "test_acc": test["acc"],
            "test_loss": test["loss"], "images_per_second": n_train / train_seconds,
            "epoch_seconds": time.perf_counter() - start,
        })  # fmt: skip
        if main:
            checkpoint.save(out / "checkpoint.msgpack", jax.device_get(state), epoch=epoch, history=history,
                            config=config_dict)  # fmt: skip
        done = epoch
        h = history[-1]
        say(
            f"epoch {epoch:>2}: loss {h['train_loss']:.3f}, train acc {h['train_acc']:.3f}, "
            f"test acc {h['test_acc']:.3f}, {h['images_per_second']:,.0f} img/s, {h['epoch_seconds']:.1f} s"
        )
    run = {
        "config": config_dict,
        "compile_seconds": compile_seconds,
        "devices": [str(d) for d in mesh.devices.flat],
        "processes": jax.process_count(),
        "epochs": history,
    }
    if not main:
        return history
    (out / "history.json").write_text(json.dumps(run, indent=2))
    if history:
        plot_history(
            history, out / "curves.png", title=f"LeNet {config.variant}, {config.optimizer} lr {config.lr}"
        )
    return history
