"""Host memory for XLA's CPU buffers: keep freed memory in the process instead of unmapping it.

glibc's ``malloc`` serves every request above its mmap threshold (128 KiB at start, never more than
32 MiB) with a fresh ``mmap`` and unmaps it on ``free``; so does every thread's own arena for blocks
beyond its 64 MiB heaps. XLA's CPU runtime allocates the buffers of every execution anew, on its
worker threads, so an op whose output is tens of megabytes has its pages faulted in, and zero-filled
by the kernel, on every call; tuned, such ops and the layers of ``jaxconv bench`` run several times
faster (docs/performance.md, "Host memory" and "Measurements behind the code's rules").

:func:`tune_glibc_malloc` sets ``M_ARENA_MAX = 1`` (every thread allocates from the main heap),
``M_MMAP_MAX = 0`` (large blocks come from that heap too) and ``M_TRIM_THRESHOLD`` to 2 GiB (freed
memory is kept for the next allocation), so the pages are faulted in once and reused. The price: the
process holds on to its peak heap until it exits, threads share one allocator lock (XLA allocates
per buffer, not per element), and a heap that never unmaps fragments under multi-gigabyte buffers
(the bench budgets twice XLA's estimate of a contestant's memory for it). It
changes the whole process, PyTorch's allocations included, so a race run in one process stays fair.
glibc fixes its arena limit when the first thread allocates: call it before anything starts threads
(before JAX runs anything), or the arenas stay as they were.

``import jaxconv`` never calls it. The ``jaxconv`` command and the benchmark scripts do, through
:func:`tune_from_env`, unless ``JAXCONV_TUNE_MALLOC=0``. In your own script, call it first::

    import jaxconv as jc
    jc.host_memory.tune_glibc_malloc()
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
# Freed heap memory up to this much stays in the process (mallopt takes a C int).
KEEP_FREED_BYTES = 2**31 - 1
ENV_VAR = "JAXCONV_TUNE_MALLOC"

_tuned = False


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (musl and macOS have no ``gnu_get_libc_version``)."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def tune_glibc_malloc() -> bool:
    """Makes glibc serve every thread from one heap and keep large freed blocks there for reuse,
    instead of mapping and unmapping them; process-wide. Call it before JAX starts its threads.

    Returns:
      ``True`` once applied (calling again is harmless); ``False`` where the C library is not glibc
      (nothing changed) or ``mallopt`` refused a setting (those before it stay, each harmless alone).
    """
    global _tuned
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_TRIM_THRESHOLD, KEEP_FREED_BYTES), (M_ARENA_MAX, 1), (M_MMAP_MAX, 0))
    if not all(libc.mallopt(param, value) for param, value in settings):
        return False
    _tuned = True
    return True


def tuned() -> bool:
    """Whether :func:`tune_glibc_malloc` ran in this process and glibc accepted its settings
    (benchmarks record it). It cannot tell whether threads had made their own arenas before."""
    return _tuned


def tune_from_env() -> bool:
    """:func:`tune_glibc_malloc` unless the environment says ``JAXCONV_TUNE_MALLOC=0``.

    Returns:
      Whether the setting is now in effect.

    Raises:
      ValueError: ``JAXCONV_TUNE_MALLOC`` is set to something other than ``0`` or ``1``.
    """
    value = os.environ.get(ENV_VAR, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{ENV_VAR} must be 0 (leave malloc alone) or 1 (tune it), got {value!r}")
    return tune_glibc_malloc() if value == "1" else tuned()
