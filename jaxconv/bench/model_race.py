"""Whole training steps of two published architectures, stock Flax and jaxconv beside PyTorch's same model.

``python -m jaxconv.bench.model_race [--model mobilenet_v2|unet_decoder] [--rounds R] [--out DIR]``

* ``mobilenet_v2``: MobileNetV2's inverted-residual stack as torchvision builds it
  (``torchvision.models.mobilenetv2.InvertedResidual``: expand 1x1, depthwise 3x3, project 1x1, batch
  norm, ReLU6, the residual where stride is 1 and the channels match), the blocks of
  ``mobilenet_v2().features[2:7]`` (16 -> 24 -> 24 -> 32 -> 32 -> 32, expansion 6, strides 2, 1, 2, 1, 1)
  on the 112x112 activations features[1] hands them, then a mean pool and a 10-way classifier.
* ``unet_decoder``: the decoder of U-Net as milesial/Pytorch-UNet writes it (``Up``: a transposed 2x2
  stride-2 convolution halving the channels, the skip connection concatenated, ``DoubleConv``: two
  3x3 convolutions without bias, each with batch norm and ReLU), three ``Up`` blocks from a 256-channel
  8x8 bottleneck with skips of 128, 64 and 32 channels, and a 1x1 ``OutConv`` to 2 classes,
  per-pixel cross-entropy.
* ``resnet18``: ResNet-18 as Flax's ImageNet example writes it (``examples/imagenet/models.py``: a 7x7
  stride-2 stem with batch norm, ReLU and a 3x3 stride-2 max pool, four stages of two basic blocks with
  1x1 projections where the shape changes, the second batch norm of each block starting at zero), 10
  classes, on ``--size`` square RGB images (default 64), beside torchvision's ``resnet18(num_classes=10)``.

Each contestant runs one SGD-momentum step (learning rate 0.01, momentum 0.9) of batch-norm training on
the same batch shapes: stock Flax Linen (``lax``), Flax with jaxconv plugged in (``nn.Conv(...,
conv_general_dilated=jc.conv_general_dilated)``, ``jc.conv_transpose`` in the transposed layers, as Flax's
``nn.ConvTranspose`` calls ``lax.conv_transpose``), and PyTorch's model (NCHW and channels_last), in
interleaved rounds (:func:`jaxconv.timing.rounds.round_orders`), ratios per round. PyTorch is optional.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

import jaxconv as jc
from jaxconv import nn as jnn
from jaxconv.bench import torch_peer
from jaxconv.timing.rounds import paired_speedups, time_in_rounds
from jaxconv.tuning import lookup
from jaxconv.tuning.table import use_table
from jaxconv.tuning.tuner import Tuner

# (input channels, output channels, stride) of torchvision's mobilenet_v2().features[2:7], expansion 6.
MOBILENET_BLOCKS = ((16, 24, 2), (24, 24, 1), (24, 32, 2), (32, 32, 1), (32, 32, 1))
EXPANSION = 6
# (input, output) channels of the decoder's Up blocks, from the bottleneck down.
UNET_UPS = ((256, 128), (128, 64), (64, 32))
UNET_CLASSES = 2
RESNET18_STAGES = (2, 2, 2, 2)
MODELS = ("mobilenet_v2", "unet_decoder", "resnet18")


# ---- Flax Linen -------------------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """torchvision's ``InvertedResidual`` (MobileNetV2), NHWC."""

    out_channels: int
    stride: int
    conv: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        hidden = c * EXPANSION
        norm = partial(nn.BatchNorm, use_running_average=False, momentum=0.9, epsilon=1e-5)
        y = jax.nn.relu6(norm()(self.conv(hidden, (1, 1), use_bias=False)(x)))
        y = self.conv(
            hidden,
            (3, 3),
            strides=self.stride,
            padding=((1, 1), (1, 1)),
            feature_group_count=hidden,
            use_bias=False,
        )(y)
        y = norm()(self.conv(self.out_channels, (1, 1), use_bias=False)(jax.nn.relu6(norm()(y))))
        return x + y if self.stride == 1 and c == self.out_channels else y


