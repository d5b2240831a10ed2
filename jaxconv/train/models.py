"""The models ``jaxconv train`` can train on Fashion-MNIST: one entry each, read by the config and the CLI.

An entry builds the network in Linen and, where it has one, in NNX (loaded with the Linen draw, so a seed
gives the same initial weights in both APIs). Adding a model is one entry in :data:`MODELS`; its name is
then a ``TrainConfig(variant=...)`` and a ``jaxconv train --variant`` choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

from flax import linen as nn
from flax import nnx

from jaxconv.nn.lenet import LeNet
from jaxconv.nnx.lenet import LeNet as NNXLeNet
from jaxconv.nnx.lenet import set_linen_variables


@dataclasses.dataclass(frozen=True)
class Model:
    """One trainable model: ``linen(impl=, layout=, batch_norm=)`` builds the Linen module; ``nnx(impl=,
    layout=, batch_norm=, rngs=)`` the NNX one, and ``from_linen(model, variables)`` loads Linen variables
    into it (None: Linen only)."""

    linen: Callable[..., nn.Module]
    summary: str
    nnx: Callable[..., nnx.Module] | None = None
    from_linen: Callable[[Any, dict[str, Any]], Any] | None = None
    batch_norm: bool = False  # whether it takes batch_norm=True


MODELS: dict[str, Model] = {
    "classic": Model(partial(LeNet, "classic"), "the book's LeNet: sigmoid, average pooling",
                     partial(NNXLeNet, "classic"), set_linen_variables),
    "modern": Model(partial(LeNet, "modern"), "LeNet with ReLU and max pooling (batch norm optional)",
                    partial(NNXLeNet, "modern"), set_linen_variables, batch_norm=True),
}  # fmt: skip
