"""Training LeNet on Fashion-MNIST with optax: the book's recipe and its modern variant.

Follows Flax's examples: the jitted steps of :mod:`jaxconv.train.steps`, metrics summed on the device
and read once per epoch, and ``train_and_evaluate(config)`` for the CLI and scripts.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import TqdmExperimentalWarning, TqdmWarning

with warnings.catch_warnings():
    # In a notebook without ipywidgets, tqdm.auto warns and falls back to the text bar; the text bar is fine.
    warnings.simplefilter("ignore", (TqdmWarning, TqdmExperimentalWarning))
    from tqdm.auto import tqdm

from jaxconv.train import checkpoint, distributed
from jaxconv.train.config import RESUMABLE, TrainConfig
from jaxconv.train.curves import plot_history
from jaxconv.train.data import FashionMNIST, batch_indices, load_fashion_mnist
from jaxconv.train.steps import Steps, TrainState, create_train_state, eval_step_at, make_steps
from jaxconv.train.tune import tune_steps

CHECK_EVERY = 50  # steps between checks for a diverged (NaN/inf) loss


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


def _summed(metrics: list[dict[str, jax.Array]]) -> dict[str, float]:
    """Loss and accuracy over steps' metrics (each a step's scalars, or several steps' stacked)."""
    total = jax.device_get(
        jax.tree.map(lambda *m: jnp.concatenate([jnp.ravel(v) for v in m]).sum(), *metrics)
    )
    return {
        "loss": float(total["loss_sum"] / total["count"]),
        "acc": float(total["correct"] / total["count"]),
    }


def evaluate(state: TrainState, images: jax.Array, labels: jax.Array, batch_size: int,
             step: Any = eval_step_at) -> dict[str, float]:  # fmt: skip
    """Loss and accuracy over a device-resident set, in batches split over the state's mesh;
    ``step`` is an ``eval_step_at`` (:func:`jaxconv.train.steps.make_steps`)."""
    mesh = _mesh_of(state)
    n = images.shape[0]
    metrics = [
        step(state, images, labels, distributed.put(np.arange(i, min(i + batch_size, n)), mesh, batch_axis=0))
        for i in range(0, n, batch_size)
    ]
    return _summed(metrics)


def _mesh_of(state: TrainState) -> jax.sharding.Mesh:
    sharding = jax.tree.leaves(state.params)[0].sharding
    if not isinstance(sharding, jax.sharding.NamedSharding) or not isinstance(
        sharding.mesh, jax.sharding.Mesh
    ):
        raise ValueError("evaluate: the state must be placed on a mesh (distributed.put)")
    return sharding.mesh


def _check_finite(losses: list[jax.Array], epoch: int, first_step: int, out: Path, last_good: int) -> None:
    """Raises DivergenceError naming the first non-finite batch loss of this epoch, if any."""
    values = np.concatenate([np.ravel(v) for v in jax.device_get(losses)])
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
    sharding = distributed.sharding(_mesh_of(state), batch_axis=0)
    lowered = [
        step.lower(state, images, labels, jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=sharding))
        for step, (images, labels), size in ((steps[0], train, batch_size), (steps[1], test, eval_batch_size))
        for rows in _batch_rows(images.shape[0], size)
    ]
    for low in lowered:
        low.compile()
    return time.perf_counter() - start


def dispatches(batches: Iterator[np.ndarray], batch_size: int, steps: int) -> Iterator[np.ndarray]:
    """The epoch's batches as dispatched: ``steps`` full batches at a time stacked ``(steps, B)``, the
    rest (fewer full ones, the smaller last) one at a time ``(B,)``, in the epoch's order."""
    if steps == 1:
        yield from batches
        return
    pending: list[np.ndarray] = []
    for idx in batches:
        if len(idx) == batch_size:
            pending.append(idx)
            if len(pending) == steps:
                yield np.stack(pending)
                pending = []
            continue
        yield from pending
        pending = []
        yield idx
    yield from pending


