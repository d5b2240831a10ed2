"""Strict JAX numerics for every test: implicit rank or dtype promotion is an error (Equinox)."""

import os

import jax
import pytest
from hypothesis import settings

from jaxconv.impls import IMPLS

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Each new shape recompiles, so property tests draw few, slow examples (JAX's sampler does ~10).
settings.register_profile("jaxconv", max_examples=20, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jaxconv"))


@pytest.fixture(autouse=True)
def _float32_matmuls_off_cpu():
    """On GPU and TPU, float32 dots and convolutions default to TF32 or bfloat16 passes (about 1e-3
    relative, jax-ml/jax#4873): there the tests compare full float32, as JAX's own tests do. CPUs
    compute float32 at every precision, so nothing changes on CPU."""
    if jax.default_backend() == "cpu":
        yield
    else:
        with jax.default_matmul_precision("float32"):
            yield


@pytest.fixture(params=IMPLS)
def impl(request):
    """Every implementation in the registry (``auto`` is one of them, tested in impls/test_auto.py)."""
    return request.param


def write_idx(path, array, magic=None):
    """Writes a gzipped IDX file of unsigned bytes (the format Fashion-MNIST ships in)."""
    import gzip

    import numpy as np

    array = np.asarray(array, np.uint8)
    magic = (0x800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A small learnable stand-in for Fashion-MNIST on disk (600 train, 200 test images).

    Each class lights a different horizontal band, plus noise. ``jaxconv.train.data.FILES`` is patched to
    expect these sizes; returns the folder.
    """
    import numpy as np

    from jaxconv.train import data

    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion"
    folder.mkdir()
    counts = {}
    for prefix, n in (("train", 600), ("t10k", 200)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 250
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        counts[f"{prefix}-images-idx3-ubyte.gz"] = n
        counts[f"{prefix}-labels-idx1-ubyte.gz"] = n
    monkeypatch.setattr(data, "FILES", {name: (counts[name], sha) for name, (_, sha) in data.FILES.items()})
    return folder
