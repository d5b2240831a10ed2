"""A run's own steps tuned: jaxconv train --tune and jaxconv tune."""

import jax
import pytest

import jaxconv as jc
from jaxconv.cli import main
from jaxconv.train import TrainConfig, train_and_evaluate
from jaxconv.train.tune import batch_sizes, tune_steps
from jaxconv.tuning import table
from jaxconv.tuning.tuner import Tuner


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats with int32 step counts
        yield


def fast(impl, run):
    return 0.5 if impl == "im2col" else 1.0


def test_tune_steps_measures_every_batch_size_of_the_train_and_eval_steps(tmp_path):
    config = TrainConfig(batch_size=64, eval_batch_size=100, limit_train=160, limit_test=100)
    report = tune_steps(config, tuner=Tuner(table=tmp_path / "t.json", timer=fast, rounds=1, progress=False))
    convs = {(row.spec.batch, row.pass_) for row in report if row.op == "conv"}
    assert convs == {(64, "forward+backward"), (32, "forward+backward"), (100, "forward")}
    assert {row.op for row in report} == {"conv", "pool"}
    assert all(row.source == "tuned" for row in report)
    assert {e.impl for e in table.read(tmp_path / "t.json") if e.op == "conv"} == {"im2col"}
    assert batch_sizes(160, 64) == [64, 32] and batch_sizes(100, 100) == [100]


def test_train_tune_tunes_before_compiling(tiny_fashion, tmp_path, monkeypatch, capsys):
    from jaxconv.train import loop

    seen = []
    monkeypatch.setattr(
        loop, "tune_steps", lambda config, **sizes: seen.append(sizes) or jc.tuning.tuner.Report(())
    )
    config = TrainConfig(epochs=1, data_dir=str(tiny_fashion), out=str(tmp_path / "run"), tune=True,
                         batch_size=128, eval_batch_size=100, progress=False)  # fmt: skip
    train_and_evaluate(config)
    assert seen == [{"train_examples": 600, "test_examples": 200}]
    assert "tuned auto's picks in" in capsys.readouterr().out
    with pytest.raises(TypeError, match="tune"):
        TrainConfig(tune="yes")


def test_the_tune_command_writes_a_table_for_layers(tmp_path, capsys):
    path = tmp_path / "team.json"
    assert main(["tune", "--shape", "2,4,4,8,3,1", "--rounds", "1", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "conv 2x4x8x8 -> 4, 3x3 p1 NHWC" in out and str(path) in out
    [entry] = table.read(path)
    assert entry.pass_ == "forward+backward" and entry.spec.layout == "NHWC"
    assert main(["tune", "--shape", "2,4,4,8,3,1", "--out", str(path)]) == 0  # found in the table
    assert " table " in capsys.readouterr().out
    path.write_text("not a table")
    assert main(["tune", "--shape", "2,4,4,8,3,1", "--out", str(path)]) == 1
    assert "not a readable jaxconv tuning table" in capsys.readouterr().err
