"""Whether a compiled benchmark contestant fits the memory its device has free.

XLA's buffer assignment knows an executable's peak footprint before it runs (:func:`footprint`); the
device says what it can still hand out (:func:`available_memory`). ``jaxconv bench`` skips a contestant
that would not fit (:func:`too_big`) and lists the reason, rather than leave it to the kernel's OOM
killer.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from jaxconv import host_memory

# glibc's one heap, tuned to keep freed memory (jaxconv.host_memory), fragments under multi-gigabyte
# buffers, up to about twice XLA's estimate (docs/performance.md, "Host memory"). Budget twice it.
TUNED_HEAP_GROWTH = 2.0


def footprint(compiled: jax.stages.Compiled) -> int | None:
    """Bytes one call of ``compiled`` holds at its peak by XLA's buffer assignment (arguments, outputs
    and temporaries); ``None`` where the backend does not say."""
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):
        return None
    if stats is None:
        return None
    return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes


def available_memory() -> int | None:
    """Bytes the first device (the one the bench runs on) can still hand out: on CPU the kernel's
    ``MemAvailable`` (Linux), elsewhere the device's limit less what it holds; ``None`` where neither
    is known."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    stats = device.memory_stats()
    if not stats or "bytes_limit" not in stats:
        return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)


def too_big(compiled: Sequence[jax.stages.Compiled], budget: int | None) -> str | None:
    """Why these executables should not run within ``budget`` bytes, or ``None`` if they fit (or
    nothing is known)."""
    sizes = [size for size in map(footprint, compiled) if size is not None]
    if budget is None or not sizes:
        return None
    growth = TUNED_HEAP_GROWTH if host_memory.tuned() and jax.default_backend() == "cpu" else 1.0
    need = max(sizes) * growth
    if need <= budget:
        return None
    times = f" x {growth:g} for the tuned heap" if growth != 1.0 else ""
    return f"needs {max(sizes) / 1e9:.1f} GB by XLA's estimate{times}, {budget / 1e9:.1f} GB free"
