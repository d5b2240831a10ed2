"""The reader's one-screen race: the same layer and the same LeNet through impl="xla" and "manual".

Same numbers (max difference) and how fast (median time per call after compilation, calls
interleaved xla/manual so drift on a shared machine hits both). The full harness is a later issue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxconv as jc
from experiments._common import main, save
from jaxconv.nn import LeNet


def _race(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for fn in fns.values():
        jax.block_until_ready(fn())  # compile
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
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
        fwd = jax.jit(lambda x, w: jc.conv2d(x, w, impl=impl))
        bwd = jax.jit(jax.grad(lambda x, w: jnp.sum(jc.conv2d(x, w, impl=impl) ** 2), argnums=(0, 1)))
        return fwd, bwd

    def lenet(impl):
        model = LeNet(impl=impl)

        def loss(p):
            logits = model.apply(p, images)
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(n), labels])

        return jax.jit(lambda p: model.apply(p, images)), jax.jit(jax.grad(loss))

    numbers: dict = {"batch": n}
    rows = []
    for what, build, args in (
        ("LeNet conv2 layer (N,6->16,14x14,k5)", layer, (x, w)),
        ("LeNet", lenet, (params,)),
    ):
        (fx, bx), (fm, bm) = build("xla"), build("manual")

        def rel(a, b):  # max |a - b| relative to max |a|
            return float(jnp.abs(a - b).max() / jnp.abs(a).max())

        diff_f = rel(fx(*args), fm(*args))
        grads = zip(jax.tree.leaves(bx(*args)), jax.tree.leaves(bm(*args)), strict=True)
        diff_b = max(rel(a, b) for a, b in grads)
        calls = {"xla fwd": fx, "manual fwd": fm, "xla fwd+bwd": bx, "manual fwd+bwd": bm}
        t = _race({name: partial(fn, *args) for name, fn in calls.items()}, repeats)
        numbers[what] = {
            "max_diff_forward": diff_f,
            "max_diff_gradient": diff_b,
            "ms": {k: v * 1e3 for k, v in t.items()},
        }
        rows.append((what, t))
        print(f"{what}, batch {n}: max relative |xla - manual| forward {diff_f:.1e}, gradients {diff_b:.1e}")
        print("   " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in t.items()))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (what, t) in zip(axes, rows, strict=True):
        ax.barh(list(t), [v * 1e3 for v in t.values()], color=["tab:blue", "tab:orange"] * 2)
        ax.set_xlabel("ms per call (median)")
        ax.set_title(f"{what}, batch {n}", fontsize=9)
    return save(out, "manual_vs_xla", numbers, fig)


if __name__ == "__main__":
    raise SystemExit(main("manual_vs_xla", run))
