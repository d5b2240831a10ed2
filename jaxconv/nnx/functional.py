"""An NNX module seen as Linen sees a model: variables (plain dicts) and a pure ``apply`` function.

This is the seam that lets one training loop (:mod:`jaxconv.train`) train both APIs: the loop keeps
Linen's contract, ``apply_fn(variables, x, train=..., mutable=["batch_stats"])``, and an NNX model
is split once into its graph and state (``nnx.split``) and merged back inside each jitted step.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx


def _apply(
    graphdef: nnx.GraphDef, template: tuple[nnx.State, nnx.State], variables: dict[str, Any], x: jax.Array,
    train: bool = False, mutable: Any = False,
) -> Any:  # fmt: skip
    params, stats = (jax.tree.map(lambda a: a, state) for state in template)  # fresh containers
    nnx.replace_by_pure_dict(params, variables["params"])
    if variables.get("batch_stats"):
        nnx.replace_by_pure_dict(stats, variables["batch_stats"])
    model = nnx.merge(graphdef, params, stats)
    model.train() if train else model.eval()
    y = model(x)
    if not mutable:
        return y
    return y, {"batch_stats": nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))}


def functional(model: nnx.Module) -> tuple[Any, dict[str, Any]]:
    """``(apply_fn, variables)`` for ``model``, with Linen's contract.

    ``variables`` is ``{"params": ...}`` (and ``{"batch_stats": ...}`` where the model has batch
    norm), plain nested dicts of arrays; ``apply_fn(variables, x, train=False, mutable=False)`` runs
    the model on them in eval mode (``train=True``: training mode), returning the output, or with
    ``mutable`` ``(output, {"batch_stats": updated})``. It is pure and jit-able, and ``model`` itself is
    left as it was.

    Raises:
      ValueError: the model holds state other than parameters and batch statistics (e.g. dropout's
        random state), which this contract cannot carry.

    Examples:
      >>> from flax import nnx
      >>> from jaxconv.nnx import LeNet
      >>> apply_fn, variables = functional(LeNet(rngs=nnx.Rngs(0)))
      >>> apply_fn(variables, jnp.zeros((2, 1, 28, 28))).shape
      (2, 10)
    """
    graphdef, params, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    if jax.tree.leaves(rest):
        raise ValueError(
            f"functional: {type(model).__name__} holds state other than nnx.Param and nnx.BatchStat"
        )
    variables = {"params": nnx.to_pure_dict(params)}
    if jax.tree.leaves(stats):
        variables["batch_stats"] = nnx.to_pure_dict(stats)
    return _Apply(graphdef, (params, stats)), variables


class _Apply:
    """``_apply`` bound to a model's graph and state template; equal (and hashing alike) for models of one
    structure, so that jitted steps taking it as a static argument compile once per structure. The
    template only gives the containers: every value comes from the ``variables`` of the call."""

    def __init__(self, graphdef: nnx.GraphDef, template: tuple[nnx.State, nnx.State]) -> None:
        self.graphdef, self.template = graphdef, template
        shapes = [(a.shape, a.dtype) for a in jax.tree.leaves(template)]
        self._key = (graphdef, jax.tree.structure(template), tuple(shapes))

    def __call__(
        self, variables: dict[str, Any], x: jax.Array, train: bool = False, mutable: Any = False
    ) -> Any:
        return _apply(self.graphdef, self.template, variables, x, train, mutable)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Apply) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)
