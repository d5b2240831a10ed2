"""The reader's one-screen race: the same layer and the same LeNet through every ``impl``.

xla, the book's vmapped manual definition, im2col, shift-and-add and auto: same numbers (max
difference from xla) and how fast (median time per call after compilation, calls interleaved so
drift on a shared machine hits all alike). The full harness over many shapes is ``jaxconv bench``.

Every function is compiled as ``jaxconv bench`` compiles its contestants, with
:func:`jaxconv.xla_options.jit` (on CPU, YNNPACK takes the dots, each with the elementwise ops around
it; jaxconv's training steps hand it each dot alone, ``fuse_elementwise=False``);
``results["compiler_options"]`` records the options. A plain ``jax.jit`` gets XLA's defaults, under
which ``xla`` is slower on CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxconv as jc
from jaxconv.experiments.common import save
from jaxconv.impls import INTERPRETED_ON_CPU
from jaxconv.nn import LeNet
from jaxconv.timing.rounds import round_orders


def _race(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for fn in fns.values():
        jax.block_until_ready(fn())  # compile
    times: dict[str, list[float]] = {name: [] for name in fns}
    for order in round_orders(list(fns), repeats):  # each behind every other equally often
        for name in order:
            start = time.perf_counter()
            jax.block_until_ready(fns[name]())
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def run(out: Path, fast: bool = False) -> dict:
    n, repeats = (16, 3) if fast else (256, 7)
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (n, 6, 14, 14))
    w = jax.random.normal(kw, (16, 6, 5, 5))
    images = jax.random.uniform(kx, (n, 1, 28, 28))
    labels = jnp.arange(n) % 10
    params = LeNet().init(jax.random.key(1), images)

    def layer(impl):
        fwd = jc.xla_options.jit(lambda x, w: jc.conv2d(x, w, impl=impl))
        bwd = jc.xla_options.jit(
            jax.grad(lambda x, w: jnp.sum(jc.conv2d(x, w, impl=impl) ** 2), argnums=(0, 1))
        )
        return fwd, bwd

    def lenet(impl):
        model = LeNet(impl=impl)

        def loss(p):
            logits = cast(jax.Array, model.apply(p, images))
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(n), labels])

        return jc.xla_options.jit(lambda p: model.apply(p, images)), jc.xla_options.jit(jax.grad(loss))

    numbers: dict = {"batch": n, "compiler_options": jc.xla_options.compiler_options()}
    rows = []
    for what, build, args in (
        ("LeNet conv2 layer (N,6->16,14x14,k5)", layer, (x, w)),
        ("LeNet", lenet, (params,)),
    ):
        built = {impl: build(impl) for impl in jc.IMPL_CHOICES}
        fx, bx = built["xla"]

        def rel(a, b):  # max |a - b| relative to max |a|
            return float(jnp.abs(a - b).max() / jnp.abs(a).max())

        diffs = {}
        for impl, (f, b) in built.items():
            grads = zip(jax.tree.leaves(bx(*args)), jax.tree.leaves(b(*args)), strict=True)
            diffs[impl] = (rel(fx(*args), f(*args)), max(rel(a, b) for a, b in grads))
        # Compared everywhere; timed where it runs as compiled code (a CPU interprets Pallas kernels).
        untimed = INTERPRETED_ON_CPU if jax.default_backend() == "cpu" else ()
        calls = {
            f"{impl} {kind}": fn
            for impl, pair in built.items()
            if impl not in untimed
            for kind, fn in zip(("fwd", "fwd+bwd"), pair, strict=True)
        }
        t = _race({name: partial(fn, *args) for name, fn in calls.items()}, repeats)
        numbers[what] = {
            "max_diff_forward": max(d[0] for d in diffs.values()),
            "max_diff_gradient": max(d[1] for d in diffs.values()),
            "max_diff_by_impl": diffs,
            "ms": {k: v * 1e3 for k, v in t.items()},
        }
        rows.append((what, t))
        print(f"{what}, batch {n}: max relative difference from xla, forward / gradients:")
        print("   " + ", ".join(f"{impl} {f:.0e} / {b:.0e}" for impl, (f, b) in diffs.items()))
        print("   " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in t.items()))
        if untimed:
            print(f"   not timed on CPU, where Pallas's interpreter runs them: {', '.join(untimed)}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (what, t) in zip(axes, rows, strict=True):
        ax.barh(
            list(t), [v * 1e3 for v in t.values()], color=["tab:blue", "tab:orange"] * len(jc.IMPL_CHOICES)
        )
        ax.invert_yaxis()
        ax.set_xlabel("ms per call (median)")
        ax.set_title(f"{what}, batch {n}", fontsize=9)
    return save(out, "manual_vs_xla", numbers, fig)
