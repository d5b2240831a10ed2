"""The suite's process set-up, and the names the docstring examples use without importing them."""

import atexit
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import pytest

import jaxconv as jc


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The whole default suite (``python -m pytest``, no test named) runs on ``JAXCONV_TEST_WORKERS``
    processes (default 2, the project machines' cores) through pytest-xdist where it is installed (the dev
    extra): its compiles and runs are single-threaded for long stretches. Naming tests, passing ``-n``,
    ``-p no:xdist`` or ``JAXCONV_TEST_WORKERS=0`` (scripts/accelerator-check.sh does: each worker would
    claim the GPU's memory) runs them in this one process."""
    workers = int(os.environ.get("JAXCONV_TEST_WORKERS", "2"))
    default_run = config.args_source is pytest.Config.ArgsSource.TESTPATHS
    is_worker = "PYTEST_XDIST_WORKER" in os.environ or hasattr(config, "workerinput")  # never nest workers
    if (
        workers > 1
        and not is_worker
        and default_run
        and config.pluginmanager.has_plugin("xdist")
        and getattr(config.option, "numprocesses", 0) is None
        and not config.option.collectonly
    ):
        config.option.numprocesses = workers
        config.option.dist = "worksteal"  # an idle worker takes tests queued for the other: no long tail


def pytest_configure(config: pytest.Config) -> None:
    """One XLA compilation cache for the whole run, its workers and the subprocesses its tests start
    (tests/train/test_distributed.py): the suite compiles many equal programs from different functions and
    processes, and each is then compiled once. A fresh folder per run, removed at its end; a cache named in
    ``JAX_COMPILATION_CACHE_DIR`` is used as it is."""
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # set here once; workers and subprocesses inherit it
        folder = tempfile.mkdtemp(prefix="jaxconv-tests-xla-cache-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ.update(
            JAX_COMPILATION_CACHE_DIR=folder,
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    # No test reads or writes the user's tuning table (~/.cache/jaxconv/tuning.json or one named in the
    # environment): under an empty one, impl="auto" is the hand-written rule the tests expect.
    if not os.environ.get("JAXCONV_TEST_TUNING_TABLE"):
        folder = tempfile.mkdtemp(prefix="jaxconv-tests-tuning-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["JAXCONV_TEST_TUNING_TABLE"] = os.path.join(folder, "tuning.json")
    os.environ["JAXCONV_TUNING_CACHE"] = os.environ["JAXCONV_TEST_TUNING_TABLE"]
    os.environ.pop("JAXCONV_TUNE_ON_MISS", None)
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["jnp"] = jnp
    doctest_namespace["jc"] = jc
