"""6.3 Padding and stride: the book's shape examples by formula and by running conv2d."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import jaxconv as jc
from jaxconv.experiments.common import save

# (description, kernel, padding per side, stride) on the book's 8x8 input.
BOOK = [
    ("k3 p1", 3, 1, 1),
    ("k(5,3) p(2,1)", (5, 3), (2, 1), 1),
    ("k3 p1 s2", 3, 1, 2),
    ("k(3,5) p(0,1) s(3,4)", (3, 5), (0, 1), (3, 4)),
    ("k3 p(2,3) s2", 3, (2, 3), 2),
]


def layers_to_reach(n: int, k: int, target: int) -> int:
    """How many stride-1, unpadded k x k layers take an n x n input down to target x target."""
    count = 0
    while n > target:
        (n, _), count = jc.conv_output_shape(n, k), count + 1
    return count


def run(out: Path, fast: bool = False) -> dict:
    rows = []
    print(f"{'8x8 input':>22} | formula | conv2d")
    for label, k, p, s in BOOK:
        formula = jc.conv_output_shape(8, k, padding=p, stride=s)
        kh, kw = (k, k) if isinstance(k, int) else k
        ran = jc.conv2d(jnp.ones((1, 1, 8, 8)), jnp.ones((1, 1, kh, kw)), padding=p, stride=s).shape[2:]
        rows.append({"case": label, "formula": formula, "conv2d": tuple(ran)})
        print(f"{label:>22} | {formula} | {tuple(ran)}")
    hw = 240
    for _ in range(10):
        hw = jc.conv_output_shape(hw, 5)[0]
    numbers = {
        "book_cases": rows,
        "240_after_ten_5x5": hw,
        "layers_224_to_4_with_5x5": layers_to_reach(224, 5, 4),
    }
    print(f"240x240 through ten 5x5 layers: {hw}x{hw} (book: 200x200)")
    print(f"224x224 needs {numbers['layers_224_to_4_with_5x5']} unpadded 5x5 layers to reach 4x4 (book: 55)")

    # Which input pixels each output of k3 p1 s2 reads: a count of window visits on the padded grid.
    n, k, p, s = 8, 3, 1, 2
    visits = np.zeros((n + 2 * p, n + 2 * p))
    oh, ow = jc.conv_output_shape(n, k, padding=p, stride=s)
    for i in range(oh):
        for j in range(ow):
            visits[i * s : i * s + k, j * s : j * s + k] += 1
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(visits, cmap="magma")
    ax.add_patch(Rectangle((p - 0.5, p - 0.5), n, n, fill=False, ec="cyan", lw=2, label="8x8 input"))
    ax.set_title(f"k{k} p{p} s{s}: windows covering each pixel\n(outside the cyan box: padding)", fontsize=9)
    ax.set_xlabel("padded column")
    ax.set_ylabel("padded row")
    fig.colorbar(im, ax=ax, label="windows")
    return save(out, "padding_stride", numbers, fig)
