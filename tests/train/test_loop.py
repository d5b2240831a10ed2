"""Training: resume equals an uninterrupted run, divergence is caught, outputs are written."""

import json

import jax
import numpy as np
import pytest

from jaxconv.train import DivergenceError, TrainConfig, checkpoint, data, train_and_evaluate
from jaxconv.train.loop import _check_finite

TINY = dict(batch_size=128, eval_batch_size=100, progress=False)


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    # optax's Adam mixes a Python float with its int32 step count, which the suite's strict
    # promotion (meant for jaxconv's own ops) refuses.
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_training_learns_and_writes_history_curves_and_checkpoint(tiny_fashion, tmp_path):
    config = TrainConfig(variant="modern", optimizer="adam", lr=3e-3, epochs=3, data_dir=str(tiny_fashion),
                         out=str(tmp_path / "run"), **TINY)  # fmt: skip
    history = train_and_evaluate(config)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["test_acc"] > 0.9  # the bands are easy; chance is 0.1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["epochs"] == history and saved["config"]["optimizer"] == "adam"
    assert saved["compile_seconds"] > 0
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"images_per_second", "epoch_seconds", "train_acc", "test_loss"} <= set(history[0])


BN_SGD = dict(variant="modern", batch_norm=True, optimizer="sgd", lr=0.1, momentum=0.9)


@pytest.mark.parametrize("options", [dict(), BN_SGD, dict(api="nnx"), dict(api="nnx", **BN_SGD)])
def test_resume_equals_an_uninterrupted_run(tiny_fashion, tmp_path, options):
    base = dict(data_dir=str(tiny_fashion), **TINY, **options)
    straight = train_and_evaluate(TrainConfig(epochs=3, out=str(tmp_path / "a"), **base))
    train_and_evaluate(TrainConfig(epochs=1, out=str(tmp_path / "b"), **base))
    resumed = train_and_evaluate(TrainConfig(epochs=3, out=str(tmp_path / "b"), resume=True, **base))

    def strip(history):
        return [
            {k: v for k, v in h.items() if k not in ("images_per_second", "epoch_seconds")} for h in history
        ]

    assert strip(resumed) == strip(straight)
    a = checkpoint.load(tmp_path / "a" / "checkpoint.msgpack", None)[0]
    b = checkpoint.load(tmp_path / "b" / "checkpoint.msgpack", None)[0]
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("options", [dict(), BN_SGD])
def test_the_nnx_model_trains_as_the_linen_one_from_the_same_seed(tiny_fashion, tmp_path, options):
    # the same initial weights (TrainConfig.init), batches and optimizer: the same run, to float32 rounding
    # (an epoch is 5 steps; resuming across epochs is test_resume_equals_an_uninterrupted_run's)
    base = dict(data_dir=str(tiny_fashion), epochs=1, **TINY, **options)
    linen = train_and_evaluate(TrainConfig(out=str(tmp_path / "linen"), **base))
    nnx = train_and_evaluate(TrainConfig(out=str(tmp_path / "nnx"), api="nnx", **base))
    for a, b in zip(linen, nnx, strict=True):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)
    saved = json.loads((tmp_path / "nnx" / "history.json").read_text())
    assert saved["config"]["api"] == "nnx" and (tmp_path / "nnx" / "curves.png").exists()


