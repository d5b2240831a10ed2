"""The wheel: it holds the ``jaxconv`` package alone, and the CLI's experiments run from it."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel --no-deps`` of a copy of the sources (a build in the checkout would leave ``build/``,
    whose stale files setuptools would package next time)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "jaxconv", source / "jaxconv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "experiments", source / "experiments", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
         "-w", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (tmp / "dist").glob("jaxconv-*.whl")
    return built


def test_the_wheel_holds_jaxconv_alone(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"jaxconv", wheel.name.split("-py3")[0] + ".dist-info"}
    # the chapter's experiments ship inside the package, the checkout's entry points do not
    assert "jaxconv/experiments/why_conv.py" in names and "jaxconv/impls/xla.py" in names
    assert not any(n.startswith("experiments/") for n in names)


def test_the_cli_runs_an_experiment_from_the_unpacked_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jaxconv, jaxconv.cli; "
        "assert jaxconv.__file__.startswith(sys.argv[1]), jaxconv.__file__; "
        "sys.exit(jaxconv.cli.main(['experiment', 'padding_stride', '--fast', '--out', 'out']))"
    )
    env = dict(os.environ, JAXCONV_TUNE_MALLOC="0", PYTHONPATH="")
    done = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "padding_stride" / "padding_stride.json").exists()
