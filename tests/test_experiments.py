"""Smoke tests: every experiment runs with fast settings and reports the numbers the book predicts."""

import jax
import numpy as np
import pytest

import jaxconv as jc
from jaxconv import experiments
from jaxconv.cli import main
from jaxconv.impls import INTERPRETED_ON_CPU
from jaxconv.train import data


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 counts
        yield


def test_why_conv(tmp_path):
    n = experiments.run("why_conv", tmp_path, fast=True)
    assert n["fully_connected_params"] == 10**9 and n["conv_kernel_params_delta_10"] == 441
    assert n["equivariance_max_error_xla"] < 1e-5 and n["equivariance_max_error_manual"] < 1e-5
    assert n["changed_outputs"] == 25 and n["changed_region"] == [5, 5]
    assert (tmp_path / "why_conv.png").exists() and (tmp_path / "why_conv.json").exists()


def test_conv_layer(tmp_path):
    n = experiments.run("conv_layer", tmp_path, fast=True)
    assert n["corr2d_xla"] == n["corr2d_manual"] == [[19.0, 25.0], [37.0, 43.0]]
    assert n["edges_on_transpose_max_abs"] == 0.0
    for impl in ("xla", "manual"):  # the experiment's two contestants
        np.testing.assert_allclose(n[f"learned_kernel_{impl}"], [[1.0, -1.0]], atol=0.1)
        assert n[f"learning_losses_{impl}"][-1] < n[f"learning_losses_{impl}"][0]
    np.testing.assert_allclose(n["learned_convolution_kernel"], [[-1.0, 1.0]], atol=0.1)


def test_padding_stride(tmp_path):
    n = experiments.run("padding_stride", tmp_path, fast=True)
    assert [tuple(r["formula"]) for r in n["book_cases"]] == [(8, 8), (8, 8), (4, 4), (2, 2), (5, 6)]
    assert all(tuple(r["formula"]) == tuple(r["conv2d"]) for r in n["book_cases"])
    assert n["240_after_ten_5x5"] == 200 and n["layers_224_to_4_with_5x5"] == 55


def test_channels(tmp_path):
    n = experiments.run("channels", tmp_path, fast=True)
    assert n["multi_in"] == [[56.0, 72.0], [104.0, 120.0]]
    assert n["1x1_max_error"] < 1e-5
    assert n["flops_formula"] == 2 * 100 * 100 * 25 * 64 * 64
    if jax.default_backend() == "cpu":  # XLA's CPU cost analysis (a GPU's counts cuDNN's calls otherwise)
        assert 0.9 < n["flops_hlo"] / n["flops_formula"] <= 1.0  # XLA skips the padded zeros
        assert n["flops_hlo_winograd"] < 0.5 * n["flops_formula"]  # 64 products per 16 outputs, not 400
    assert n["composition_kernel_size"] == 4 and n["composition_max_error"] < 1e-4


def test_pooling(tmp_path):
    n = experiments.run("pooling", tmp_path, fast=True)
    assert n["max"] == [[4.0, 5.0], [7.0, 8.0]] and n["avg"] == [[2.0, 3.0], [5.0, 6.0]]
    assert n["max_3x3_p1_s2"] == n["max_2x3_p01_s23"] == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert n["shift_change_conv_maxpool2"] < n["shift_change_conv"]


def test_receptive_field(tmp_path):
    n = experiments.run("receptive_field", tmp_path, fast=True)
    assert tuple(n["measured_size"]) == tuple(n["formula_size"]) == (24, 24)


