"""The models' registry: a new model is one entry, and the config, the CLI and the loop take it."""

import argparse

import jax
import numpy as np
import pytest
from flax import linen as nn

from jaxconv import cli
from jaxconv.nn import count_params
from jaxconv.train import TrainConfig, train_and_evaluate
from jaxconv.train.models import MODELS, Model


class Tiny(nn.Module):
    """A one-layer classifier: flattened pixels to ten logits."""

    impl: str = "auto"
    layout: str = "NCHW"
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.fixture
def tiny_model(monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", Model(Tiny, "pixels to logits, one dense layer"))


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # as tests/train/test_loop.py
        yield


def test_the_book_models_are_entries():
    assert set(MODELS) == {"classic", "modern"} and MODELS["modern"].batch_norm
    assert count_params(TrainConfig().init()[1]["params"]) == 61706


def test_a_registered_model_is_a_config_choice_a_flag_and_trains(tiny_model, tiny_fashion, tmp_path):
    (commands,) = (a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert "tiny" in commands.choices["train"].format_help()
    config = TrainConfig(variant="tiny", epochs=2, batch_size=128, eval_batch_size=100, progress=False,
                         data_dir=str(tiny_fashion), out=str(tmp_path), lr=0.01)  # fmt: skip
    assert count_params(config.init()[1]["params"]) == 28 * 28 * 10 + 10
    history = train_and_evaluate(config)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and np.isfinite(history[-1]["test_loss"])
    with pytest.raises(ValueError, match=r"TrainConfig: variant 'tiny' has no NNX form; use api='linen'"):
        TrainConfig(variant="tiny", api="nnx").init()
    with pytest.raises(ValueError, match=r"TrainConfig: batch_norm needs variant='modern'"):
        TrainConfig(variant="tiny", batch_norm=True)
