"""Is a tuned ``auto`` worth it? A model's training step under the tuned ``auto``, the rule's ``auto`` and
each single impl, raced in interleaved rounds.

``python -m jaxconv.bench.tuned_race --model lenet_classic|lenet_modern|nnx_tutorial|resnet18 [--rounds R]``

* ``lenet_classic``, ``lenet_modern``: jaxconv's LeNet recipes (:class:`jaxconv.nn.LeNet`, NHWC, batch
  256, SGD), compiled with ``jaxconv train``'s XLA options, which the tuner also compiles with;
* ``nnx_tutorial``: the CNN of Flax's NNX MNIST tutorial (:class:`jaxconv.bench.model_race.CNN`) with
  ``jc.conv_general_dilated`` plugged into its ``nnx.Conv`` layers, batch 128, AdamW, a plain ``jax.jit``;
* ``resnet18``: ResNet-18 in the form of Flax's ImageNet example (:mod:`jaxconv.bench.model_race`),
  64x64 images, batch 32, SGD with momentum, a plain ``jax.jit``.

The step is tuned first (:func:`jaxconv.tune` into a fresh table under ``--out``, its seconds recorded),
then every contestant is compiled ahead of time: ``rule`` under the hand-written rule alone, ``tuned``
reading the table, and one per impl. The result holds each median, the per-round ratios of ``tuned``
against ``rule`` and against the fastest single impl, and the tuner's report.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

import jaxconv as jc
from jaxconv import xla_options
from jaxconv.bench import model_race
from jaxconv.impls import IMPLS, INTERPRETED_ON_CPU
from jaxconv.nn import LeNet
from jaxconv.timing.rounds import paired_speedups, round_orders
from jaxconv.tuning.table import cpu_name
from jaxconv.tuning.tuner import Tuner

RUNS = "runs/tuned_race"
MODELS = ("lenet_classic", "lenet_modern", "nnx_tutorial", "resnet18")


def build(model: str, impl: str) -> tuple[Callable, Any, dict[str, str]]:
    """``(step, first state, XLA options)``: an unjitted ``step(state) -> (state, loss)`` of ``model`` with
    jaxconv's ``impl`` in every convolution (and, in LeNet, every pooling), and the options it compiles
    with."""
    key_x, key_y = jax.random.split(jax.random.key(1))
    if model.startswith("lenet"):
        x = jax.random.uniform(key_x, (256, 28, 28, 1))
        labels = jax.random.randint(key_y, (256,), 0, 10)
        net = LeNet(model.split("_")[1], impl=impl, layout="NHWC")
        step, state = model_race.linen_step(net, (x,), labels, optax.sgd(0.9), train=True)
        return step, state, xla_options.compiler_options(fuse_elementwise=False)
    if model == "resnet18":
        x = jax.random.normal(key_x, (32, 64, 64, 3))
        labels = jax.random.randint(key_y, (32,), 0, 10)
        net = model_race.flax_model("resnet18", impl)
        step, state = model_race.linen_step(net, (x,), labels, optax.sgd(0.01, momentum=0.9))
        return step, state, {}
    if model != "nnx_tutorial":
        raise ValueError(f"build: model must be one of {MODELS}, got {model!r}")
    x = jax.random.uniform(key_x, (128, 28, 28, 1))
    labels = jax.random.randint(key_y, (128,), 0, 10)
    graphdef, params = nnx.split(
        model_race.CNN(partial(jc.conv_general_dilated, impl=impl), rngs=nnx.Rngs(0))
    )
    tx = optax.adamw(0.005, 0.9)

    def nnx_step(state: tuple) -> tuple[tuple, jax.Array]:
        params, opt = state

        def loss_fn(params: Any) -> jax.Array:
            logits = nnx.merge(graphdef, params)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    return nnx_step, (params, tx.init(params)), {}


def run(model: str, rounds: int = 7, steps_per_round: int = 3, out: str | os.PathLike[str] = RUNS,
        impls: Sequence[str] | None = None) -> dict:  # fmt: skip
    """Tunes ``model``'s step into ``out/tuning-MODEL.json`` (a fresh table), then races ``rule``, ``tuned``
    and each of ``impls`` (default: every impl a CPU runs natively but the book's manual one)."""
    if model not in MODELS:
        raise ValueError(f"run: model must be one of {MODELS}, got {model!r}")
    impls = (
        [i for i in IMPLS if i != "manual" and i not in INTERPRETED_ON_CPU] if impls is None else list(impls)
    )
    path = Path(out) / f"tuning-{model}.json"
    path.unlink(missing_ok=True)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats with int32 step counts
        step, state, options = build(model, "auto")
        start = time.perf_counter()
        report = Tuner(table=path, compiler_options=options).tune(step, state)
        tune_seconds = time.perf_counter() - start
        print(report)
        contestants: dict[str, Callable[[], Any]] = {}
        states: dict[str, Any] = {}
        for name in ("rule", "tuned", *impls):
            step, state, options = build(model, "auto" if name in ("rule", "tuned") else name)
            with model_race.picks(name, path):
                compiled = jax.jit(step, compiler_options=options).lower(state).compile()
            states[name] = compiled(state)[0]

            def advance(name: str = name, compiled: Any = compiled) -> Any:
                states[name], loss = compiled(states[name])
                return loss

            contestants[name] = advance
        seconds: dict[str, list[float]] = {name: [] for name in contestants}
        for order in round_orders(list(contestants), rounds):
            for name in order:
                begin = time.perf_counter()
                for _ in range(steps_per_round):
                    jax.block_until_ready(contestants[name]())
                seconds[name].append((time.perf_counter() - begin) / steps_per_round)
    step_ms = {name: 1e3 * float(np.median(s)) for name, s in seconds.items()}
    best = min(impls, key=step_ms.__getitem__)
    return {
        "model": model, "device": str(jax.devices()[0]), "cpu": cpu_name(),
        "rounds": rounds, "steps_per_round": steps_per_round, "tune_seconds": tune_seconds,
        "tuning_report": report.to_markdown(),
        "seconds": seconds, "step_ms": step_ms, "best_single_impl": best,
        "tuned_vs_rule": paired_speedups(seconds["rule"], seconds["tuned"]),
        "tuned_vs_best_single_impl": paired_speedups(seconds[best], seconds["tuned"]),
    }  # fmt: skip


def format_result(result: dict) -> str:
    lines = [f"{result['model']}: tuned in {result['tune_seconds']:.1f} s; ms per training step, median of "
             f"{result['rounds']} interleaved rounds ({result['cpu']})"]  # fmt: skip
    lines += [
        f"  {name:<10} {ms:9.2f}" for name, ms in sorted(result["step_ms"].items(), key=lambda kv: kv[1])
    ]
    for key, peer in (("tuned_vs_rule", "rule"), ("tuned_vs_best_single_impl", result["best_single_impl"])):
        s = result[key]
        lines.append(
            f"  tuned vs {peer}: {s['median']:.3f}x per round (middle half {s['q25']:.3f}-{s['q75']:.3f})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxconv.bench.tuned_race",
                                     description=(__doc__ or "").split("\n")[0])  # fmt: skip
    parser.add_argument("--model", choices=MODELS, default="lenet_classic")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--out", default="runs/tuned_race", help="folder for MODEL.json and the tuning table")
    args = parser.parse_args(argv)
    result = run(args.model, args.rounds, args.steps_per_round, args.out)
    print(format_result(result))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.model}.json").write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