@dataclasses.dataclass(frozen=True)
class _Placed:
    """The run's data on the mesh (a copy on every device, so a step only gathers its rows) and its steps."""

    mesh: jax.sharding.Mesh
    train: tuple[jax.Array, jax.Array]
    test: tuple[jax.Array, jax.Array]
    steps: Steps


def _place(config: TrainConfig, data: FashionMNIST) -> _Placed:
    """The datasets (47 MB, small) replicated on the config's mesh, checked to split evenly over it."""
    mesh = distributed.make_mesh(config.devices)
    train_x, train_y, test_x, test_y = (
        distributed.put(a, mesh)
        for a in (
            data.train_images[: config.limit_train],
            data.train_labels[: config.limit_train].astype(np.int32),
            data.test_images[: config.limit_test],
            data.test_labels[: config.limit_test].astype(np.int32),
        )
    )
    distributed.check_divisible(
        mesh, **{f"training batch of {r}": r for r in _batch_rows(train_x.shape[0], config.batch_size)},
        **{f"test batch of {r}": r for r in _batch_rows(test_x.shape[0], config.eval_batch_size)},
    )  # fmt: skip
    return _Placed(mesh, (train_x, train_y), (test_x, test_y), make_steps(config))


def _restore(config: TrainConfig, state: TrainState, out: Path) -> tuple[TrainState, int, list[dict]]:
    """``(state, epochs done, history)``: the checkpoint's with ``config.resume``, else a fresh start."""
    if not config.resume:
        return state, 0, []
    state, done, history, saved = checkpoint.load(out / "checkpoint.msgpack", state)
    # A field newer than the checkpoint is not compared (the checkpoint cannot have set it).
    changed = {
        k: (saved[k], v)
        for k, v in dataclasses.asdict(config).items()
        if k not in RESUMABLE and saved.get(k, v) != v
    }
    if changed:
        raise ValueError(f"train: --resume with a different config than the checkpoint's: {changed}")
    return state, done, history


def _compile_all(config: TrainConfig, state: TrainState, placed: _Placed) -> float:
    """Compiles every step the run will call (the several-steps scan too), before any epoch is timed."""
    seconds = _compile(state, placed.train, placed.test, config.batch_size, config.eval_batch_size,
                       (placed.steps.train, placed.steps.eval))  # fmt: skip
    k = config.steps_per_dispatch
    if k > 1 and placed.train[0].shape[0] // config.batch_size >= k:
        start = time.perf_counter()
        several = jax.ShapeDtypeStruct((k, config.batch_size), jnp.int32,
                                       sharding=distributed.sharding(placed.mesh, batch_axis=1))  # fmt: skip
        placed.steps.train_several.lower(state, *placed.train, several).compile()
        seconds += time.perf_counter() - start
    return seconds


def _train_epoch(config: TrainConfig, state: TrainState, placed: _Placed, epoch: int, out: Path,
                 last_good: int, show: bool) -> tuple[TrainState, dict[str, float]]:  # fmt: skip
    """One epoch of training steps in the epoch's order; the loss and accuracy summed over it. Checks
    for a diverged loss every ``CHECK_EVERY`` steps (a device sync, so not every step)."""
    n_train = placed.train[0].shape[0]
    steps_per_epoch = -(-n_train // config.batch_size)
    first_step, metrics, taken = int(state.step), [], 0
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", leave=False, unit="step",
               disable=not show)  # fmt: skip
    batches = batch_indices(n_train, config.batch_size, config.seed, epoch)
    for idx in dispatches(batches, config.batch_size, config.steps_per_dispatch):
        idx = idx.astype(np.int32)
        if idx.ndim == 2:
            state, m = placed.steps.train_several(
                state, *placed.train, distributed.put(idx, placed.mesh, batch_axis=1)
            )
        else:
            state, m = placed.steps.train(
                state, *placed.train, distributed.put(idx, placed.mesh, batch_axis=0)
            )
        metrics.append(m)
        steps = idx.shape[0] if idx.ndim == 2 else 1
        bar.update(steps)
        taken += steps
        if taken // CHECK_EVERY > (taken - steps) // CHECK_EVERY or taken == steps_per_epoch:
            _check_finite([m["loss_sum"] for m in metrics], epoch, first_step, out, last_good)
    bar.close()
    return state, _summed(metrics)


