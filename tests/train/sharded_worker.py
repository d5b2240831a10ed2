"""Runs in a subprocess with simulated CPU devices (``XLA_FLAGS``), for ``test_distributed.py``.

``python tests/sharded_worker.py MODE OUT [ARGS...]`` writes a JSON report to ``OUT``; the device
count must be fixed before JAX starts, which is why this is not an in-process test.
"""

import json
import sys
from pathlib import Path

import numpy as np


def tiny_data():
    """A learnable stand-in for Fashion-MNIST, generated (not read) so every process sees the same."""
    from jaxconv.train.data import FashionMNIST

    rng = np.random.default_rng(0)
    sets = []
    for n in (512, 128):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 250
        sets += [images, labels]
    return FashionMNIST(*sets, source=Path("generated"))


def config(out, **overrides):
    from jaxconv.train import TrainConfig

    base = dict(batch_size=64, eval_batch_size=64, epochs=1, progress=False, lr=0.5, out=str(out), impl="xla")
    return TrainConfig(**{**base, **overrides})


def params_of(out):
    import jax

    from jaxconv.train import checkpoint

    state = checkpoint.load(Path(out) / "checkpoint.msgpack", None)[0]
    return {"/".join(map(str, path)): np.asarray(leaf).tolist() for path, leaf in
            jax.tree_util.tree_leaves_with_path(state["params"])}  # fmt: skip


def train(out, report, **overrides):
    import jax

    from jaxconv.train import train_and_evaluate

    with jax.numpy_dtype_promotion("standard"):
        history = train_and_evaluate(config(out, **overrides), data=tiny_data())
    report["history"] = history
    if jax.process_index() == 0:
        report["params"] = params_of(out)


def inspect_shardings(report):
    """The step's inputs: batch indices split over the mesh, state replicated; gradients all-reduced."""
    import jax
    import jax.numpy as jnp

    from jaxconv.train import create_train_state, distributed, train_step_at

    mesh = distributed.make_mesh()
    state = create_train_state(config("unused"), 1)
    state = jax.tree.map(lambda a: distributed.put(np.asarray(a), mesh), state)
    data = tiny_data()
    images = distributed.put(data.train_images, mesh)
    labels = distributed.put(data.train_labels.astype(np.int32), mesh)
    idx = distributed.put(np.arange(64, dtype=np.int32), mesh, batch_axis=0)
    report["devices"] = len(jax.devices())
    report["idx_spec"] = list(idx.sharding.spec)
    report["idx_shard_rows"] = sorted({s.data.shape[0] for s in idx.addressable_shards})
    report["params_replicated"] = all(a.sharding.is_fully_replicated for a in jax.tree.leaves(state.params))
    compiled = train_step_at.lower(state, images, labels, idx).compile()
    report["all_reduce"] = "all-reduce" in compiled.as_text()
    new_state, _ = train_step_at(state, images, labels, idx)
    report["new_params_replicated"] = all(
        a.sharding.is_fully_replicated for a in jax.tree.leaves(new_state.params)
    )

    # A functional op on a batch-sharded input: same numbers as on one device, output still sharded.
    import jaxconv as jc

    x = jax.random.normal(jax.random.key(0), (8, 3, 12, 12))
    w = jax.random.normal(jax.random.key(1), (4, 3, 3, 3))
    xs = jax.device_put(x, distributed.sharding(mesh, batch_axis=0))
    for impl in jc.IMPLS:
        y = jc.conv2d(xs, w, padding=1, impl=impl)
        want = jc.conv2d(x, w, padding=1, impl="xla")
        report[f"conv_{impl}_err"] = float(jnp.abs(y - want).max() / jnp.abs(want).max())  # relative
        report[f"conv_{impl}_sharded"] = not y.sharding.is_fully_replicated
    pooled = jc.max_pool2d(xs, 2)
    report["pool_err"] = float(jnp.abs(pooled - jc.max_pool2d(x, 2)).max())


def main(argv):
    mode, out = argv[0], Path(argv[1])
    report: dict = {}
    if mode == "shardings":
        inspect_shardings(report)
    elif mode == "train":  # train DIR DEVICES [EPOCHS [resume]]
        overrides = dict(devices=int(argv[3]))
        if len(argv) > 4:
            overrides.update(epochs=int(argv[4]), resume=len(argv) > 5 and argv[5] == "resume")
        train(argv[2], report, **overrides)
    elif mode == "process":  # process DIR COORDINATOR NUM_PROCESSES PROCESS_ID
        from jaxconv.train import distributed

        distributed.initialize(argv[3], int(argv[4]), int(argv[5]))
        train(argv[2], report)
    elif mode == "indivisible":
        try:
            train(argv[2], report, devices=4, batch_size=66)
        except ValueError as e:
            report["error"] = str(e)
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
