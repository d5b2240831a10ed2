"""Data parallelism on simulated CPU devices, each scenario in a subprocess (the device count is
fixed when JAX starts, so the rest of the suite keeps its single device)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxconv as jc
from jaxconv.train import distributed

WORKER = Path(__file__).with_name("sharded_worker.py")
ROOT = WORKER.parents[2]  # the repository root


def run_worker(tmp_path, mode, *args, devices=4, wait=True, tag=""):
    out = tmp_path / f"{mode}{tag}.json"
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(WORKER), mode, str(out), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    if not wait:
        return proc, out
    return finish(proc, out)


def finish(proc, out):
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    return json.loads(out.read_text())


def assert_params_close(a, b, tol=2e-5):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=tol, atol=tol, err_msg=key)


@pytest.fixture(scope="module")
def shardings(tmp_path_factory):
    return run_worker(tmp_path_factory.mktemp("shardings"), "shardings")


def test_batch_is_sharded_state_replicated_and_gradients_all_reduced(shardings):
    r = shardings
    assert r["devices"] == 4
    assert r["idx_spec"] == ["batch"]
    assert r["idx_shard_rows"] == [16]  # 64 rows over 4 devices
    assert r["params_replicated"] and r["new_params_replicated"]
    assert r["all_reduce"]


def test_functional_ops_give_the_same_numbers_on_a_sharded_batch(shardings):
    r = shardings
    for impl in jc.IMPLS:
        assert r[f"conv_{impl}_err"] < 1e-5, impl
        # A Pallas kernel is one unpartitioned program: XLA gathers the batch for it (documented in
        # docs/guide/scaling.md); every composition of XLA ops keeps the batch sharded.
        assert r[f"conv_{impl}_sharded"] is (impl != "pallas"), impl
    assert r["pool_err"] == 0.0


def test_four_devices_train_like_one_and_a_four_device_checkpoint_resumes_on_one(tmp_path):
    # independent runs start together: each subprocess spends most of its time importing and compiling
    pending = {
        "one": run_worker(tmp_path, "train", tmp_path / "one", 1, wait=False, tag="one"),
        "four": run_worker(tmp_path, "train", tmp_path / "four", 4, wait=False, tag="four"),
        "straight": run_worker(tmp_path, "train", tmp_path / "two", 1, 2, devices=1, wait=False, tag="two"),
    }
    one, four, straight = (finish(*pending[k]) for k in ("one", "four", "straight"))
    assert_params_close(four["params"], one["params"])
    np.testing.assert_allclose(four["history"][0]["train_loss"], one["history"][0]["train_loss"], rtol=1e-5)
    assert four["history"][0]["test_acc"] == one["history"][0]["test_acc"]
    # epoch 2 on one device from the four-device checkpoint == two epochs on one device
    resumed = run_worker(tmp_path, "train", tmp_path / "four", 1, 2, "resume", devices=1)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert_params_close(resumed["params"], straight["params"], tol=1e-4)


def test_a_batch_the_mesh_cannot_split_is_refused(tmp_path):
    r = run_worker(tmp_path, "indivisible", tmp_path / "bad")
    assert "batches must divide evenly over the 4 devices" in r["error"]
    assert "training batch of 66=66" in r["error"]


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_over_localhost_train_like_one(tmp_path):
    coordinator = f"localhost:{_free_port()}"
    procs = [
        run_worker(
            tmp_path, "process", tmp_path / "multi", coordinator, 2, i, devices=2, wait=False, tag=str(i)
        )
        for i in range(2)
    ]
    single_run = run_worker(tmp_path, "train", tmp_path / "single", 4, wait=False, tag="single")
    reports = [finish(*p) for p in procs]
    single = finish(*single_run)

    def results(history):  # the numbers, without the timings
        return [
            {k: v for k, v in h.items() if k not in ("images_per_second", "epoch_seconds")} for h in history
        ]

    assert results(reports[0]["history"]) == results(reports[1]["history"])
    assert_params_close(reports[0]["params"], single["params"])
    assert "params" not in reports[1]  # only process 0 writes the checkpoint
    assert (tmp_path / "multi" / "history.json").exists()


def test_initialize_validates_its_arguments():
    distributed.initialize(None, None, None)  # single process: nothing to do
    with pytest.raises(ValueError, match="go together"):
        distributed.initialize("localhost:1234", None, 0)
    with pytest.raises(ValueError, match="host:port"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(ValueError, match="0 <= process_id < num_processes"):
        distributed.initialize("localhost:1234", 2, 2)


def test_make_mesh_refuses_more_devices_than_there_are():
    assert distributed.make_mesh(1).shape == {"batch": 1}
    with pytest.raises(ValueError, match="asked for 64 devices but JAX sees"):
        distributed.make_mesh(64)
    with pytest.raises(ValueError, match="num_devices must be an int >= 1"):
        distributed.make_mesh(0)