class MobileNetStack(nn.Module):
    conv: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _, out, stride in MOBILENET_BLOCKS:
            x = InvertedResidual(out, stride, self.conv)(x)
        return nn.Dense(10)(x.mean(axis=(1, 2)))


class TransposedConv(nn.Module):
    """Flax's ``nn.ConvTranspose`` (kernel ``(kh, kw, in, out)``, ``"VALID"``, a bias) with the transposed
    convolution passed in: ``lax.conv_transpose`` (what Flax calls) or ``jc.conv_transpose``."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    conv_transpose: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (*self.kernel_size, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        y = self.conv_transpose(x, kernel, self.strides, "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias[None, None, None, :]


class Up(nn.Module):
    """milesial/Pytorch-UNet's ``Up`` (``bilinear=False``) with its ``DoubleConv``, NHWC."""

    out_channels: int
    conv: Callable[..., nn.Module]
    conv_transpose: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array, skip: jax.Array) -> jax.Array:
        x = TransposedConv(x.shape[-1] // 2, (2, 2), (2, 2), self.conv_transpose)(x)
        x = jnp.concatenate([skip, x], axis=-1)
        for _ in range(2):
            x = self.conv(self.out_channels, (3, 3), padding=((1, 1), (1, 1)), use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)(x))
        return x


class UNetDecoder(nn.Module):
    conv: Callable[..., nn.Module]
    conv_transpose: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array, skips: Sequence[jax.Array]) -> jax.Array:
        for (_, out), skip in zip(UNET_UPS, skips, strict=True):
            x = Up(out, self.conv, self.conv_transpose)(x, skip)
        return self.conv(UNET_CLASSES, (1, 1))(x)


class ResNetBlock(nn.Module):
    """The basic block of Flax's ImageNet example (``ResNetBlock``)."""

    filters: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters, (3, 3))(y))
        residual = x
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return nn.relu(residual + y)


class ResNet18(nn.Module):
    """``ResNet18`` of Flax's ImageNet example (``ResNet`` with stage sizes 2, 2, 2, 2), training mode."""

    conv: Callable[..., nn.Module]
    max_pool: Callable[..., jax.Array] = nn.max_pool
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = partial(self.conv, use_bias=False)
        norm = partial(nn.BatchNorm, use_running_average=False, momentum=0.9, epsilon=1e-5)
        x = conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = self.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, block_size in enumerate(RESNET18_STAGES):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = ResNetBlock(64 * 2**i, conv, norm, strides)(x)
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


