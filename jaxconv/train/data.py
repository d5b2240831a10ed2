"""Fashion-MNIST: find or download the IDX files, read them strictly, and batch them.

Search order for the four ``.gz`` files: an explicit ``data_dir``, ``$JAXCONV_DATA``, the per-user
cache (``$XDG_CACHE_HOME/jaxconv/fashion-mnist``, else ``~/.cache/...``), then
``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu's ``dataset-fashion-mnist`` package). If none
has them, they are downloaded from the dataset's mirror into the cache and checked against the
SHA-256 of their *decompressed* bytes (distributions recompress the ``.gz`` files).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip

MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# name: (item count, SHA-256 of the decompressed IDX file)
FILES = {
    "train-images-idx3-ubyte.gz": (60000, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte.gz": (60000, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte.gz": (10000, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte.gz": (10000, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned-byte vectors and image stacks


class DataNotFoundError(FileNotFoundError):
    """No copy of Fashion-MNIST was found and none could be downloaded."""


def read_idx(path: str | os.PathLike, ndim: int, count: int | None = None) -> np.ndarray:
    """Reads a gzipped IDX file of unsigned bytes with ``ndim`` dimensions.

    Args:
      path: the ``.gz`` file.
      ndim: 1 for labels, 3 for images.
      count: the number of items expected, or None for any.

    Returns:
      ``uint8`` array, ``(count,)`` or ``(count, rows, cols)``.

    Raises:
      ValueError: unreadable gzip, wrong magic number, wrong item count, or a size that does not
        match the header (truncated or padded), naming the file.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"read_idx: {path} is not a readable gzip file ({e})") from e
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(
            f"read_idx: {path} has magic number {magic:#010x}, expected {_IDX_MAGIC[ndim]:#010x} "
            f"(a {ndim}-D unsigned-byte IDX file)"
        )
    dims = tuple(int.from_bytes(raw[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim))
    if count is not None and dims[0] != count:
        raise ValueError(f"read_idx: {path} holds {dims[0]} items, expected {count}")
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise ValueError(
            f"read_idx: {path} has {len(raw) - header} bytes of data, its header {dims} says {size} "
            f"(truncated or corrupted file)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxconv" / "fashion-mnist"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched, in order."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("JAXCONV_DATA"):
        dirs.append(Path(os.environ["JAXCONV_DATA"]))
    return [*dirs, cache_dir(), SYSTEM_DIR]


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first candidate directory holding all four files, or None."""
    for d in candidate_dirs(data_dir):
        if all((d / name).is_file() for name in FILES):
            return d
    return None


def _sha256_of_gzip(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(target: Path, mirror: str = MIRROR) -> Path:
    """Downloads the four files into ``target``, each verified before it is moved into place."""
    target.mkdir(parents=True, exist_ok=True)
    for name, (_, sha) in FILES.items():
        if (target / name).is_file():
            continue
        with tempfile.NamedTemporaryFile(dir=target, suffix=".part", delete=False) as tmp:
            with urllib.request.urlopen(mirror + name, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        got = _sha256_of_gzip(Path(tmp.name))
        if got != sha:
            os.unlink(tmp.name)
            raise ValueError(
                f"download: {mirror}{name} has SHA-256 {got} after decompression, expected {sha}"
            )
        os.replace(tmp.name, target / name)
    return target


@dataclass(frozen=True)
class FashionMNIST:
    """The dataset in memory: images ``uint8 (N, 28, 28)``, labels ``uint8 (N,)``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, *, allow_download: bool = True
) -> FashionMNIST:
    """Finds (or downloads) and reads Fashion-MNIST; see the module docstring for the search order.

    Raises:
      DataNotFoundError: no copy found and the download was not allowed or failed.
      ValueError: a file is corrupted, truncated or of the wrong kind (named in the message).
    """
    found = find_data_dir(data_dir)
    if found is None:
        searched = ", ".join(str(d) for d in candidate_dirs(data_dir))
        how = (
            "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass "
            "--data-dir (data_dir=) a folder holding " + ", ".join(FILES)
        )
        if not allow_download:
            raise DataNotFoundError(f"Fashion-MNIST not found in {searched}. {how}.")
        try:
            found = download(cache_dir())
        except OSError as e:
            raise DataNotFoundError(
                f"Fashion-MNIST not found in {searched}, and downloading it from {MIRROR} "
                f"failed ({e}). {how}."
            ) from e
    arrays = {
        name: read_idx(found / name, 3 if "images" in name else 1, count)
        for name, (count, _) in FILES.items()
    }
    train_x, train_y, test_x, test_y = arrays.values()
    for labels, name in ((train_y, "train-labels"), (test_y, "t10k-labels")):
        if labels.max(initial=0) >= len(CLASS_NAMES):
            raise ValueError(f"load_fashion_mnist: {found / name} has label {labels.max()} >= 10")
    return FashionMNIST(train_x, train_y, test_x, test_y, found)


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of one epoch: a function of (seed, epoch) only, so a resumed run
    sees exactly the order an uninterrupted one would."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_indices(num_examples: int, batch_size: int, seed: int, epoch: int) -> Iterator[np.ndarray]:
    """Index arrays of one shuffled epoch; the last batch may be smaller (as in the book)."""
    order = epoch_order(num_examples, seed, epoch)
    for start in range(0, num_examples, batch_size):
        yield order[start : start + batch_size]
