"""LeNet-5 in Flax NNX (section 6.6): the network, initialisation and options of :class:`jaxconv.nn.LeNet`,
and weights converted both ways between the two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxconv._checks import LAYOUTS, check_choice
from jaxconv.nn.lenet import VARIANTS, LayerRow, xavier_conv_nchw, xavier_conv_nhwc, xavier_dense
from jaxconv.nnx.layers import AvgPool2D, Conv2D, MaxPool2D

Layer = tuple[str, str, Callable[[jax.Array], jax.Array]]


class LeNet(nnx.Module):
    """LeNet-5 on ``(N, 1, 28, 28)`` images (``NHWC``: ``(N, 28, 28, 1)``), logits ``(N, num_classes)``.

    The network of :class:`jaxconv.nn.LeNet`: ``variant="classic"`` is the book's (sigmoid, average
    pooling; 61,706 parameters), ``"modern"`` has ReLU and max pooling, and batch norm after each
    conv and hidden dense layer with ``batch_norm=True``. Weights Xavier-uniform as the book
    initialises them, biases zero. Like every NNX module it starts in training mode: ``model.eval()``
    makes batch norm use its running statistics, ``model.train()`` switches back.

    Examples:
      >>> from flax import nnx
      >>> from jaxconv.nn import count_params
      >>> model = LeNet(rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((2, 1, 28, 28))).shape, count_params(nnx.state(model, nnx.Param))
      ((2, 10), 61706)
    """

    def __init__(
        self, variant: str = "classic", *, num_classes: int = 10, impl: str = "auto", layout: str = "NCHW",
        batch_norm: bool = False, rngs: nnx.Rngs,
    ) -> None:  # fmt: skip
        check_choice("LeNet", "variant", variant, VARIANTS)
        check_choice("LeNet", "layout", layout, LAYOUTS)
        if batch_norm and variant == "classic":
            raise ValueError("LeNet: batch_norm=True needs variant='modern' (the book's LeNet has none)")
        self.variant, self.num_classes, self.impl, self.layout, self.batch_norm = (
            variant, num_classes, impl, layout, batch_norm,
        )  # fmt: skip
        conv_init = xavier_conv_nchw if layout == "NCHW" else xavier_conv_nhwc
        self.conv1 = Conv2D(1, 6, 5, padding=2, impl=impl, layout=layout, kernel_init=conv_init, rngs=rngs)
        self.conv2 = Conv2D(6, 16, 5, impl=impl, layout=layout, kernel_init=conv_init, rngs=rngs)
        self.fc1 = nnx.Linear(16 * 5 * 5, 120, kernel_init=xavier_dense, rngs=rngs)
        self.fc2 = nnx.Linear(120, 84, kernel_init=xavier_dense, rngs=rngs)
        self.fc3 = nnx.Linear(84, num_classes, kernel_init=xavier_dense, rngs=rngs)
        pool = MaxPool2D if variant == "modern" else AvgPool2D
        self.pool = pool(2, stride=2, impl=impl, layout=layout)
        if batch_norm:  # Linen's momentum and epsilon, over the channel axis
            channel_axis = 1 if layout == "NCHW" else -1
            self.bn1 = nnx.BatchNorm(6, axis=channel_axis, momentum=0.9, rngs=rngs)
            self.bn2 = nnx.BatchNorm(16, axis=channel_axis, momentum=0.9, rngs=rngs)
            self.bn3 = nnx.BatchNorm(120, momentum=0.9, rngs=rngs)
            self.bn4 = nnx.BatchNorm(84, momentum=0.9, rngs=rngs)

    def layers(self) -> list[Layer]:
        """The network in call order, ``(kind, module name or "", function)``: what :func:`summary` lists."""
        modern = self.variant == "modern"
        act: Layer = ("ReLU", "", nnx.relu) if modern else ("Sigmoid", "", nnx.sigmoid)
        steps: list[Layer] = []
        for i, module in ((1, self.conv1), (2, self.conv2)):
            steps.append(("Conv2D", f"conv{i}", module))
            if self.batch_norm:
                steps.append(("BatchNorm", f"bn{i}", getattr(self, f"bn{i}")))
            steps += [act, ("MaxPool2D" if modern else "AvgPool2D", "", self.pool)]
        steps.append(("Flatten", "", self._flatten))
        for i, module in ((1, self.fc1), (2, self.fc2)):
            steps.append(("Dense", f"fc{i}", module))
            if self.batch_norm:
                steps.append(("BatchNorm", f"bn{i + 2}", getattr(self, f"bn{i + 2}")))
            steps.append(act)
        return [*steps, ("Dense", "fc3", self.fc3)]

    def _flatten(self, x: jax.Array) -> jax.Array:
        """``(C, H, W)`` order whatever the layout, so dense weights match PyTorch's and Linen's."""
        if self.layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1)

    def __call__(self, x: jax.Array) -> jax.Array:
        for _, _, layer in self.layers():
            x = layer(x)
        return x


def summary(model: LeNet, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[LayerRow]:
    """Layer-by-layer output shapes and parameter counts, the rows :func:`jaxconv.nn.summary` gives the
    Linen LeNet (nothing is computed: shapes come from ``jax.eval_shape``, on a copy in eval mode).

    Examples:
      >>> from flax import nnx
      >>> for row in summary(LeNet(rngs=nnx.Rngs(0)))[:2]:
      ...     print(row)
      LayerRow(name='Conv2D', output_shape=(1, 6, 28, 28), params=156)
      LayerRow(name='Sigmoid', output_shape=(1, 6, 28, 28), params=0)
    """
    copy = nnx.clone(model)
    copy.eval()
    x: Any = jax.ShapeDtypeStruct(input_shape, jnp.float32)
    rows = []
    for kind, name, layer in copy.layers():
        x = jax.eval_shape(layer, x)
        params = (
            sum(a.size for a in jax.tree.leaves(nnx.state(getattr(copy, name), nnx.Param))) if name else 0
        )
        rows.append(LayerRow(kind, tuple(x.shape), params))
    return rows


def linen_variables(model: LeNet) -> dict[str, Any]:
    """The model's weights as :class:`jaxconv.nn.LeNet` variables (the same options): ``{"params": ...}``
    and, with batch norm, ``{"batch_stats": ...}``. Both APIs name and shape them alike, so this is
    the NNX state as plain dicts; the Linen model gives the same logits (a test checks)."""
    variables = {"params": nnx.to_pure_dict(nnx.state(model, nnx.Param))}
    stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    return variables | ({"batch_stats": stats} if stats else {})


def set_linen_variables(model: LeNet, variables: dict[str, Any]) -> LeNet:
    """Loads :class:`jaxconv.nn.LeNet` variables (``{"params", ["batch_stats"]}``) into ``model`` in place
    and returns it.

    Raises:
      ValueError: the variables are not those of a Linen LeNet with the model's options (names or shapes
        differ).
    """
    for collection, kind in (("params", nnx.Param), ("batch_stats", nnx.BatchStat)):
        state = nnx.state(model, kind)
        mine = nnx.to_pure_dict(state)
        theirs = variables.get(collection, {})
        shapes = [jax.tree.map(jnp.shape, t) for t in (mine, dict(theirs))]
        if shapes[0] != shapes[1]:
            raise ValueError(
                f"set_linen_variables: {collection} do not fit this LeNet (variant={model.variant!r}, "
                f"layout={model.layout!r}, batch_norm={model.batch_norm}): expected {shapes[0]}, "
                f"got {shapes[1]}"
            )
        nnx.replace_by_pure_dict(state, dict(theirs))
        nnx.update(model, state)
    return model