class CNN(nnx.Module):
    """The CNN of Flax's NNX MNIST tutorial: two 3x3 convs (1 -> 32 -> 64), average pooling, 3136 -> 256 -> 10
    (``experiments/drop_in.py`` trains it on Fashion-MNIST)."""

    def __init__(self, conv_general_dilated: Callable[..., jax.Array], *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(1, 32, (3, 3), conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        x = pool(nnx.relu(self.conv1(x)))
        x = pool(nnx.relu(self.conv2(x)))
        x = nnx.relu(self.linear1(x.reshape(x.shape[0], -1)))
        return self.linear2(x)


def flax_model(model: str, impl: str | None) -> nn.Module:
    """The Linen model, stock (``impl=None``: lax) or with jaxconv's ``impl`` plugged in."""
    if impl is None:
        conv, transpose = nn.Conv, lax.conv_transpose
    else:
        conv = partial(nn.Conv, conv_general_dilated=partial(jc.conv_general_dilated, impl=impl))
        transpose = partial(jc.conv_transpose, impl=impl)
    if model == "resnet18":  # its max pool too: jaxconv.nn.max_pool has nn.max_pool's signature
        return ResNet18(conv, nn.max_pool if impl is None else partial(jnn.max_pool, impl=impl))
    return MobileNetStack(conv) if model == "mobilenet_v2" else UNetDecoder(conv, transpose)


def batch_shapes(model: str, batch: int, size: int = 64) -> dict[str, tuple[int, ...]]:
    """The inputs' NHWC shapes (``size``: ResNet-18's image side)."""
    if model == "mobilenet_v2":
        return {"x": (batch, 112, 112, MOBILENET_BLOCKS[0][0])}
    if model == "resnet18":
        return {"x": (batch, size, size, 3)}
    size, shapes = 8, {"x": (batch, 8, 8, UNET_UPS[0][0])}
    for i, (_, out) in enumerate(UNET_UPS):
        size *= 2
        shapes[f"skip{i}"] = (batch, size, size, out)
    return shapes


def linen_step(net: nn.Module, args: Sequence[Any], labels: jax.Array, tx: optax.GradientTransformation,
               **apply: Any) -> tuple[Callable, Any]:  # fmt: skip
    """An unjitted ``step(state) -> (state, loss)`` of ``tx`` on ``net``'s cross-entropy over ``args``
    (batch norm in training mode where ``net`` has batch statistics), and its first state
    ``(params, stats, opt)``."""
    variables = net.init(jax.random.key(0), *args, **apply)
    with_stats = "batch_stats" in variables

    def loss_fn(params: Any, stats: Any) -> tuple[jax.Array, Any]:
        if not with_stats:
            logits: Any = net.apply({"params": params}, *args, **apply)
        else:
            logits, new = net.apply({"params": params, "batch_stats": stats}, *args, mutable=["batch_stats"],
                                    **apply)  # fmt: skip
            stats = new["batch_stats"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), stats

    def step(state: tuple) -> tuple[tuple, jax.Array]:
        params, stats, opt = state
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), stats, opt), loss

    params = variables["params"]
    return step, (params, variables.get("batch_stats"), tx.init(params))


def _flax_step(
    model: str, impl: str | None, inputs: dict[str, jax.Array], labels: jax.Array
) -> tuple[jax.stages.Wrapped, Any]:
    """A jitted ``step(state) -> (state, loss)`` of SGD with momentum, and its first state."""
    net = flax_model(model, impl)
    skips = [inputs[f"skip{i}"] for i in range(3)] if model == "unet_decoder" else None
    args = (inputs["x"],) if skips is None else (inputs["x"], skips)
    step, state = linen_step(net, args, labels, optax.sgd(0.01, momentum=0.9))
    return jax.jit(step), state


# ---- PyTorch ----------------------------------------------------------------------------------------


