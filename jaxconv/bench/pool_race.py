"""Pooling layers of real models, forward+backward: XLA's ``reduce_window``, jaxconv's tap slices and
PyTorch, raced in interleaved rounds.

``python -m jaxconv.bench.pool_race [--rounds R] [--out FOLDER]``

Each layer runs as ``y, vjp = jax.vjp(pool, x); vjp(dy)`` under ``jax.jit`` (the output and the input
gradient, what a training step needs), in ``NHWC`` (Flax's layout) and ``NCHW`` (PyTorch's), for each
of ``xla``, ``shift_add`` and ``im2col``; PyTorch runs ``F.max_pool2d`` / ``F.avg_pool2d`` forward and
backward in ``NCHW`` and ``channels_last``. Every contestant's gradient is checked against ``xla``'s
(the same rule for ties: each window's first maximum) before it is timed. The result holds each
median, what ``auto`` picks on this backend, and the per-round speed-ups of the fastest jaxconv impl
over ``xla`` and PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxconv as jc
from jaxconv.bench import torch_peer
from jaxconv.impls import auto
from jaxconv.spec import PoolSpec
from jaxconv.timing.rounds import paired_speedups, time_in_rounds
from jaxconv.tuning.table import cpu_name

IMPLS = ("xla", "shift_add", "im2col")
LAYOUTS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class PoolLayer:
    """One pooling call of a model: ``(N, C, H, W)`` input, square ``window``, ``stride``, ``padding``."""

    name: str
    mode: str
    shape: tuple[int, int, int, int]
    window: int
    stride: int
    padding: int = 0


LAYERS = (
    PoolLayer("ResNet-18 stem, 64² images", "max", (32, 64, 32, 32), 3, 2, 1),
    PoolLayer("ResNet-18 stem, 128² images", "max", (16, 64, 64, 64), 3, 2, 1),
    PoolLayer("LeNet modern pool 1", "max", (256, 6, 28, 28), 2, 2),
    PoolLayer("VGG-style 2x2", "max", (32, 64, 56, 56), 2, 2),
    PoolLayer("Inception-style 3x3 s1", "max", (32, 192, 28, 28), 3, 1, 1),
    PoolLayer("NNX tutorial CNN avg", "avg", (128, 32, 28, 28), 2, 2),
    PoolLayer("3x3 s2 avg", "avg", (32, 64, 32, 32), 3, 2, 1),
)


def _jax_pool(layer: PoolLayer, impl: str, layout: str) -> Callable[[jax.Array], jax.Array]:
    fn = jc.max_pool2d if layer.mode == "max" else jc.avg_pool2d
    return lambda x: fn(x, layer.window, stride=layer.stride, padding=layer.padding, layout=layout, impl=impl)


def _jax_contestant(layer: PoolLayer, impl: str, layout: str) -> tuple[Callable[[], Any], np.ndarray]:
    """A call running the pool forward and backward on fixed inputs, and its input gradient (NCHW)."""
    pool = _jax_pool(layer, impl, "NCHW")
    x = jax.random.normal(jax.random.key(0), layer.shape)
    dy = jax.random.normal(jax.random.key(1), jax.eval_shape(pool, x).shape)
    if layout == "NHWC":  # the same numbers in each layout
        x, dy = x.transpose(0, 2, 3, 1), dy.transpose(0, 2, 3, 1)
    pool = _jax_pool(layer, impl, layout)

    @jax.jit
    def forward_backward(x: jax.Array, dy: jax.Array) -> tuple[jax.Array, jax.Array]:
        y, vjp = jax.vjp(pool, x)
        return y, vjp(dy)[0]

    dx = np.asarray(forward_backward(x, dy)[1])
    return (lambda: forward_backward(x, dy)), (dx.transpose(0, 3, 1, 2) if layout == "NHWC" else dx)


def _torch_contestant(layer: PoolLayer, channels_last: bool) -> Callable[[], Any]:
    torch = torch_peer.torch()
    functional = torch.nn.functional
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(*layer.shape).contiguous(memory_format=fmt).requires_grad_(True)
    pool = functional.max_pool2d if layer.mode == "max" else functional.avg_pool2d
    y = pool(x, layer.window, layer.stride, layer.padding)
    dy = torch.randn(*y.shape).contiguous(memory_format=fmt)

    def step() -> Any:
        x.grad = None
        pool(x, layer.window, layer.stride, layer.padding).backward(dy)
        return x.grad

    return step


def race_layer(layer: PoolLayer, rounds: int, repeats: int, with_torch: bool) -> dict:
    """One layer's contestants timed in ``rounds`` interleaved rounds of ``repeats`` calls each."""
    contestants: dict[str, Callable[[], Any]] = {}
    reference = None
    for layout in LAYOUTS:
        for impl in IMPLS:
            call, dx = _jax_contestant(layer, impl, layout)
            reference = dx if reference is None else reference
            np.testing.assert_allclose(dx, reference, rtol=1e-5, atol=1e-5, err_msg=f"{impl} {layout}")
            contestants[f"{impl} {layout}"] = call
    if with_torch:
        for name, channels_last in (("torch NCHW", False), ("torch channels_last", True)):
            contestants[name] = _torch_contestant(layer, channels_last)
            contestants[name]()
    seconds = time_in_rounds(contestants, rounds, repeats)
    ms = {name: 1e3 * float(np.median(s)) for name, s in seconds.items()}
    n, c, h, w = layer.shape
    picks = {}
    for layout in LAYOUTS:
        k, s, p = layer.window, layer.stride, layer.padding
        spec = PoolSpec(batch=n, channels=c, input_hw=(h, w), window=(k, k), stride=(s, s),
                        pads=((p, p), (p, p)), mode=layer.mode, layout=layout)  # fmt: skip
        picks[layout] = auto.pool_impl(jax.default_backend(), spec)
    best = min((f"{i} {lay}" for i in ("shift_add", "im2col") for lay in LAYOUTS), key=ms.__getitem__)
    peers = ["xla NHWC", "xla NCHW"] + (["torch NCHW", "torch channels_last"] if with_torch else [])
    return {
        "layer": layer.__dict__, "ms": ms, "seconds": seconds, "auto": picks, "best_jaxconv": best,
        "best_jaxconv_vs": {peer: paired_speedups(seconds[peer], seconds[best]) for peer in peers},
    }  # fmt: skip


