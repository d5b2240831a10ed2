"""The IDX reader, the dataset search order, the verified download, and batching."""

import gzip
import hashlib

import numpy as np
import pytest

from jaxconv.train import data
from tests.conftest import write_idx


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", images)
    out = data.read_idx(tmp_path / "x.gz", 3, count=2)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)
    write_idx(tmp_path / "y.gz", [3, 1, 4])
    np.testing.assert_array_equal(data.read_idx(tmp_path / "y.gz", 1), [3, 1, 4])


def test_read_idx_rejects_wrong_magic(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((2, 3, 4)), magic=0x00000D03)  # float32 IDX
    with pytest.raises(ValueError, match=r"x.gz has magic number 0x00000d03, expected 0x00000803"):
        data.read_idx(tmp_path / "x.gz", 3)


def test_read_idx_rejects_wrong_item_count(tmp_path):
    write_idx(tmp_path / "y.gz", np.zeros(5))
    with pytest.raises(ValueError, match=r"y.gz holds 5 items, expected 6"):
        data.read_idx(tmp_path / "y.gz", 1, count=6)


def test_read_idx_rejects_truncated_data(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((2, 3, 4)))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(ValueError, match=r"x.gz has 19 bytes of data, its header \(2, 3, 4\) says 24"):
        data.read_idx(path, 3)
    path.write_bytes(gzip.compress(raw[:6]))
    with pytest.raises(ValueError, match=r"x.gz is truncated"):
        data.read_idx(path, 3)


def test_read_idx_rejects_a_broken_gzip(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((2, 3, 4)))
    path.write_bytes(path.read_bytes()[:-10])  # cut the gzip stream itself
    with pytest.raises(ValueError, match=r"x.gz is not a readable gzip file"):
        data.read_idx(path, 3)


def _fill(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in data.FILES:
        (folder / name).write_bytes(b"")
    return folder


def test_search_order(tmp_path, monkeypatch):
    explicit, env, cache, system = (tmp_path / d for d in ("explicit", "env", "xdg", "system"))
    monkeypatch.setenv("JAXCONV_DATA", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(data, "SYSTEM_DIR", system)
    cache_folder = cache / "jaxconv" / "fashion-mnist"
    assert data.candidate_dirs(explicit) == [explicit, env, cache_folder, system]
    assert data.find_data_dir(explicit) is None
    _fill(system)
    assert data.find_data_dir(explicit) == system
    _fill(cache_folder)
    assert data.find_data_dir(explicit) == cache_folder
    _fill(env)
    assert data.find_data_dir(explicit) == env
    _fill(explicit)
    assert data.find_data_dir(explicit) == explicit
    (explicit / "t10k-labels-idx1-ubyte.gz").unlink()  # an incomplete folder is skipped
    assert data.find_data_dir(explicit) == env


def test_no_copy_offline_says_how_to_get_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXCONV_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "none")
    with pytest.raises(data.DataNotFoundError, match=r"apt-get install dataset-fashion-mnist.*--data-dir"):
        data.load_fashion_mnist(tmp_path / "missing", allow_download=False)
    monkeypatch.setattr(data, "MIRROR", "http://127.0.0.1:9/")  # nothing listens: the download fails
    with pytest.raises(data.DataNotFoundError, match=r"downloading it from http://127.0.0.1:9/ failed"):
        data.load_fashion_mnist(tmp_path / "missing")


def test_download_verifies_the_decompressed_checksum(tiny_fashion, tmp_path, monkeypatch):
    # The mirror is a local folder, so the real urllib download path runs offline.
    shas = {
        name: hashlib.sha256(gzip.decompress((tiny_fashion / name).read_bytes())).hexdigest()
        for name in data.FILES
    }
    monkeypatch.setattr(data, "FILES", {name: (count, shas[name]) for name, (count, _) in data.FILES.items()})
    target = data.download(tmp_path / "cache", mirror=tiny_fashion.as_uri() + "/")
    assert sorted(p.name for p in target.iterdir()) == sorted(data.FILES)
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.setitem(data.FILES, name, (200, "0" * 64))
    (target / name).unlink()
    with pytest.raises(
        ValueError, match=r"t10k-labels-idx1-ubyte.gz has SHA-256 [0-9a-f]{64} after decompression"
    ):
        data.download(target, mirror=tiny_fashion.as_uri() + "/")
    assert not (target / name).exists() and not list(target.glob("*.part"))


def test_load_reads_all_four_files(tiny_fashion):
    ds = data.load_fashion_mnist(tiny_fashion, allow_download=False)
    assert ds.train_images.shape == (600, 28, 28) and ds.test_labels.shape == (200,)
    assert ds.source == tiny_fashion
    assert len(data.CLASS_NAMES) == 10


def test_load_rejects_a_corrupt_file_by_name(tiny_fashion):
    write_idx(tiny_fashion / "train-labels-idx1-ubyte.gz", np.zeros(599))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz holds 599 items, expected 600"):
        data.load_fashion_mnist(tiny_fashion, allow_download=False)


def test_batches_are_a_seeded_permutation():
    batches = list(data.batch_indices(10, 4, seed=1, epoch=3))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    again = np.concatenate(list(data.batch_indices(10, 4, seed=1, epoch=3)))
    np.testing.assert_array_equal(np.concatenate(batches), again)
    assert not np.array_equal(data.epoch_order(100, 1, 3), data.epoch_order(100, 1, 4))


@pytest.mark.skipif(
    data.find_data_dir() is None, reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist"
)
def test_the_real_dataset_matches_its_checksums():
    folder = data.find_data_dir()
    for name, (_, sha) in data.FILES.items():
        assert hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest() == sha, name
