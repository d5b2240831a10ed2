"""scripts/check_docs_in_browser.py fails when an image does not load, and passes when all do (real chromium)."""

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_docs_in_browser.py"
PAGE = '<!doctype html><html><body><h1>page</h1><img src="{}"><p>text</p></body></html>'

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="no chromium (setup.sh --dev installs it)",
)


def _site(tmp_path: Path, image: str) -> Path:
    root = tmp_path / "html"
    (root / "_images").mkdir(parents=True)
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(root / "_images" / "good.png")
    plt.close(fig)
    (root / "page.html").write_text(PAGE.format(image))
    return root


def _check(root: Path, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--html", str(root), "--out", str(out), "--page", "page.html"]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_a_page_whose_images_load_passes_with_a_screenshot(tmp_path):
    done = _check(_site(tmp_path, "_images/good.png"), tmp_path / "shots")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "page.html: 1 images, 0 did not load" in done.stdout
    assert (tmp_path / "shots" / "page.png").stat().st_size > 0


def test_a_missing_image_fails_naming_it(tmp_path):
    done = _check(_site(tmp_path, "_images/missing.png"), tmp_path / "shots")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 did not load" in done.stdout and "missing.png" in done.stdout
