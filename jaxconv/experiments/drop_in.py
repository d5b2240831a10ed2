"""Your model, our convolutions: the CNN of Flax's NNX MNIST tutorial, trained on Fashion-MNIST with stock
``nnx.Conv`` and then with each jaxconv impl plugged into the same layers (``conv_general_dilated=``).

Every contestant starts from the same weights and sees the same batches: the loss curves overlay (same
numbers), and each training step is timed in interleaved rounds (how fast). Steps are compiled with a
plain ``jax.jit``, as the tutorial's user would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx
from jax import lax

import jaxconv as jc
from jaxconv.bench.model_race import CNN
from jaxconv.experiments.common import save
from jaxconv.timing.rounds import paired_speedups, round_orders
from jaxconv.train.data import load_fashion_mnist

STOCK = "stock nnx.Conv (lax)"


def _contestants(impls: tuple[str, ...]) -> dict[str, Callable[..., jax.Array]]:
    return {STOCK: lax.conv_general_dilated} | {
        f"jaxconv {impl}": partial(jc.conv_general_dilated, impl=impl) for impl in impls
    }


def _trainer(
    conv: Callable[..., jax.Array], tx: optax.GradientTransformation, seed: int
) -> tuple[Callable, Any]:
    """A jitted ``step(carry, x, y) -> (carry, loss)`` for the CNN with ``conv`` inside, and its first carry."""
    graphdef, params = nnx.split(CNN(conv, rngs=nnx.Rngs(seed)))

    def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, params)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(carry: tuple, x: jax.Array, y: jax.Array) -> tuple[tuple, jax.Array]:
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step, (params, tx.init(params))


def run(out: Path, fast: bool = False) -> dict:
    steps, rounds, timed_steps = (20, 3, 2) if fast else (300, 12, 10)
    batch, seed = 128, 0
    impls = ("auto", "im2col", "banded") if fast else ("auto", "im2col", "shift_add", "banded", "winograd")
    data = load_fashion_mnist()
    images = jnp.asarray(data.train_images[..., None], jnp.float32) / 255.0  # NHWC, as the tutorial
    labels = jnp.asarray(data.train_labels.astype(np.int32))
    order = np.random.default_rng(seed).permutation(len(images))[: steps * batch].reshape(steps, batch)
    batches = [(images[i], labels[i]) for i in order]
    tx = optax.adamw(0.005, 0.9)  # the tutorial's optimizer
    # std promotion: optax mixes Python floats with int32 step counts
    with jax.numpy_dtype_promotion("standard"):
        trainers = {name: _trainer(conv, tx, seed) for name, conv in _contestants(impls).items()}
        losses: dict[str, list[float]] = {}
        for name, (step, carry) in trainers.items():
            curve = []
            for x, y in batches:
                carry, loss = step(carry, x, y)
                curve.append(loss)
            losses[name] = [float(v) for v in jax.device_get(curve)]
            print(f"{name}: loss {losses[name][0]:.3f} -> {losses[name][-1]:.3f} after {steps} steps")
        seconds: dict[str, list[float]] = {name: [] for name in trainers}
        carries = {name: carry for name, (_, carry) in trainers.items()}
        for round_names in round_orders(list(trainers), rounds):  # each behind every other equally often
            for name in round_names:
                step, carry = trainers[name][0], carries[name]
                start = time.perf_counter()
                for x, y in batches[:timed_steps]:
                    carry, _ = step(carry, x, y)
                jax.block_until_ready(carry)
                seconds[name].append((time.perf_counter() - start) / timed_steps)
                carries[name] = carry
    step_ms = {name: 1e3 * float(np.median(s)) for name, s in seconds.items()}
    speedups = {name: paired_speedups(seconds[STOCK], s) for name, s in seconds.items() if name != STOCK}
    stock = np.asarray(losses[STOCK])
    numbers = {
        "steps": steps, "batch": batch, "rounds": rounds, "timed_steps_per_round": timed_steps,
        "device": str(jax.devices()[0]), "losses": losses, "step_ms": step_ms,
        "speedup_vs_stock": speedups,
        "max_loss_difference_vs_stock": {n: float(np.abs(np.asarray(v) - stock).max()) for n, v in losses.items()},
    }  # fmt: skip
    for name, ms in step_ms.items():
        spread = speedups.get(name)
        vs = f", {spread['median']:.2f}x stock ({spread['q25']:.2f}-{spread['q75']:.2f})" if spread else ""
        print(f"{name:<22} {ms:7.2f} ms/step{vs}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, curve in losses.items():
        left.plot(curve, label=name, lw=1)
    left.set(xlabel="step", ylabel="training loss", title=f"the same CNN, {steps} steps of batch {batch}")
    left.legend(fontsize=7)
    right.barh(list(step_ms), list(step_ms.values()), color=["tab:gray"] + ["tab:blue"] * len(impls))
    right.invert_yaxis()
    right.set(xlabel="ms per training step (median of the rounds)", title="step time")
    return save(out, "drop_in", numbers, fig)