def train_and_evaluate(config: TrainConfig, data: FashionMNIST | None = None) -> list[dict]:
    """Trains, evaluating after each epoch; writes ``history.json``, ``curves.png`` and
    ``checkpoint.msgpack`` under ``config.out``. Returns the history (one dict per epoch).

    Raises:
      DivergenceError: the loss became NaN/inf (the last good checkpoint stays on disk).
      FileNotFoundError / ValueError: ``resume`` without a compatible checkpoint.
    """
    out, main = Path(config.out), distributed.is_main_process()
    placed = _place(config, data or load_fashion_mnist(config.data_dir))
    n_train = placed.train[0].shape[0]
    state = create_train_state(config, steps_per_epoch=-(-n_train // config.batch_size))
    state, done, history = _restore(config, state, out)
    state = jax.tree.map(lambda a: distributed.put(np.asarray(a), placed.mesh), state)
    if config.tune:  # before the steps compile, so that they compile with the winners
        start = time.perf_counter()
        report = tune_steps(config, train_examples=n_train, test_examples=placed.test[0].shape[0])
        _say(main, f"{report}\ntuned auto's picks in {time.perf_counter() - start:.1f} s")
    compile_seconds = _compile_all(config, state, placed)
    _say(main, f"compiled train and eval steps in {compile_seconds:.2f} s on {placed.mesh.size} device(s)")
    for epoch in range(done + 1, config.epochs + 1):
        start = time.perf_counter()
        state, train = _train_epoch(config, state, placed, epoch, out, done, config.progress and main)
        train_seconds = time.perf_counter() - start
        test = evaluate(state, *placed.test, config.eval_batch_size, placed.steps.eval)
        history.append({
            "epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"], "test_acc": test["acc"],
            "test_loss": test["loss"], "images_per_second": n_train / train_seconds,
            "epoch_seconds": time.perf_counter() - start,
        })  # fmt: skip
        if main:
            checkpoint.save(out / "checkpoint.msgpack", jax.device_get(state), epoch=epoch, history=history,
                            config=dataclasses.asdict(config))  # fmt: skip
        done, h = epoch, history[-1]
        _say(main, f"epoch {epoch:>2}: loss {h['train_loss']:.3f}, train acc {h['train_acc']:.3f}, "
                   f"test acc {h['test_acc']:.3f}, {h['images_per_second']:,.0f} img/s, "
                   f"{h['epoch_seconds']:.1f} s")  # fmt: skip
    if main:
        _write_results(config, out, history, compile_seconds, placed.mesh)
    return history


def _say(main: bool, line: str) -> None:
    """Prints on the main process only: one process speaks for all."""
    if main:
        print(line, flush=True)


def _write_results(config: TrainConfig, out: Path, history: list[dict], compile_seconds: float,
                   mesh: jax.sharding.Mesh) -> None:  # fmt: skip
    """``history.json`` (the config, compile time, devices and every epoch) and the book's plot."""
    run = {
        "config": dataclasses.asdict(config),
        "compile_seconds": compile_seconds,
        "devices": [str(d) for d in mesh.devices.flat],
        "processes": jax.process_count(),
        "epochs": history,
    }
    (out / "history.json").write_text(json.dumps(run, indent=2))
    if history:
        plot_history(
            history, out / "curves.png", title=f"LeNet {config.variant}, {config.optimizer} lr {config.lr}"
        )
