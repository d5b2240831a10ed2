"""LeNet-5 as the book builds it (section 6.6), and the variant people train today."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxconv.nn.layers import AvgPool2D, Conv2D, MaxPool2D

VARIANTS = ("classic", "modern")

# The book applies Xavier-uniform to every Conv2d and Linear weight. For OIHW kernels the fan-in
# axis is 1 and the fan-out axis 0 (Flax's defaults assume HWIO).
xavier_conv_nchw = nn.initializers.xavier_uniform(in_axis=1, out_axis=0)


def xavier_conv_nhwc(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """The OIHW initialiser's draw transposed to HWIO: both layouts start from the same weights."""
    kh, kw, i, o = shape
    return xavier_conv_nchw(key, (o, i, kh, kw), dtype).transpose(2, 3, 1, 0)


xavier_dense = nn.initializers.xavier_uniform()


class LeNet(nn.Module):
    """LeNet-5 on ``(N, 1, 28, 28)`` images (``NHWC``: ``(N, 28, 28, 1)``), logits ``(N, num_classes)``.

    ``variant="classic"``, the book's: Conv 6@5x5 pad 2 -> sigmoid -> AvgPool 2/2 -> Conv 16@5x5
    -> sigmoid -> AvgPool 2/2 -> flatten -> Dense 120 -> sigmoid -> Dense 84 -> sigmoid -> Dense
    10; 61,706 parameters. ``variant="modern"``: the same shape with ReLU and max pooling, and
    batch norm after each conv and hidden dense layer when ``batch_norm=True``.

    Weights are Xavier-uniform (as the book initialises them), biases zero. Flattening is in
    ``(C, H, W)`` order whatever the layout, so dense weights match PyTorch's.
    """

    variant: str = "classic"
    num_classes: int = 10
    impl: str = "auto"
    layout: str = "NCHW"
    batch_norm: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"LeNet: variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.batch_norm and self.variant == "classic":
            raise ValueError("LeNet: batch_norm=True needs variant='modern' (the book's LeNet has none)")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        modern = self.variant == "modern"
        act: Callable[[jax.Array], jax.Array] = nn.relu if modern else nn.sigmoid
        act_name = "ReLU" if modern else "Sigmoid"
        pool, pool_name = (MaxPool2D, "MaxPool2D") if modern else (AvgPool2D, "AvgPool2D")
        conv_init = xavier_conv_nchw if self.layout == "NCHW" else xavier_conv_nhwc
        channel_axis = 1 if self.layout == "NCHW" else -1
        step = iter(range(100))

        def record(kind: str, y: jax.Array, module: str = "") -> jax.Array:
            # Sown as "NN kind module" so summary() can list layers in call order.
            self.sow("intermediates", f"{next(step):02d} {kind} {module}".rstrip(), y)
            return y

        def norm(y: jax.Array, axis: int, name: str) -> jax.Array:
            if not self.batch_norm:
                return y
            y = nn.BatchNorm(use_running_average=not train, axis=axis, momentum=0.9, name=name)(y)
            return record("BatchNorm", y, name)

        for i, (features, padding) in enumerate(((6, 2), (16, 0)), start=1):
            conv = Conv2D(
                features,
                5,
                padding=padding,
                impl=self.impl,
                layout=self.layout,
                kernel_init=conv_init,
                name=f"conv{i}",
            )
            x = record("Conv2D", conv(x), f"conv{i}")
            x = record(act_name, act(norm(x, channel_axis, f"bn{i}")))
            x = record(pool_name, pool(2, stride=2, impl=self.impl, layout=self.layout)(x))
        if self.layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        x = record("Flatten", x.reshape(x.shape[0], -1))
        for i, features in enumerate((120, 84), start=1):
            x = record("Dense", nn.Dense(features, kernel_init=xavier_dense, name=f"fc{i}")(x), f"fc{i}")
            x = record(act_name, act(norm(x, -1, f"bn{i + 2}")))
        return record("Dense", nn.Dense(self.num_classes, kernel_init=xavier_dense, name="fc3")(x), "fc3")


class LayerRow(NamedTuple):
    name: str
    output_shape: tuple[int, ...]
    params: int


def summary(model: LeNet, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[LayerRow]:
    """Layer-by-layer output shapes and parameter counts, like the book's shape printout.

    Nothing is computed: shapes come from ``jax.eval_shape``. Batch-norm rows count their scale
    and bias (the running statistics are not parameters).

    Examples:
      >>> for row in summary(LeNet())[:3]:
      ...     print(row)
      LayerRow(name='Conv2D', output_shape=(1, 6, 28, 28), params=156)
      LayerRow(name='Sigmoid', output_shape=(1, 6, 28, 28), params=0)
      LayerRow(name='AvgPool2D', output_shape=(1, 6, 14, 14), params=0)
    """
    x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    _, state = jax.eval_shape(lambda v, x: model.apply(v, x, mutable=["intermediates"]), variables, x)
    counts = {name: sum(a.size for a in jax.tree.leaves(p)) for name, p in variables["params"].items()}
    rows = []
    for key in sorted(state["intermediates"]):
        _, kind, *module = key.split(" ")
        (out,) = state["intermediates"][key]
        rows.append(LayerRow(kind, tuple(out.shape), counts.get(module[0], 0) if module else 0))
    return rows


def format_summary(rows: list[LayerRow]) -> str:
    """The book's printout (``Conv2D output shape: (1, 6, 28, 28)``) with parameter counts."""
    lines = [f"{r.name:>10} output shape: {str(r.output_shape):<18} params: {r.params:,}" for r in rows]
    lines.append(f"{'total':>10} parameters: {sum(r.params for r in rows):,}")
    return "\n".join(lines)


def count_params(params: object) -> int:
    """Number of scalars in a parameter tree."""
    return sum(a.size for a in jax.tree.leaves(params))
