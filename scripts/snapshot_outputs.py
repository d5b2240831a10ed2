"""Writes the outputs and gradients of jaxconv's public ops, and a few LeNet training steps, to an .npz.

A refactor that must not change numbers runs this before and after and compares bit for bit:

    python scripts/snapshot_outputs.py before.npz   # on the old commit
    python scripts/snapshot_outputs.py after.npz    # on the new one
    python scripts/snapshot_outputs.py --compare before.npz after.npz

Every impl (the Pallas kernel in its interpreter on CPU), both layouts, and the options each op takes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv as jc

IMPLS = ("auto", "xla", "manual", "im2col", "shift_add", "banded", "winograd", "pallas")


def _normal(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _with_grads(out: dict, name: str, f: Callable, *args: jax.Array) -> None:
    y, pullback = jax.vjp(f, *args)
    out[f"{name}/y"] = np.asarray(y)
    try:
        grads = pullback(_normal(99, y.shape))
    except NotImplementedError:  # lax has no gradient for a dilated max window
        return
    for i, g in enumerate(grads):
        out[f"{name}/d{i}"] = np.asarray(g)


def _convs(out: dict) -> None:
    cases = {
        "plain": dict(shape=(2, 4, 9, 9), o=6, k=3, opts={}),
        "s2p1": dict(shape=(2, 4, 10, 10), o=6, k=3, opts=dict(stride=2, padding=1)),
        "same_d2": dict(shape=(1, 3, 11, 9), o=5, k=3, opts=dict(padding="same", dilation=2)),
        "g2_k5": dict(shape=(2, 4, 12, 12), o=6, k=5, opts=dict(groups=2, padding=(1, 2))),
        "reflect": dict(shape=(1, 2, 8, 8), o=3, k=3, opts=dict(padding=1, padding_mode="reflect")),
        "c16": dict(shape=(2, 16, 10, 10), o=16, k=3, opts=dict(padding=1)),
        "1x1": dict(shape=(2, 8, 7, 7), o=4, k=1, opts={}),
    }
    for case, c in cases.items():
        n, ci, h, w = c["shape"]
        groups = c["opts"].get("groups", 1)
        x, wt, b = (
            _normal(1, c["shape"]),
            _normal(2, (c["o"], ci // groups, c["k"], c["k"])),
            _normal(3, (c["o"],)),
        )
        for layout in ("NCHW", "NHWC"):
            xl = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
            wl = wt if layout == "NCHW" else wt.transpose(2, 3, 1, 0)
            for impl in IMPLS:
                f = lambda x, w, b, impl=impl, layout=layout, o=c["opts"]: jc.conv2d(  # noqa: E731
                    x, w, b, layout=layout, impl=impl, **o
                )
                _with_grads(out, f"conv2d/{case}/{layout}/{impl}", f, xl, wl, b)


def _transposes(out: dict) -> None:
    cases = {
        "s2": dict(ci=4, o=3, k=3, opts=dict(stride=2, padding=1, output_padding=1)),
        "k4s2": dict(ci=4, o=4, k=4, opts=dict(stride=2, padding=1)),
        "g2d2": dict(ci=4, o=4, k=3, opts=dict(groups=2, dilation=2)),
    }
    for case, c in cases.items():
        groups = c["opts"].get("groups", 1)
        x, wt = _normal(4, (2, c["ci"], 6, 5)), _normal(5, (c["ci"], c["o"] // groups, c["k"], c["k"]))
        for layout in ("NCHW", "NHWC"):
            xl = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
            wl = wt if layout == "NCHW" else wt.transpose(2, 3, 1, 0)
            for impl in IMPLS:
                f = lambda x, w, impl=impl, layout=layout, o=c["opts"]: jc.conv_transpose2d(  # noqa: E731
                    x, w, layout=layout, impl=impl, **o
                )
                _with_grads(out, f"transpose/{case}/{layout}/{impl}", f, xl, wl)


def _general(out: dict) -> None:
    x, k = _normal(6, (2, 9, 8, 4)), _normal(7, (3, 3, 2, 6))
    cases = {
        "nhwc_same": dict(window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                          feature_group_count=2),
        "lhs_dil": dict(window_strides=(1, 1), padding=((2, 1), (1, 2)), lhs_dilation=(2, 3),
                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=2),
        "crop": dict(window_strides=(2, 1), padding=((-1, 2), (1, -1)), rhs_dilation=(1, 2),
                     dimension_numbers=("NHWC", "HWIO", "NCHW"), feature_group_count=2),
    }  # fmt: skip
    for case, opts in cases.items():
        for impl in IMPLS:
            f = lambda x, k, impl=impl, o=opts: jc.conv_general_dilated(x, k, impl=impl, **o)  # noqa: E731
            _with_grads(out, f"general/{case}/{impl}", f, x, k)


def _pools(out: dict) -> None:
    x = _normal(8, (2, 3, 9, 10))
    cases = {
        "max2": (jc.max_pool2d, dict(kernel_size=2)),
        "max3s2p1": (jc.max_pool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        "maxd2": (jc.max_pool2d, dict(kernel_size=2, stride=1, dilation=2)),
        "avg3": (jc.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
        "avg2": (jc.avg_pool2d, dict(kernel_size=2, stride=1)),
    }
    for case, (pool, opts) in cases.items():
        for layout in ("NCHW", "NHWC"):
            xl = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
            for impl in IMPLS:
                f = lambda x, impl=impl, layout=layout, o=opts, p=pool: p(x, layout=layout, impl=impl, **o)  # noqa: E731
                _with_grads(out, f"pool/{case}/{layout}/{impl}", f, xl)


def _training(out: dict) -> None:
    from jaxconv.train import TrainConfig
    from jaxconv.train.steps import create_train_state, make_steps

    images = np.asarray(jax.random.randint(jax.random.key(9), (64, 28, 28), 0, 256), np.uint8)
    labels = np.asarray(jax.random.randint(jax.random.key(10), (64,), 0, 10), np.int32)
    for variant in ("classic", "modern"):
        for api in ("linen", "nnx"):
            config = TrainConfig(variant=variant, api=api, batch_size=32, epochs=1)
            state = create_train_state(config, steps_per_epoch=2)
            train_step_at = make_steps(config).train
            for step in range(2):
                idx = jnp.arange(step * 32, (step + 1) * 32)
                state, metrics = train_step_at(state, jnp.asarray(images), jnp.asarray(labels), idx)
                out[f"train/{variant}/{api}/loss{step}"] = np.asarray(metrics["loss_sum"])
            for i, leaf in enumerate(jax.tree.leaves(state.params)):
                out[f"train/{variant}/{api}/param{i}"] = np.asarray(leaf)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compare"]:
        a, b = np.load(argv[1]), np.load(argv[2])
        if set(a.files) != set(b.files):
            print("different keys:", sorted(set(a.files) ^ set(b.files)))
            return 1
        differ = [
            k for k in a.files if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k], equal_nan=True)
        ]
        print(f"{len(a.files) - len(differ)} of {len(a.files)} arrays bit-identical")
        for k in differ:
            print("differs:", k)
        return 1 if differ else 0
    out: dict[str, np.ndarray] = {}
    for part in (_convs, _transposes, _general, _pools, _training):
        part(out)
        print(part.__name__, len(out), flush=True)
    np.savez(argv[0], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
