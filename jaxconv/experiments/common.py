"""What every experiment shares: its command line, its output folder, and saving results."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from jaxconv import host_memory  # noqa: E402

Experiment = Callable[[Path, bool], dict[str, Any]]


def save(out: Path, name: str, numbers: dict[str, Any], fig: Figure | None = None) -> dict[str, Any]:
    """Writes ``name.json`` (and ``name.png`` for a figure) under ``out``; returns ``numbers``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(numbers, indent=2, default=float))
    if fig is not None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
    return numbers


def image_row(panels: list[tuple], *, labelled_axes: bool = False, figsize=(10.5, 3.5)) -> Figure:
    """A figure with one row of images, each ``(image, title[, cmap])`` with its own colour bar.

    Diverging maps (``"RdBu"``) get limits symmetric about zero, so zero is white.
    """
    import numpy as np

    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    for ax, (image, title, *cmap) in zip(axes, panels, strict=True):
        cmap = cmap[0] if cmap else "viridis"
        image = np.asarray(image, dtype=float)
        limits = {}
        if cmap == "RdBu":
            limit = float(np.percentile(np.abs(image), 99.5)) or 1.0
            limits = dict(vmin=-limit, vmax=limit)
        im = ax.imshow(image, cmap=cmap, **limits)
        ax.set_title(title, fontsize=9)
        if labelled_axes:
            ax.set_xlabel("column")
            ax.set_ylabel("row")
        else:
            ax.axis("off")
        fig.colorbar(im, ax=ax, shrink=0.75)
    return fig


def main(name: str, run: Experiment, argv: list[str] | None = None) -> int:
    """``python -m experiments.NAME [--out DIR] [--fast]``."""
    parser = argparse.ArgumentParser(prog=f"experiments.{name}")
    parser.add_argument("--out", default=f"runs/experiments/{name}", help="folder for figures and JSON")
    parser.add_argument("--fast", action="store_true", help="smaller settings (smoke tests)")
    args = parser.parse_args(argv)
    host_memory.tune_from_env()
    run(Path(args.out), args.fast)
    print(f"wrote {args.out}")
    return 0
