"""The command line, end to end on a small slice."""

import json
import subprocess
import sys

import jax
import pytest

from jaxconv.cli import main


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 counts
        yield


def test_summary(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "Conv2D output shape: (1, 6, 28, 28)" in out
    assert "total parameters: 61,706" in out


def test_train_end_to_end_and_resume(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--epochs", "1", "--batch-size", "100", "--data-dir", str(tiny_fashion), "--out", str(out),
            "--no-progress", "--limit-train", "400", "--limit-test", "100"]  # fmt: skip
    assert main(args) == 0
    assert main([*args[:2], "2", *args[3:], "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "epoch  1:" in printed and "epoch  2:" in printed and f"wrote {out}/curves.png" in printed
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history["epochs"]] == [1, 2]
    assert history["config"]["limit_train"] == 400


def test_train_reports_bad_options_and_missing_data(tmp_path, monkeypatch, capsys):
    assert main(["train", "--lr", "-1", "--out", str(tmp_path)]) == 1
    assert "jaxconv train: TrainConfig: lr must be finite and > 0, got -1.0" in capsys.readouterr().err
    from jaxconv.train import data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("JAXCONV_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "MIRROR", "http://127.0.0.1:9/")
    assert main(["train", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "jaxconv", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "6.2 corr2d(X, K): xla == manual" in result.stdout
    assert "!=" not in result.stdout


def test_train_xla_defaults_flag_reaches_the_config(monkeypatch, tmp_path):
    from jaxconv import train

    seen = []
    monkeypatch.setattr(train, "train_and_evaluate", lambda config: seen.append(config) or [])
    assert main(["train", "--out", str(tmp_path)]) == 0
    assert main(["train", "--out", str(tmp_path), "--xla-defaults"]) == 0
    assert [c.cpu_compiler_options for c in seen] == [True, False]


def test_train_and_summary_take_the_flax_api(monkeypatch, tmp_path, capsys):
    from jaxconv import train

    seen = []
    monkeypatch.setattr(train, "train_and_evaluate", lambda config: seen.append(config) or [])
    assert main(["train", "--out", str(tmp_path), "--api", "nnx"]) == 0
    assert [c.api for c in seen] == ["nnx"]
    capsys.readouterr()
    for api in ("linen", "nnx"):
        assert main(["summary", "--variant", "modern", "--batch-norm", "--api", api]) == 0
    linen, nnx = capsys.readouterr().out.split("total parameters: 62,158\n")[:2]
    assert linen == nnx and "BatchNorm output shape: (1, 6, 28, 28)" in nnx
