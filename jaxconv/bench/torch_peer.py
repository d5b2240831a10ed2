"""PyTorch as a benchmark peer, on the device JAX runs on: the GPU when JAX's backend is one, else the CPU.

PyTorch is optional (``pip install torch==2.13.0`` adds a CPU build); nothing here imports it at import
time. A CUDA call returns before the GPU finishes, so each timed PyTorch call ends in :func:`synchronize`,
as JAX's calls end in ``block_until_ready``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import jax


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch() -> Any:
    """The ``torch`` module (ImportError where it is not installed)."""
    return importlib.import_module("torch")


def torchvision() -> Any:
    """The ``torchvision`` module beside a CPU torch (ImportError where it is not installed).

    PyPI's torchvision is built against the CUDA torch; beside ``torch==2.13.0+cpu`` its compiled
    operators do not load and registering their fake (meta) kernels fails at import. Its models are pure
    Python, so those registrations are skipped while it imports (``pip install --no-deps torchvision``).
    """
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    library = torch().library
    original = library.register_fake

    def register_fake(op: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn=None: fn
        return original(op, *args, **kwargs)

    library.register_fake = register_fake
    try:
        return importlib.import_module("torchvision")
    finally:
        library.register_fake = original


def device() -> str:
    """``"cuda"`` where JAX runs on a GPU and PyTorch sees one, else ``"cpu"``: the two race on one device."""
    return "cuda" if jax.default_backend() == "gpu" and torch().cuda.is_available() else "cpu"


def synchronize(where: str) -> None:
    """Waits for the device's queued work (a no-op on the CPU, where PyTorch computes eagerly)."""
    if where == "cuda":
        torch().cuda.synchronize()
