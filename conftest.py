"""The suite's process set-up, and the names the docstring examples use without importing them."""

import os

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


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["jnp"] = jnp
    doctest_namespace["jc"] = jc
