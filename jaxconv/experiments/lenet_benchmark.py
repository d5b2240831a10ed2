"""LeNet on Fashion-MNIST, 10 epochs: the book's recipe and the modern one, with PyTorch beside them.

    python -m experiments.lenet_benchmark [--epochs 10] [--out runs/lenet-benchmark] [--no-torch]

Prints a Markdown table (test accuracy, training images/second, wall time) and writes
``results.json``. The PyTorch run (the book's own code, in memory, same data, same recipe) happens
only when ``torch`` is importable: ``pip install torch==2.13.0`` installs a CPU build.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

from jaxconv import host_memory
from jaxconv.train import TrainConfig, step_compiler_options, train_and_evaluate
from jaxconv.train.data import FashionMNIST, load_fashion_mnist

BOOK, PLAIN = "book", "book-plain"
RECIPES = {
    BOOK: dict(variant="classic", optimizer="sgd", lr=0.9),
    # The same recipe through XLA's convolution in the book's layout, compiled with XLA's default
    # options: what a plain Flax LeNet does.
    PLAIN: dict(
        variant="classic", optimizer="sgd", lr=0.9, impl="xla", layout="NCHW", cpu_compiler_options=False
    ),
    "modern": dict(variant="modern", batch_norm=True, optimizer="adam", lr=2e-3, schedule="cosine"),
}
LABELS = {
    BOOK: "book recipe (classic, SGD 0.9), default impl=auto NHWC",
    PLAIN: "book recipe, plain impl=xla NCHW, XLA's default options",
    "modern": "modern (ReLU, max-pool, BN, Adam 2e-3 cosine), auto NHWC",
}


def torch_book_net(seed: int = 0):  # -> torch.nn.Sequential (torch is optional: no annotation)
    """The book's PyTorch LeNet (sigmoid, average pooling) with its Xavier initialisation."""
    import torch  # pyright: ignore[reportMissingImports] (an optional peer, not a dependency)
    from torch import nn  # pyright: ignore[reportMissingImports]

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    for m in net:
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    return net


def torch_book_recipe(data: FashionMNIST, epochs: int, seed: int = 0) -> dict:
    """The book's LeNet and training loop in PyTorch (Xavier init, SGD lr 0.9, batch 256)."""
    import torch  # pyright: ignore[reportMissingImports] (an optional peer, not a dependency)
    from torch import nn  # pyright: ignore[reportMissingImports]

    net = torch_book_net(seed)
    x = torch.from_numpy(data.train_images[:, None].astype(np.float32) / 255.0)
    y = torch.from_numpy(data.train_labels.astype(np.int64))
    tx = torch.from_numpy(data.test_images[:, None].astype(np.float32) / 255.0)
    ty = torch.from_numpy(data.test_labels.astype(np.int64))
    opt = torch.optim.SGD(net.parameters(), lr=0.9)
    loss_fn = nn.CrossEntropyLoss()
    train_seconds, history = 0.0, []
    for epoch in range(1, epochs + 1):
        net.train()
        start = time.perf_counter()
        for idx in torch.randperm(len(x)).split(256):
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        train_seconds += seconds
        net.eval()
        with torch.no_grad():
            acc = float((net(tx).argmax(1) == ty).float().mean())
        history.append({"epoch": epoch, "test_acc": acc, "images_per_second": len(x) / seconds})
        print(f"torch epoch {epoch:>2}: test acc {acc:.3f}, {len(x) / seconds:,.0f} img/s", flush=True)
    return {
        "test_acc": history[-1]["test_acc"],
        "images_per_second": len(x) * epochs / train_seconds,
        "threads": torch.get_num_threads(),
        "version": torch.__version__,
        "epochs": history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="runs/lenet-benchmark")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--recipes", default=",".join(RECIPES), help=f"comma-separated subset of {list(RECIPES)}"
    )
    args = parser.parse_args(argv)
    host_memory.tune_from_env()
    chosen = [name.strip() for name in args.recipes.split(",")]
    if not set(chosen) <= set(RECIPES):
        parser.error(f"--recipes must name some of {list(RECIPES)}, got {args.recipes!r}")
    data = load_fashion_mnist()
    results: dict = {"machine": platform.processor() or platform.machine(), "jax": jax.__version__,
                     "devices": str(jax.devices()), "epochs": args.epochs,
                     "glibc_malloc_tuned": host_memory.tuned(), "runs": {}}  # fmt: skip
    for name in chosen:
        recipe = RECIPES[name]
        out = Path(args.out) / name
        start = time.perf_counter()
        config = TrainConfig(epochs=args.epochs, out=str(out), progress=False, **recipe)
        history = train_and_evaluate(config, data)
        train_seconds = sum(len(data.train_images) / h["images_per_second"] for h in history)
        results["runs"][name] = {
            "config": {"impl": "auto", "layout": "NHWC"} | recipe,
            "compiler_options": step_compiler_options(config),
            "compile_seconds": json.loads((out / "history.json").read_text())["compile_seconds"],
            "test_acc": history[-1]["test_acc"],
            "images_per_second": len(data.train_images) * len(history) / train_seconds,
            "wall_seconds": time.perf_counter() - start,
        }
    if not args.no_torch:
        try:
            start = time.perf_counter()
            results["torch"] = torch_book_recipe(data, args.epochs) | {
                "wall_seconds": time.perf_counter() - start
            }
        except ImportError:
            print("torch is not installed: `pip install torch==2.13.0` adds the PyTorch column")
    print(
        f"\n| recipe ({args.epochs} epochs) | test acc | train img/s | compile s | wall s |\n|---|---|---|---|---|"
    )
    for name, r in results["runs"].items():
        print(
            f"| jaxconv {LABELS[name]} | {r['test_acc']:.3f} | {r['images_per_second']:,.0f} "
            f"| {r['compile_seconds']:.1f} | {r['wall_seconds']:.0f} |"
        )
    runs = results["runs"]
    if BOOK in runs and PLAIN in runs:
        speedup = runs[BOOK]["images_per_second"] / runs[PLAIN]["images_per_second"]
        results["default_over_plain_img_per_s"] = speedup
        print(f"\njaxconv default / plain XLA, book recipe: {speedup:.2f}x images/second, "
              f"test acc {runs[BOOK]['test_acc'] - runs[PLAIN]['test_acc']:+.3f}")  # fmt: skip
    if "torch" in results:
        t = results["torch"]
        print(f"| PyTorch {t['version']} book ({t['threads']} threads) | {t['test_acc']:.3f} | "
              f"{t['images_per_second']:,.0f} | | {t['wall_seconds']:.0f} |")  # fmt: skip
        for name in (BOOK, PLAIN):
            if name in runs:
                ratio = runs[name]["images_per_second"] / t["images_per_second"]
                results[f"{name} over torch img_per_s"] = ratio
                print(f"jaxconv {name} / PyTorch, training images/second: {ratio:.2f}x")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}/results.json")
    return 0
