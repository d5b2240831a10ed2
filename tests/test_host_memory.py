"""jaxconv.host_memory: glibc's malloc keeps large freed blocks when tuned, and only when asked."""

import subprocess
import sys

import pytest

from jaxconv import host_memory
from jaxconv.cli import main

GLIBC = host_memory._glibc() is not None and hasattr(host_memory._glibc(), "mallinfo2")

# Allocates and frees 64 MiB with malloc itself on a new thread, as XLA's workers do; prints the
# bytes glibc had mmapped for it while allocated, and the free bytes its heaps keep afterwards
# (mallinfo2's hblkhd and fordblks). A thread's own arena maps a block that size even with
# M_MMAP_MAX = 0: only M_ARENA_MAX = 1 sends it to the main heap.
_PROBE = """
import ctypes, sys, threading
from jaxconv import host_memory
FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
          "fordblks", "keepcost")
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "tune":
    assert host_memory.tune_glibc_malloc() and host_memory.tuned()
def probe():
    block = libc.malloc(64 << 20)
    mapped = libc.mallinfo2().hblkhd
    libc.free(block)
    print(mapped, libc.mallinfo2().fordblks)
thread = threading.Thread(target=probe)
thread.start()
thread.join()
"""


def _probe(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    mapped, kept = out.stdout.split()
    return int(mapped), int(kept)


@pytest.mark.skipif(not GLIBC, reason="glibc (with mallinfo2) only")
def test_tuned_malloc_serves_large_blocks_from_the_heap_and_keeps_them():
    block = 64 << 20
    mapped, kept = _probe("leave")
    assert mapped >= block and kept < block  # the default: a fresh mapping, unmapped on free
    mapped, kept = _probe("tune")
    assert mapped < block and kept >= block  # tuned: heap memory, kept for the next allocation


def test_without_glibc_nothing_changes(monkeypatch):
    monkeypatch.setattr(host_memory, "_glibc", lambda: None)
    monkeypatch.setattr(host_memory, "_tuned", False)
    assert host_memory.tune_glibc_malloc() is False
    assert host_memory.tuned() is False


@pytest.fixture
def tune_calls(monkeypatch):
    """Counts calls to tune_glibc_malloc without changing this process's malloc."""
    calls = []
    monkeypatch.setattr(host_memory, "tune_glibc_malloc", lambda: calls.append(1) or True)
    monkeypatch.setattr(host_memory, "_tuned", False)
    return calls


@pytest.mark.parametrize(("value", "expected_calls"), [(None, 1), ("1", 1), ("0", 0)])
def test_tune_from_env_reads_the_switch(monkeypatch, tune_calls, value, expected_calls):
    if value is None:
        monkeypatch.delenv(host_memory.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(host_memory.ENV_VAR, value)
    assert host_memory.tune_from_env() is bool(expected_calls)
    assert len(tune_calls) == expected_calls


def test_a_bad_switch_is_refused_naming_the_variable(monkeypatch, tune_calls, capsys):
    monkeypatch.setenv(host_memory.ENV_VAR, "yes")
    with pytest.raises(ValueError, match=r"JAXCONV_TUNE_MALLOC must be 0 .* or 1 .*, got 'yes'"):
        host_memory.tune_from_env()
    assert main(["summary"]) == 1
    assert "JAXCONV_TUNE_MALLOC must be 0" in capsys.readouterr().err
    assert tune_calls == []


def test_the_command_line_tunes_unless_told_not_to(monkeypatch, tune_calls):
    monkeypatch.delenv(host_memory.ENV_VAR, raising=False)
    assert main(["summary"]) == 0
    monkeypatch.setenv(host_memory.ENV_VAR, "0")
    assert main(["summary"]) == 0
    assert len(tune_calls) == 1


def test_importing_the_entry_points_starts_no_backend_and_no_thread():
    """The command and the scripts tune malloc after their imports: those must not run JAX yet, or
    XLA's threads would have made their arenas first (glibc fixes the arena limit then)."""
    code = (
        "import threading\n"
        "import jaxconv, jaxconv.cli, jaxconv.bench, jaxconv.train, jaxconv.experiments.common\n"
        "import jaxconv.experiments.lenet_benchmark, jaxconv.experiments.lenet_step_race\n"
        "import experiments.lenet_benchmark, experiments.lenet_step_race, experiments.why_conv\n"
        "from jax._src import xla_bridge\n"
        "print(xla_bridge.backends_are_initialized(), threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "1"]