def run(layers: Sequence[PoolLayer] = LAYERS, rounds: int = 5, repeats: int = 5,
        with_torch: bool | None = None) -> dict:  # fmt: skip
    """Races every layer of ``layers``; returns the per-layer results and the machine."""
    with_torch = torch_peer.available() if with_torch is None else with_torch
    if with_torch:
        torch_peer.torch().set_num_threads(os.cpu_count() or 1)
    results = []
    for layer in layers:
        results.append(race_layer(layer, rounds, repeats, with_torch))
        print(format_layer(results[-1]), flush=True)
    return {"cpu": cpu_name(), "device": str(jax.devices()[0]), "rounds": rounds, "repeats": repeats,
            "layers": results}  # fmt: skip


def format_layer(result: dict) -> str:
    layer, ms = result["layer"], result["ms"]
    n, c, h, w = layer["shape"]
    window = f"{layer['window']}x{layer['window']} s{layer['stride']} p{layer['padding']}"
    head = (f"{layer['name']}: {layer['mode']} {window} on {n}x{c}x{h}x{w}, ms forward+backward "
            f"(auto: {result['auto']})")  # fmt: skip
    rows = [f"  {name:<22} {t:8.2f}" for name, t in sorted(ms.items(), key=lambda kv: kv[1])]
    ratios = ", ".join(
        f"{peer} {s['median']:.2f}x ({s['q25']:.2f}-{s['q75']:.2f})"
        for peer, s in result["best_jaxconv_vs"].items()
    )
    return "\n".join([head, *rows, f"  {result['best_jaxconv']} per round vs: {ratios}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxconv.bench.pool_race",
                                     description=(__doc__ or "").split("\n")[0])  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="calls per contestant per round")
    parser.add_argument("--out", default="runs/pool_race", help="folder for pool-race.json")
    args = parser.parse_args(argv)
    result = run(rounds=args.rounds, repeats=args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pool-race.json").write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