def torch_model(model: str) -> Any:
    """The same architecture in PyTorch (torchvision's and milesial's modules, transcribed)."""
    torch = torch_peer.torch()
    nn_t = torch.nn

    class TorchInvertedResidual(nn_t.Module):
        def __init__(self, c: int, out: int, stride: int) -> None:
            super().__init__()
            hidden = c * EXPANSION
            self.use_res = stride == 1 and c == out
            self.conv = nn_t.Sequential(
                nn_t.Conv2d(c, hidden, 1, bias=False),
                nn_t.BatchNorm2d(hidden),
                nn_t.ReLU6(inplace=True),
                nn_t.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                nn_t.BatchNorm2d(hidden),
                nn_t.ReLU6(inplace=True),
                nn_t.Conv2d(hidden, out, 1, bias=False),
                nn_t.BatchNorm2d(out),
            )

        def forward(self, x: Any) -> Any:
            return x + self.conv(x) if self.use_res else self.conv(x)

    class TorchMobileNetStack(nn_t.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn_t.Sequential(*(TorchInvertedResidual(*b) for b in MOBILENET_BLOCKS))
            self.classifier = nn_t.Linear(MOBILENET_BLOCKS[-1][1], 10)

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x).mean(dim=(2, 3)))

    class TorchUp(nn_t.Module):
        def __init__(self, c: int, out: int) -> None:
            super().__init__()
            self.up = nn_t.ConvTranspose2d(c, c // 2, kernel_size=2, stride=2)
            self.conv = nn_t.Sequential(
                nn_t.Conv2d(c, out, 3, padding=1, bias=False),
                nn_t.BatchNorm2d(out),
                nn_t.ReLU(inplace=True),
                nn_t.Conv2d(out, out, 3, padding=1, bias=False),
                nn_t.BatchNorm2d(out),
                nn_t.ReLU(inplace=True),
            )

        def forward(self, x: Any, skip: Any) -> Any:
            return self.conv(torch.cat([skip, self.up(x)], dim=1))

    class TorchUNetDecoder(nn_t.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ups = nn_t.ModuleList(TorchUp(c, out) for c, out in UNET_UPS)
            self.outc = nn_t.Conv2d(UNET_UPS[-1][1], UNET_CLASSES, 1)

        def forward(self, x: Any, skips: Sequence[Any]) -> Any:
            for up, skip in zip(self.ups, skips, strict=True):
                x = up(x, skip)
            return self.outc(x)

    if model == "resnet18":
        return torch_peer.torchvision().models.resnet18(num_classes=10)
    return TorchMobileNetStack() if model == "mobilenet_v2" else TorchUNetDecoder()


def _torch_step(
    model: str, shapes: dict[str, tuple[int, ...]], labels: np.ndarray, channels_last: bool
) -> Callable:
    torch = torch_peer.torch()
    torch.manual_seed(0)
    net = torch_model(model)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    inputs = {k: torch.randn(s[0], s[3], s[1], s[2]).contiguous(memory_format=fmt) for k, s in shapes.items()}
    target = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        if model != "unet_decoder":
            out = net(inputs["x"])
        else:
            out = net(inputs["x"], [inputs[f"skip{i}"] for i in range(3)])
        loss = loss_fn(out, target)
        loss.backward()
        opt.step()
        return loss.detach().item()

    return step


# ---- the race ---------------------------------------------------------------------------------------


def run(
    model: str = "mobilenet_v2",
    batch: int = 32,
    rounds: int = 5,
    steps_per_round: int = 2,
    impls: Sequence[str] = ("auto",),
    with_torch: bool | None = None,
    size: int = 64,
    table: str | os.PathLike[str] | None = None,
) -> dict:
    """Times each contestant's training step in interleaved rounds; returns the per-round seconds, the
    medians and the per-round speed-ups over stock Flax and PyTorch.

    ``impls`` are jaxconv's impls to plug in, plus ``"rule"`` (``auto`` as the hand-written rule picks,
    whatever a tuning table says) and ``"tuned"`` (``auto`` after :func:`jaxconv.tune` measured this
    step's calls into ``table``, default ``runs/model_race/tuning.json``); the tuning runs before any
    contestant compiles, and its report and seconds are in the result.
    """
    if model not in MODELS:
        raise ValueError(f"run: model must be one of {MODELS}, got {model!r}")
    with_torch = torch_peer.available() if with_torch is None else with_torch
    shapes = batch_shapes(model, batch, size)
    keys = jax.random.split(jax.random.key(1), len(shapes) + 1)
    inputs = {k: jax.random.normal(key, s) for (k, s), key in zip(shapes.items(), keys, strict=False)}
    label_shape = (batch,) if model != "unet_decoder" else (batch, *[s for s in shapes.values()][-1][1:3])
    labels_np = np.random.default_rng(0).integers(
        0, 10 if model != "unet_decoder" else UNET_CLASSES, label_shape
    )
    labels = jnp.asarray(labels_np, jnp.int32)
    tuning = {}
    if "tuned" in impls:  # before anything compiles: tuning clears JAX's caches
        table = Path(table or "runs/model_race/tuning.json")
        step, state = _flax_step(model, "auto", inputs, labels)
        start = time.perf_counter()
        report = Tuner(table=table).tune(step, state)
        tuning = {"seconds": time.perf_counter() - start, "table": str(table), "report": report.to_markdown()}
        print(report)
    contestants: dict[str, Callable[[], Any]] = {}
    states: dict[str, Any] = {}
    first_loss: dict[str, float] = {}  # the same weights and batch: stock and plugged-in agree
    for name, impl in (("stock Flax", None), *((f"jaxconv {i}", i) for i in impls)):
        with picks(impl, table):
            step, state = _flax_step(model, "auto" if impl in ("rule", "tuned") else impl, inputs, labels)
            step = step.lower(state).compile()  # ahead of time: the picks of this context, kept
        state, loss = step(state)
        first_loss[name] = float(loss)
        states[name] = state

        def run_jax(name: str = name, step: Callable = step) -> Any:
            states[name], loss = step(states[name])
            return loss

        contestants[name] = run_jax
    if with_torch:
        torch = torch_peer.torch()
        torch.set_num_threads(os.cpu_count() or 1)
        for name, channels_last in (("torch NCHW", False), ("torch channels_last", True)):
            contestants[name] = _torch_step(model, shapes, labels_np, channels_last)
            contestants[name]()
    seconds = time_in_rounds(contestants, rounds, steps_per_round)
    step_ms = {name: 1e3 * float(np.median(s)) for name, s in seconds.items()}
    peers = [p for p in ("stock Flax", "torch NCHW", "torch channels_last") if p in seconds]
    speedups = {
        name: {peer: paired_speedups(seconds[peer], s) for peer in peers if peer != name}
        for name, s in seconds.items()
    }
    return {
        "model": model,
        "batch": batch,
        "shapes": shapes,
        "rounds": rounds,
        "steps_per_round": steps_per_round,
        "device": str(jax.devices()[0]),
        "cpu_threads": os.cpu_count(),
        "first_loss": first_loss,
        "seconds": seconds,
        "step_ms": step_ms,
        "speedups": speedups,
        "tuning": tuning,
    }


def picks(impl: str | None, table: str | os.PathLike[str] | None) -> contextlib.AbstractContextManager:
    """Where a contestant's step is traced: ``"rule"`` under the rule alone, ``"tuned"`` reading ``table``."""
    if impl == "rule":
        return lookup.rule_only()
    if impl == "tuned":
        return use_table(table or "runs/model_race/tuning.json")
    return contextlib.nullcontext()


def format_result(result: dict) -> str:
    lines = [
        f"{result['model']}, batch {result['batch']}, {result['device']}, median of {result['rounds']} "
        f"interleaved rounds; speed-ups: per-round median (middle half)"
    ]
    for name, ms in result["step_ms"].items():
        vs = ", ".join(
            f"{s['median']:.2f}x {peer} ({s['q25']:.2f}-{s['q75']:.2f})"
            for peer, s in result["speedups"][name].items()
        )
        lines.append(f"  {name:<22} {ms:9.1f} ms/step  {vs}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxconv.bench.model_race", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--model", choices=MODELS, default="mobilenet_v2")
    parser.add_argument(
        "--batch", type=int, default=None, help="default: 32 (mobilenet_v2, resnet18), 8 (unet_decoder)"
    )
    parser.add_argument("--size", type=int, default=64, help="resnet18's image side (default 64)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--impls", default="auto",
                        help="comma-separated jaxconv impls to plug in; also 'rule' and 'tuned' (auto as the "
                             "rule picks, and after jaxconv.tune)")  # fmt: skip
    parser.add_argument("--table", default=None, help="the tuning table of 'tuned' (default OUT/tuning.json)")
    parser.add_argument("--out", default="runs/model_race", help="folder for MODEL.json")
    args = parser.parse_args(argv)
    batch = args.batch or (8 if args.model == "unet_decoder" else 32)
    table = args.table or str(Path(args.out) / "tuning.json")
    result = run(
        args.model, batch, args.rounds, impls=tuple(args.impls.split(",")), size=args.size, table=table
    )
    print(format_result(result))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.model if args.model != "resnet18" else f"resnet18-{args.size}px-b{batch}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
