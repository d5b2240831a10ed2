"""LeNet training steps, raced interleaved: jaxconv's defaults (Linen and NNX), plain XLA and PyTorch.

    python -m experiments.lenet_step_race [--rounds 12] [--steps 30] [--out runs/lenet-step-race] [--no-torch]

``lenet_benchmark`` trains each contestant for 10 epochs one after the other, so a machine whose
speed drifts (a shared VM: ±15 % between runs) skews their ratio. Here each round times ``--steps``
training steps of every contestant in turn, on the same batches of the book's recipe (batch 256,
SGD 0.9); the medians over rounds and their ratios are reported, and drift hits every contestant
alike. Each ratio is also taken round by round, within seconds, and its median and middle half
across the rounds are printed: how far the host's state of the moment moves it. The order changes
each round so that each contestant runs after every other equally often
(:func:`jaxconv.timing.rounds.round_orders`; n rounds balance an even number n of contestants, 2n an odd one): a JAX step right after
PyTorch's runs slower. Compilation happens before the first round. PyTorch runs when
``torch`` is importable (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import host_memory
from jaxconv.bench import torch_peer
from jaxconv.experiments.common import save
from jaxconv.experiments.lenet_benchmark import torch_book_net
from jaxconv.timing.rounds import paired_speedups, round_orders
from jaxconv.train import TrainConfig, create_train_state, make_steps, step_compiler_options
from jaxconv.train.data import FashionMNIST, load_fashion_mnist
from jaxconv.train.loop import dispatches

CONTESTANTS = {
    "jaxconv defaults (auto, NHWC)": TrainConfig(),
    "jaxconv plain XLA (xla, NCHW)": TrainConfig(impl="xla", layout="NCHW", cpu_compiler_options=False),
    "jaxconv defaults, NNX model": TrainConfig(api="nnx"),
    "jaxconv defaults, 10 steps per dispatch": TrainConfig(steps_per_dispatch=10),
}
TORCH = "PyTorch (book's code)"
TORCH_COMPILE = "PyTorch torch.compile"


def _jax_runner(config: TrainConfig, data: FashionMNIST, batches: list[np.ndarray]) -> Callable[[], None]:
    """A callable that trains ``len(batches)`` steps (state carried across calls) and blocks."""
    images, labels = jnp.asarray(data.train_images), jnp.asarray(data.train_labels.astype(np.int32))
    # config.steps_per_dispatch batches at a time as one scan, the rest one by one (as training does)
    idx = [jnp.asarray(b) for b in dispatches(iter(batches), len(batches[0]), config.steps_per_dispatch)]
    state = create_train_state(config, len(batches))
    single, several = make_steps(config).train, make_steps(config).train_several
    compiled = {
        i.shape: (several if i.ndim == 2 else single).lower(state, images, labels, i).compile() for i in idx
    }
    box = [state]

    def run() -> None:
        s = box[0]
        for i in idx:
            s, _ = compiled[i.shape](s, images, labels, i)
        box[0] = jax.block_until_ready(s)

    return run


def _torch_runner(
    data: FashionMNIST, batches: list[np.ndarray], compiled: bool = False
) -> Callable[[], None]:
    """The same steps in PyTorch, on JAX's device (:mod:`jaxconv.bench.torch_peer`): the book's network,
    loss and SGD, the data as float tensors; ``compiled``: the network through ``torch.compile``."""
    torch, where = torch_peer.torch(), torch_peer.device()
    net, loss_fn = torch_book_net().to(where), torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.9)
    model = torch.compile(net) if compiled else net
    x = torch.from_numpy(data.train_images[:, None].astype(np.float32) / 255.0).to(where)
    y = torch.from_numpy(data.train_labels.astype(np.int64)).to(where)
    idx = [torch.from_numpy(b.astype(np.int64)).to(where) for b in batches]

    def run() -> None:
        for i in idx:
            opt.zero_grad()
            loss_fn(model(x[i]), y[i]).backward()
            opt.step()
        torch_peer.synchronize(where)

    return run


def race(data: FashionMNIST, rounds: int = 12, steps: int = 30, batch_size: int = 256,
         with_torch: bool = True, seed: int = 0, torch_compile: bool = False) -> dict:  # fmt: skip
    """Times every contestant for ``steps`` steps per round, interleaved over ``rounds`` rounds.

    Returns ``{"images_per_second": {name: median}, "round_seconds": {name: [...]},
    "ratios": {...}, "round_ratios": {...}, "compiler_options": {jax contestant: XLA options}, ...}``:
    ``ratios`` divide the medians' rates, ``round_ratios`` summarise the same ratio taken round by
    round (:func:`jaxconv.timing.rounds.paired_speedups`); ``with_torch`` is ignored (no PyTorch column) when
    torch is not installed.
    """
    if rounds < 1 or steps < 1 or batch_size < 1:
        raise ValueError(
            f"race: rounds, steps and batch_size must be >= 1, got {rounds}, {steps}, {batch_size}"
        )
    n = len(data.train_images)
    if batch_size > n:
        raise ValueError(f"race: batch_size {batch_size} is larger than the {n} training images")
    rng = np.random.default_rng(seed)
    batches = [rng.choice(n, batch_size, replace=False).astype(np.int32) for _ in range(steps)]
    runners = {name: _jax_runner(config, data, batches) for name, config in CONTESTANTS.items()}
    if with_torch:
        try:
            runners[TORCH] = _torch_runner(data, batches)
            if torch_compile:
                runners[TORCH_COMPILE] = _torch_runner(data, batches, compiled=True)
        except ImportError:
            print("torch is not installed: `pip install torch==2.13.0` adds the PyTorch column")
    for run in runners.values():  # warm-up: caches, thread pools, first-touch of the buffers
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for order in round_orders(names, rounds):  # each contestant behind every other equally often
        for name in order:
            start = time.perf_counter()
            runners[name]()
            seconds[name].append(time.perf_counter() - start)
    per_second = {name: steps * batch_size / statistics.median(s) for name, s in seconds.items()}
    defaults, plain, nnx, scanned = names[:4]
    pairs = {"defaults / plain XLA": (defaults, plain), "NNX / Linen (defaults)": (nnx, defaults),
             "10 steps per dispatch / 1 (defaults)": (scanned, defaults)}  # fmt: skip
    if TORCH in per_second:
        pairs |= {"defaults / PyTorch": (defaults, TORCH), "plain XLA / PyTorch": (plain, TORCH)}
    if TORCH_COMPILE in per_second:
        pairs |= {"defaults / torch.compile": (defaults, TORCH_COMPILE)}
    ratios = {label: per_second[a] / per_second[b] for label, (a, b) in pairs.items()}
    # Each round times every contestant within a second or so: its ratio sees the machine in one state.
    round_ratios = {label: paired_speedups(seconds[b], seconds[a]) for label, (a, b) in pairs.items()}
    options = {name: step_compiler_options(config) for name, config in CONTESTANTS.items()}
    return {"images_per_second": per_second, "round_seconds": seconds, "ratios": ratios,
            "round_ratios": round_ratios, "compiler_options": options, "rounds": rounds, "steps": steps,
            "batch_size": batch_size}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=30, help="training steps per contestant per round")
    parser.add_argument("--out", default="runs/lenet-step-race")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-compile", action="store_true", help="also race PyTorch's torch.compile")
    args = parser.parse_args(argv)
    host_memory.tune_from_env()
    result = race(load_fashion_mnist(), args.rounds, args.steps, with_torch=not args.no_torch,
                  torch_compile=args.torch_compile)  # fmt: skip
    result |= {
        "jax": jax.__version__,
        "devices": str(jax.devices()),
        "glibc_malloc_tuned": host_memory.tuned(),
    }
    print(f"\n{args.rounds} interleaved rounds of {args.steps} steps (batch 256), median:")
    for name, ips in result["images_per_second"].items():
        print(f"  {name:<32} {ips:>9,.0f} img/s  ({1e3 * result['batch_size'] / ips:.1f} ms/step)")
    for name, ratio in result["ratios"].items():
        spread = result["round_ratios"][name]
        print(f"  {name}: {ratio:.2f}x (per round: median {spread['median']:.2f}x, "
              f"middle half {spread['q25']:.2f}-{spread['q75']:.2f}x)")  # fmt: skip
    save(Path(args.out), "results", result)
    print(f"wrote {args.out}/results.json")
    return 0
