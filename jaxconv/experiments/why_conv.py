"""6.1 From fully connected layers to convolutions: parameter counts, equivariance and locality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv as jc
from jaxconv.experiments.common import image_row, save


def run(out: Path, fast: bool = False) -> dict:
    # The book: a 1-megapixel image into 1000 hidden units, versus a local shared kernel of |Δ| <= 10.
    delta = 10
    numbers: dict[str, Any] = {
        "fully_connected_params": 10**6 * 10**3,
        "conv_kernel_params_delta_10": (2 * delta + 1) ** 2,
    }
    print(f"fully connected 1 Mpx -> 1000 units: {numbers['fully_connected_params']:.0e} parameters")
    print(
        f"translation-invariant, local kernel (|Δ| <= {delta}): {numbers['conv_kernel_params_delta_10']} parameters"
    )

    kx, kw = jax.random.split(jax.random.key(0))
    size, k, shift = (24, 5, (3, 2)) if fast else (48, 5, (3, 2))
    x = jax.random.normal(kx, (1, 1, size, size))
    w = jax.random.normal(kw, (1, 1, k, k))
    for impl in jc.IMPLS:
        y = jc.conv2d(x, w, impl=impl)
        y_shifted = jc.conv2d(jnp.roll(x, shift, axis=(2, 3)), w, impl=impl)
        # Away from the wrapped borders, shifting the input shifts the output.
        interior = (slice(None), slice(None), slice(shift[0] + k, None), slice(shift[1] + k, None))
        err = float(jnp.abs(jnp.roll(y, shift, axis=(2, 3))[interior] - y_shifted[interior]).max())
        numbers[f"equivariance_max_error_{impl}"] = err
        print(
            f"{impl}: shift the input by {shift}, the output shifts too; max error away from borders {err:.2e}"
        )

    # Locality: poke one input pixel; exactly the outputs whose k x k window holds it change.
    poke = (size // 2, size // 2)
    changed = jnp.abs(jc.conv2d(x.at[0, 0, poke[0], poke[1]].add(1.0), w) - jc.conv2d(x, w))[0, 0] > 0
    rows, cols = np.nonzero(np.asarray(changed))
    numbers["changed_outputs"] = int(changed.sum())
    numbers["changed_region"] = [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
    print(
        f"poking input {poke} changes {numbers['changed_outputs']} outputs, a {numbers['changed_region']} block"
    )

    panels = [
        (x[0, 0], "input"),
        (jc.conv2d(x, w)[0, 0], "conv2d(input)"),
        (changed, "outputs changed by one pixel"),
    ]
    return save(out, "why_conv", numbers, image_row(panels, labelled_axes=True))