@pytest.mark.parametrize(("options", "k"), [(dict(), 3), (BN_SGD, 2)])
def test_several_steps_per_dispatch_are_the_same_steps(tiny_fashion, tmp_path, options, k):
    # 600 images in batches of 128: 4 full batches and one of 88, dispatched as (k, 128) scans and singles
    base = dict(data_dir=str(tiny_fashion), epochs=2, **TINY, **options)
    one = train_and_evaluate(TrainConfig(out=str(tmp_path / "one"), **base))
    several = train_and_evaluate(TrainConfig(out=str(tmp_path / "several"), steps_per_dispatch=k, **base))
    for a, b in zip(one, several, strict=True):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, err_msg=key)
    a = checkpoint.load(tmp_path / "one" / "checkpoint.msgpack", None)[0]
    b = checkpoint.load(tmp_path / "several" / "checkpoint.msgpack", None)[0]
    assert int(a["step"]) == int(b["step"]) == 10
    for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"]), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_dispatches_keep_the_epochs_order():
    from jaxconv.train.loop import dispatches

    batches = [np.arange(i * 4, i * 4 + 4) for i in range(5)] + [np.arange(20, 22)]
    got = list(dispatches(iter(batches), 4, 2))
    assert [g.shape for g in got] == [(2, 4), (2, 4), (4,), (2,)]
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in got]), np.arange(22))
    with pytest.raises(ValueError, match="steps_per_dispatch must be an int >= 1, got 0"):
        TrainConfig(steps_per_dispatch=0)


def test_resume_refuses_a_different_config(tiny_fashion, tmp_path):
    base = dict(data_dir=str(tiny_fashion), out=str(tmp_path / "r"), **TINY)
    train_and_evaluate(TrainConfig(epochs=1, **base))
    with pytest.raises(
        ValueError, match=r"--resume with a different config than the checkpoint's: \{'lr': \(0.9, 0.5\)\}"
    ):
        train_and_evaluate(TrainConfig(epochs=2, lr=0.5, resume=True, **base))
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at"):
        train_and_evaluate(TrainConfig(epochs=2, resume=True, **base | dict(out=str(tmp_path / "none"))))


def test_divergence_stops_with_epoch_and_step(tiny_fashion, tmp_path):
    config = TrainConfig(
        variant="modern", lr=1e30, epochs=2, data_dir=str(tiny_fashion), out=str(tmp_path / "d"), **TINY
    )
    with pytest.raises(
        DivergenceError,
        match=r"loss is (nan|inf) at epoch 1, step \d+ \(batch \d+ of the epoch\); no checkpoint was written",
    ):
        train_and_evaluate(config)
    assert not (tmp_path / "d" / "checkpoint.msgpack").exists()


def test_divergence_message_points_at_the_last_good_checkpoint(tmp_path):
    losses = [np.float32(1.0), np.float32(2.0), np.float32(np.inf), np.float32(np.nan)]
    with pytest.raises(
        DivergenceError,
        match=r"loss is inf at epoch 3, step 43 \(batch 3 of the epoch\); the last good checkpoint \(epoch 2\) is kept",
    ):
        _check_finite(losses, epoch=3, first_step=40, out=tmp_path, last_good=2)
    _check_finite(losses[:2], epoch=3, first_step=40, out=tmp_path, last_good=2)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            dict(variant="resnet"),
            r"TrainConfig: variant must be one of \('classic', 'modern'\), got 'resnet'",
        ),
        (dict(impl="cuda"), r"TrainConfig: impl must be one of"),
        (dict(optimizer="lamb"), r"TrainConfig: optimizer must be one of"),
        (dict(batch_size=0), r"TrainConfig: batch_size must be an int >= 1, got 0"),
        (dict(lr=-1.0), r"TrainConfig: lr must be finite and > 0, got -1.0"),
        (dict(momentum=1.0), r"TrainConfig: momentum must be in \[0, 1\), got 1.0"),
        (dict(limit_train=0), r"TrainConfig: limit_train must be None or >= 1"),
        (dict(batch_norm=True), r"TrainConfig: batch_norm needs variant='modern'"),
    ],
)
def test_config_validation(options, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**options)


@pytest.mark.skipif(
    data.find_data_dir() is None,
    reason="Fashion-MNIST not installed: `apt-get install dataset-fashion-mnist`, or set JAXCONV_DATA",
)
def test_real_fashion_mnist_short_training_beats_080(tmp_path):
    # One epoch of the modern recipe: 235 steps of Adam on the real 60k images.
    config = TrainConfig(
        variant="modern", optimizer="adam", lr=2e-3, epochs=1, out=str(tmp_path), progress=False
    )
    history = train_and_evaluate(config)
    assert history[-1]["test_acc"] > 0.80, history
