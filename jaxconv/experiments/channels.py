"""6.4 Multiple input and output channels: the book's examples, 1x1 as a matmul, FLOPs, composition."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv as jc
from jaxconv.experiments.common import image_row, save


def conv_flops(n: int, c_in: int, c_out: int, hw: tuple[int, int], k: int) -> int:
    """Multiply-adds counted as 2 FLOPs: 2 * N * C_out * OH * OW * C_in * k * k."""
    return 2 * n * c_out * hw[0] * hw[1] * c_in * k * k


def composed_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The single kernel equal to correlating with ``a (M, C, k1, k1)`` then ``b (O, M, k2, k2)``.

    ``C[o, c, u, v] = sum_m sum_{s, t} a[m, c, s, t] * b[o, m, u - s, v - t]``, size k1 + k2 - 1.
    """
    m, c, k1, _ = a.shape
    o, _, k2, _ = b.shape
    out = np.zeros((o, c, k1 + k2 - 1, k1 + k2 - 1))
    for s in range(k1):
        for t in range(k1):
            out[:, :, s : s + k2, t : t + k2] += np.einsum("mc,omuv->ocuv", a[:, :, s, t], b)
    return out


def run(out: Path, fast: bool = False) -> dict:
    X = jnp.stack([jnp.arange(9.0).reshape(3, 3), jnp.arange(1.0, 10.0).reshape(3, 3)])
    K = jnp.stack([jnp.arange(4.0).reshape(2, 2), jnp.arange(1.0, 5.0).reshape(2, 2)])
    K3 = jnp.stack([K, K + 1, K + 2])
    numbers: dict = {
        "multi_in": np.asarray(jc.corr2d_multi_in(X, K)).tolist(),
        "multi_in_out": np.asarray(jc.corr2d_multi_in_out(X, K3)).tolist(),
    }
    print("corr2d_multi_in:", numbers["multi_in"], "(book: [[56, 72], [104, 120]])")
    print("corr2d_multi_in_out with K, K+1, K+2: output shape", np.shape(numbers["multi_in_out"]))

    kx, kk = jax.random.split(jax.random.key(0))
    X1 = jax.random.normal(kx, (3, 3, 3))
    K1 = jax.random.normal(kk, (2, 3, 1, 1))
    numbers["1x1_max_error"] = float(
        jnp.abs(jc.corr2d_multi_in_out_1x1(X1, K1) - jc.corr2d_multi_in_out(X1, K1)).max()
    )
    print(f"1x1 convolution == matrix product: max error {numbers['1x1_max_error']:.2e}")

    # The book's cost example: c_i = c_o = 100, k = 5, 64x64 output (padding 2), per image.
    n, c, hw, k = 1, 100, (64, 64), 5
    x = jax.ShapeDtypeStruct((n, c, *hw), jnp.float32)
    w = jax.ShapeDtypeStruct((c, c, k, k), jnp.float32)

    def cost_of(impl: str) -> dict:
        compiled = jax.jit(lambda x, w: jc.conv2d(x, w, padding=2, impl=impl)).lower(x, w).compile()
        cost = compiled.cost_analysis()
        return (cost[0] if isinstance(cost, list) else cost) or {}

    cost = cost_of("xla")
    numbers["flops_formula"] = conv_flops(n, c, c, hw, k)
    numbers["flops_hlo"] = float(cost.get("flops", float("nan")))
    numbers["bytes_formula"] = 4 * (n * c * hw[0] * hw[1] * 2 + c * c * k * k)
    numbers["bytes_hlo"] = float(cost.get("bytes accessed", float("nan")))
    # Winograd's F(4, 5) tiles: 64 products per 16 outputs where the formula counts 16 * 25.
    numbers["flops_hlo_winograd"] = float(cost_of("winograd").get("flops", float("nan")))
    print(f"100->100 channels, 5x5, 64x64: {numbers['flops_formula'] / 1e9:.3f} GFLOP by formula "
          f"({numbers['flops_formula'] / 2e9:.3f} G multiply-adds), {numbers['flops_hlo'] / 1e9:.3f} GFLOP by XLA's "
          f"cost analysis; memory {numbers['bytes_formula'] / 1e6:.1f} MB by formula, "
          f"{numbers['bytes_hlo'] / 1e6:.1f} MB accessed by XLA; impl='winograd' does "
          f"{numbers['flops_hlo_winograd'] / 1e9:.3f} GFLOP, transforms included")  # fmt: skip

    # Exercise: two convolutions without a nonlinearity are one convolution with a k1+k2-1 kernel.
    ka, kb, kx = jax.random.split(jax.random.key(1), 3)
    a = jax.random.normal(ka, (4, 3, 3, 3))
    b = jax.random.normal(kb, (2, 4, 2, 2))
    xin = jax.random.normal(kx, (1, 3, 12, 12))
    two = jc.conv2d(jc.conv2d(xin, a), b)
    one = jc.conv2d(
        xin, jnp.asarray(composed_kernel(np.asarray(a, np.float64), np.asarray(b, np.float64)), jnp.float32)
    )
    numbers["composition_kernel_size"] = a.shape[-1] + b.shape[-1] - 1
    numbers["composition_max_error"] = float(jnp.abs(two - one).max() / jnp.abs(two).max())
    print(
        f"conv(conv(x, 3x3), 2x2) == conv(x, 4x4): relative max error {numbers['composition_max_error']:.2e}"
    )

    panels = [
        (two[0, 0], "two stacked convs"),
        (one[0, 0], "one 4x4 conv"),
        (jnp.abs(two - one)[0, 0], "|difference|"),
    ]
    return save(out, "channels", numbers, image_row(panels))