def test_manual_vs_xla(tmp_path, monkeypatch):
    # Every race function is compiled with jaxconv's options, as `jaxconv bench` compiles its contestants.
    options = jc.xla_options.compiler_options()  # its one-off check that jaxlib takes them: before the spy
    real_jit, seen = jax.jit, []

    def spy(fun, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return real_jit(fun, **kwargs)

    monkeypatch.setattr(jax, "jit", spy)
    n = experiments.run("manual_vs_xla", tmp_path, fast=True)
    assert n["compiler_options"] == options
    # forward and gradient of the layer and of LeNet, for every impl
    assert seen.count(n["compiler_options"]) == 4 * len(jc.IMPL_CHOICES), seen
    for what in ("LeNet conv2 layer (N,6->16,14x14,k5)", "LeNet"):
        assert n[what]["max_diff_forward"] < 1e-5 and n[what]["max_diff_gradient"] < 1e-4
        # compared for every impl; timed for those that run compiled here (a CPU interprets Pallas kernels)
        untimed = INTERPRETED_ON_CPU if jax.default_backend() == "cpu" else ()
        assert set(n[what]["max_diff_by_impl"]) == set(jc.IMPL_CHOICES)
        assert set(n[what]["ms"]) == {
            f"{impl} {kind}" for impl in jc.IMPL_CHOICES if impl not in untimed for kind in ("fwd", "fwd+bwd")
        }


@pytest.mark.skipif(
    data.find_data_dir() is None, reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist"
)
def test_lenet(tmp_path):
    n = experiments.run("lenet", tmp_path, fast=True)
    assert set(n) == {"classic", "modern"}
    for name in n:
        assert (tmp_path / f"{name}_confusion.png").exists() and (tmp_path / f"{name}_features.png").exists()
        assert -1.0 <= n[name]["pullover_vs_coat_conv2_correlation"] <= 1.0 + 1e-6


@pytest.mark.skipif(
    data.find_data_dir() is None, reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist"
)
def test_drop_in(tmp_path):
    n = experiments.run("drop_in", tmp_path, fast=True)
    stock = "stock nnx.Conv (lax)"
    assert set(n["losses"]) == {stock, "jaxconv auto", "jaxconv im2col", "jaxconv banded"}
    assert all(len(curve) == n["steps"] for curve in n["losses"].values())
    # the same weights and batches: the first loss is the same number, the curves stay together
    first = {name: curve[0] for name, curve in n["losses"].items()}
    assert max(first.values()) - min(first.values()) < 1e-5, first
    assert max(n["max_loss_difference_vs_stock"].values()) < 0.1
    assert set(n["speedup_vs_stock"]) == set(n["losses"]) - {stock} and min(n["step_ms"].values()) > 0
    assert (tmp_path / "drop_in.png").exists()


def test_cli_runs_an_experiment_and_refuses_unknown_names(tmp_path, capsys):
    assert main(["experiment", "padding_stride", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "padding_stride" / "padding_stride.png").exists()
    assert main(["experiment", "alexnet", "--out", str(tmp_path)]) == 1
    assert "experiment: name must be one of" in capsys.readouterr().err


def test_lenet_step_race_interleaves_every_contestant(tmp_path):
    from pathlib import Path

    from jaxconv.experiments import lenet_step_race

    rng = np.random.default_rng(0)
    images, labels = (
        rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 64).astype(np.uint8),
    )
    fm = data.FashionMNIST(images, labels, images[:16], labels[:16], Path(tmp_path))
    r = lenet_step_race.race(fm, rounds=3, steps=2, batch_size=8)
    names = set(lenet_step_race.CONTESTANTS) | (
        {lenet_step_race.TORCH} if "defaults / PyTorch" in r["ratios"] else set()
    )
    assert set(r["images_per_second"]) == set(r["round_seconds"]) == names
    assert all(len(s) == 3 and min(s) > 0 for s in r["round_seconds"].values())
    for name, s in r["round_seconds"].items():  # img/s is the median round's
        assert r["images_per_second"][name] == pytest.approx(2 * 8 / float(np.median(s)))
    assert r["ratios"]["defaults / plain XLA"] == pytest.approx(
        r["images_per_second"]["jaxconv defaults (auto, NHWC)"]
        / r["images_per_second"]["jaxconv plain XLA (xla, NCHW)"]
    )
    assert set(r["round_ratios"]) == set(r["ratios"])
    per_round = [p / d for p, d in zip(r["round_seconds"]["jaxconv plain XLA (xla, NCHW)"],
                                       r["round_seconds"]["jaxconv defaults (auto, NHWC)"], strict=True)]  # fmt: skip
    assert r["round_ratios"]["defaults / plain XLA"]["median"] == pytest.approx(float(np.median(per_round)))
    assert r["compiler_options"] == {
        "jaxconv defaults (auto, NHWC)": jc.xla_options.compiler_options(fuse_elementwise=False),
        "jaxconv plain XLA (xla, NCHW)": {},
        "jaxconv defaults, NNX model": jc.xla_options.compiler_options(fuse_elementwise=False),
        "jaxconv defaults, 10 steps per dispatch": jc.xla_options.compiler_options(fuse_elementwise=False),
    }
    assert r["ratios"]["NNX / Linen (defaults)"] == pytest.approx(
        r["images_per_second"]["jaxconv defaults, NNX model"]
        / r["images_per_second"]["jaxconv defaults (auto, NHWC)"]
    )
    with pytest.raises(ValueError, match="batch_size 100 is larger than the 64 training images"):
        lenet_step_race.race(fm, batch_size=100)
