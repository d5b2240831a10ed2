"""The book's training plot: train loss, train accuracy and test accuracy per epoch."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Draws ``history`` (one dict per epoch with ``epoch``, ``train_loss``, ``train_acc``,
    ``test_acc``) to a PNG at ``path``."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    ax.plot(epochs, [h["train_loss"] for h in history], "-", label="train loss")
    ax.plot(epochs, [h["train_acc"] for h in history], "m--", label="train acc")
    ax.plot(epochs, [h["test_acc"] for h in history], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(epochs) + 0.5)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
