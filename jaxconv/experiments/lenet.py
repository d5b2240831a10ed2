"""6.6 LeNet: train the book's recipe and the modern one, then look inside the trained network."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxconv.experiments.common import save
from jaxconv.train import TrainConfig, checkpoint, create_train_state, train_and_evaluate
from jaxconv.train.curves import plot_history
from jaxconv.train.data import CLASS_NAMES, load_fashion_mnist

RECIPES = {
    "classic": dict(variant="classic", optimizer="sgd", lr=0.9),
    "modern": dict(variant="modern", batch_norm=True, optimizer="adam", lr=2e-3, schedule="cosine"),
}
PULLOVER, COAT = 2, 4  # the book's "sweaters vs coats"


def _activations(config: TrainConfig, variables: dict, images: np.ndarray) -> tuple[jax.Array, dict]:
    """Logits and the two conv blocks' activations, ``(N, C, H, W)`` whatever the model's layout."""
    x = jnp.asarray(images, jnp.float32) / 255.0
    x = x[:, None] if config.layout == "NCHW" else x[..., None]
    logits, state = config.model().apply(variables, x, mutable=["intermediates"])
    inter = state["intermediates"]
    activations = [k for k in sorted(inter) if k.split(" ")[1] in ("Sigmoid", "ReLU")]
    convs = [cast(jax.Array, inter[k][0]) for k in activations[:2]]
    if config.layout == "NHWC":
        convs = [c.transpose(0, 3, 1, 2) for c in convs]
    return logits, {"conv1": convs[0], "conv2": convs[1]}


def _grid(fig, spec, maps: np.ndarray, title: str, cmap: str = "viridis") -> None:
    """One row of small images (a channel each) under a shared title."""
    sub = spec.subgridspec(1, len(maps))
    for i, m in enumerate(maps):
        ax = fig.add_subplot(sub[0, i])
        ax.imshow(m, cmap=cmap)
        ax.axis("off")
        if i == 0:
            ax.set_title(title, fontsize=8, loc="left")


def inspect(config: TrainConfig, data, out: Path, name: str) -> dict:
    state = create_train_state(config, 1)
    state = checkpoint.load(Path(config.out) / "checkpoint.msgpack", state)[0]
    variables = {"params": state.params} | ({"batch_stats": state.batch_stats} if state.batch_stats else {})
    logits, _ = _activations(config, variables, data.test_images)
    pred = np.asarray(logits.argmax(-1))
    labels = data.test_labels
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (labels, pred), 1)

    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(10), CLASS_NAMES, rotation=60, fontsize=7)
    ax.set_yticks(range(10), CLASS_NAMES, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"LeNet {name}: test confusion (acc {np.trace(confusion) / confusion.sum():.3f})", fontsize=9
    )
    fig.colorbar(im, ax=ax)
    save(out, f"{name}_confusion", {"confusion": confusion.tolist()}, fig)

    wrong = np.flatnonzero(pred != labels)[:16]
    fig, axes = plt.subplots(2, 8, figsize=(10, 3))
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(data.test_images[i], cmap="gray")
        ax.set_title(f"{CLASS_NAMES[labels[i]]}\n-> {CLASS_NAMES[pred[i]]}", fontsize=6)
        ax.axis("off")
    fig.suptitle(f"LeNet {name}: misclassified test images (true -> predicted)", fontsize=9)
    save(out, f"{name}_misclassified", {"misclassified": int(len(np.flatnonzero(pred != labels)))}, fig)

    # Feature maps: a pullover, a coat (similar classes), and noise (unlike any training image).
    pullover = data.test_images[np.flatnonzero(labels == PULLOVER)[0]]
    coat = data.test_images[np.flatnonzero(labels == COAT)[0]]
    noise = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    samples = {"pullover": pullover, "coat": coat, "noise": noise}
    _, acts = _activations(config, variables, np.stack(list(samples.values())))
    fig = plt.figure(figsize=(11, 7))
    spec = fig.add_gridspec(len(samples) * 2 + 1, 1)
    kernel = np.asarray(state.params["conv1"]["kernel"])
    kernels = (kernel if config.layout == "NCHW" else kernel.transpose(3, 2, 0, 1))[:, 0]  # (6, 5, 5)
    _grid(fig, spec[0], kernels, "learned conv1 kernels (5x5)", cmap="RdBu")
    numbers = {}
    for row, sample in enumerate(samples):
        _grid(fig, spec[1 + 2 * row], np.asarray(acts["conv1"][row]), f"{sample}: conv1 activations")
        _grid(fig, spec[2 + 2 * row], np.asarray(acts["conv2"][row]), f"{sample}: conv2 activations")
        numbers[f"{sample}_conv2_mean_activation"] = float(acts["conv2"][row].mean())
    c1, c2 = (np.asarray(acts["conv2"][i]).ravel() for i in (0, 1))
    numbers["pullover_vs_coat_conv2_correlation"] = float(np.corrcoef(c1, c2)[0, 1])
    numbers["pullover_vs_noise_conv2_correlation"] = float(
        np.corrcoef(c1, np.asarray(acts["conv2"][2]).ravel())[0, 1]
    )
    fig.suptitle(f"LeNet {name}: kernels and feature maps", fontsize=10)
    print(f"{name}: conv2 activations correlate {numbers['pullover_vs_coat_conv2_correlation']:.2f} between a "
          f"pullover and a coat, {numbers['pullover_vs_noise_conv2_correlation']:.2f} between a pullover and noise")  # fmt: skip
    return save(out, f"{name}_features", numbers, fig)


def run(out: Path, fast: bool = False) -> dict:
    data = load_fashion_mnist()
    numbers = {}
    for name, recipe in RECIPES.items():
        limits = dict(limit_train=2048, limit_test=1000, epochs=1) if fast else dict(epochs=10)
        config = TrainConfig(out=str(out / f"run-{name}"), progress=not fast, **limits, **recipe)
        history = train_and_evaluate(config, data)
        plot_history(history, out / f"{name}_curves.png", title=f"LeNet {name}")
        numbers[name] = {"test_acc": history[-1]["test_acc"]} | inspect(config, data, out, name)
    return save(out, "lenet", numbers)
