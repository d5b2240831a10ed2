"""Opens built documentation pages in a real headless browser: screenshots, and every image must load.

    python scripts/check_docs_in_browser.py [--html docs/_build/html] [--out docs/_build/screenshots]
                                            [--page index.html --page chapter/6_6_lenet.html ...]

For each page it serves the built site on localhost, saves a screenshot (``OUT/<page>.png``), and loads a
copy of the page with a small script appended that, once the page has loaded, lists every ``<img>``
whose image did not decode (``naturalWidth == 0``). Exits 1 naming the page and the image when one did
not load, or when the browser could not render the page at all. The browser is Debian's ``chromium``
(``scripts/setup.sh --dev`` installs it) or whatever ``$CHROMIUM`` names.
"""

from __future__ import annotations

import argparse
import functools
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

DEFAULT_PAGES = ("index.html", "chapter/6_6_lenet.html")
RESULT = re.compile(r'<pre id="image-check" data-total="(\d+)"[^>]*>(.*?)</pre>', flags=re.S)
# Appended to a copy of the page: after the load event (every image fetched or failed), write the
# images that did not decode into the DOM, where --dump-dom shows them.
CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.src);
  const pre = document.createElement("pre");
  pre.id = "image-check";
  pre.dataset.total = String(images.length);
  pre.textContent = broken.join("\\n");
  document.body.appendChild(pre);
});
</script>
"""


def find_browser() -> str:
    """The headless browser's executable: ``$CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name) or name
    raise SystemExit("check_docs_in_browser: no chromium found (apt-get install chromium, or set $CHROMIUM)")


def browser(executable: str, *args: str, timeout: float = 120) -> str:
    """Runs headless chromium with ``args`` and returns its stdout."""
    command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"check_docs_in_browser: {' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return done.stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serves ``root`` on a free localhost port, in a daemon thread; returns the server and its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_page(executable: str, root: Path, base: str, page: str, out: Path) -> tuple[int, list[str]]:
    """Screenshots ``page`` into ``out`` and returns (images on the page, images that did not load)."""
    source = root / page
    if not source.is_file():
        raise SystemExit(
            f"check_docs_in_browser: {source} does not exist (build the docs first: bash scripts/docs.sh)"
        )
    shot = out / (page.replace("/", "__").removesuffix(".html") + ".png")
    browser(
        executable,
        "--window-size=1280,1800",
        "--virtual-time-budget=10000",
        f"--screenshot={shot}",
        f"{base}/{page}",
    )
    if not shot.is_file() or shot.stat().st_size == 0:
        raise SystemExit(f"check_docs_in_browser: chromium wrote no screenshot of {page}")
    probe = source.with_name(f"_image_check_{source.name}")  # beside the page, so its relative links hold
    text = source.read_text()
    probe.write_text(
        text.replace("</body>", CHECK_SCRIPT + "</body>") if "</body>" in text else text + CHECK_SCRIPT
    )
    try:
        dom = browser(
            executable, "--virtual-time-budget=10000", "--dump-dom", f"{base}/{probe.relative_to(root)}"
        )
    finally:
        probe.unlink()
    found = RESULT.search(dom)
    if found is None:
        raise SystemExit(
            f"check_docs_in_browser: {page} did not finish loading in the browser (no image report)"
        )
    broken = [html.unescape(line) for line in found.group(2).splitlines() if line.strip()]
    return int(found.group(1)), broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--html", type=Path, default=Path("docs/_build/html"), help="the built site")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/_build/screenshots"), help="where screenshots go"
    )
    parser.add_argument("--page", action="append", help="a page, relative to --html (repeatable)")
    args = parser.parse_args(argv)
    executable = find_browser()
    args.out.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    failed = False
    try:
        for page in args.page or DEFAULT_PAGES:
            total, broken = check_page(executable, args.html, base, page, args.out)
            status = "ok" if not broken else "BROKEN: " + ", ".join(broken)
            print(f"{page}: {total} images, {len(broken)} did not load ({status})")
            failed |= bool(broken)
    finally:
        server.shutdown()
    print(f"screenshots in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
