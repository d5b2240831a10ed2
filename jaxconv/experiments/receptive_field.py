"""Receptive fields: jc.receptive_field's formula against the field measured with autodiff."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import jaxconv as jc
from jaxconv.experiments.common import save

# (kind, kernel, stride, dilation): a small VGG-like stack with a dilated layer.
STACK = [
    ("conv", 3, 1, 1),
    ("conv", 3, 1, 1),
    ("max", 2, 2, 1),
    ("conv", 3, 1, 2),
    ("avg", 2, 2, 1),
    ("conv", 3, 1, 1),
]


def network(x: jax.Array, weights: list[jax.Array | None]) -> jax.Array:
    for (kind, k, s, d), w in zip(STACK, weights, strict=True):
        if kind == "conv":
            if w is None:
                raise ValueError(f"network: the conv layer {k}/s{s}/d{d} has no weight")
            x = jnp.tanh(jc.conv2d(x, w, stride=s, dilation=d))
        elif kind == "max":
            x = jc.max_pool2d(x, k, stride=s)
        else:
            x = jc.avg_pool2d(x, k, stride=s)
    return x


def run(out: Path, fast: bool = False) -> dict:
    keys = jax.random.split(jax.random.key(0), len(STACK))
    weights = [jax.random.normal(key, (2, 2, k, k)) if kind == "conv" else None
               for key, (kind, k, _, _) in zip(keys, STACK, strict=True)]  # fmt: skip
    x = jax.random.normal(jax.random.key(1), (1, 2, 48, 48))
    y = network(x, weights)
    i, j = y.shape[2] // 2, y.shape[3] // 2
    grad = jax.grad(lambda x: network(x, weights)[0, 0, i, j])(x)
    touched = np.asarray(jnp.abs(grad).sum(axis=(0, 1)) > 0)
    rows, cols = np.nonzero(touched)
    measured = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    formula = jc.receptive_field([(k, s, d) for _, k, s, d in STACK])
    numbers = {"formula_size": formula.size, "formula_jump": formula.jump, "measured_size": measured}
    print(f"stack {[f'{kind}{k}/s{s}/d{d}' for kind, k, s, d in STACK]}")
    print(
        f"receptive field of one output: formula {formula.size} (jump {formula.jump}), measured by autodiff {measured}"
    )

    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(np.log10(np.asarray(jnp.abs(grad).sum(axis=(0, 1))) + 1e-12), cmap="inferno", vmin=-8)
    ax.add_patch(
        Rectangle((cols.min() - 0.5, rows.min() - 0.5), measured[1], measured[0], fill=False, ec="cyan")
    )
    ax.set_title(
        f"|d y[{i},{j}] / d x|: field {measured[0]}x{measured[1]}, formula {formula.size}", fontsize=9
    )
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")
    fig.colorbar(im, ax=ax, label="log10 |gradient|")
    return save(out, "receptive_field", numbers, fig)
