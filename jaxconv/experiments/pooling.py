"""6.5 Pooling: the book's examples, padding and stride, channels, and tolerance to a one-pixel shift."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

import jaxconv as jc
from jaxconv.experiments.common import image_row, save
from jaxconv.experiments.conv_layer import EDGE, photograph


def run(out: Path, fast: bool = False) -> dict:
    X = jnp.arange(9.0).reshape(3, 3)
    X4 = jnp.arange(16.0).reshape(1, 1, 4, 4)
    numbers = {
        "max": np.asarray(jc.pool2d(X, 2)).tolist(),
        "avg": np.asarray(jc.pool2d(X, 2, "avg")).tolist(),
        "max_3x3_default_stride": np.asarray(jc.max_pool2d(X4, 3)).tolist(),
        "max_3x3_p1_s2": np.asarray(jc.max_pool2d(X4, 3, padding=1, stride=2)).tolist(),
        "max_2x3_p01_s23": np.asarray(jc.max_pool2d(X4, (2, 3), padding=(0, 1), stride=(2, 3))).tolist(),
        "two_channels": np.asarray(
            jc.max_pool2d(jnp.concatenate([X4, X4 + 1], 1), 3, padding=1, stride=2)
        ).tolist(),
    }
    for name, value in numbers.items():
        manual = {"max": jc.pool2d(X, 2, impl="manual"), "avg": jc.pool2d(X, 2, "avg", impl="manual")}.get(
            name
        )
        agree = "" if manual is None else f"  (manual agrees: {np.array_equal(manual, value)})"
        print(f"{name}: {value}{agree}")

    # How much does a one-pixel shift change the vertical-edge map, with and without 2x2 max pooling?
    photo = jnp.asarray(photograph()[0][:: 4 if fast else 2, :: 4 if fast else 2])[None, None]
    shifted = jnp.roll(photo, 1, axis=3)
    edges, edges_shifted = (jc.conv2d(p, EDGE[None, None]) for p in (photo, shifted))
    crop = (..., slice(2, -2), slice(2, -2))  # ignore the wrapped border column

    def relative_change(a, b):
        return float(jnp.linalg.norm((a - b)[crop]) / jnp.linalg.norm(a[crop]))

    numbers["shift_change_conv"] = relative_change(edges, edges_shifted)
    numbers["shift_change_conv_maxpool2"] = relative_change(
        jc.max_pool2d(edges, 2, stride=1), jc.max_pool2d(edges_shifted, 2, stride=1)
    )
    print(f"one-pixel shift changes the edge map by {numbers['shift_change_conv']:.0%}; "
          f"after a 2x2 max pool (stride 1) by {numbers['shift_change_conv_maxpool2']:.0%}")  # fmt: skip

    pooled = jc.max_pool2d(edges, 2, stride=1)
    panels = [(edges[0, 0], "edge map"), (pooled[0, 0], "2x2 max pool"),
              (jnp.abs(pooled - jc.max_pool2d(edges_shifted, 2, stride=1))[0, 0], "|change| after a 1-px shift")]  # fmt: skip
    return save(out, "pooling", numbers, image_row([(*p, "magma") for p in panels]))
