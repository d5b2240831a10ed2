"""A pytest plugin (``-p tests.parallel`` in pyproject.toml): the whole default suite on two workers.

``python -m pytest`` with no test named runs on ``JAXCONV_TEST_WORKERS`` processes (default 2, the
project's machines' cores) through pytest-xdist, when it is installed (the dev extra). Naming tests,
passing ``-n`` yourself, ``-p no:xdist`` or ``JAXCONV_TEST_WORKERS=0`` (as scripts/accelerator-check.sh
does, since every worker would claim the GPU's memory) runs them in this process.
"""

import importlib.util
import os


def pytest_load_initial_conftests(early_config, parser, args):  # noqa: ANN001, ANN201 (pytest's hook)
    workers = int(os.environ.get("JAXCONV_TEST_WORKERS", "2"))
    named = [a for a in args if not a.startswith("-") and os.path.exists(a.split("::")[0])]
    chosen = any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in args)
    if workers > 1 and not named and not chosen and importlib.util.find_spec("xdist") is not None:
        args[:0] = ["-n", str(workers)]
