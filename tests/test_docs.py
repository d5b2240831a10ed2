"""The documentation is complete: the API reference names every public function and class of jaxconv's
public modules, and every notebook page offers its own ``.ipynb``."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
API = DOCS / "api.md"
MODULES = (
    "jaxconv", "jaxconv.nn", "jaxconv.nnx", "jaxconv.train", "jaxconv.train.data", "jaxconv.train.checkpoint",
    "jaxconv.train.curves", "jaxconv.train.distributed", "jaxconv.bench", "jaxconv.timing.rounds",
    "jaxconv.timing.memory_budget", "jaxconv.impls", "jaxconv.spec", "jaxconv.impls.auto", "jaxconv.impls.pallas", "jaxconv.impls.stencil", "jaxconv.impls.phases", "jaxconv.convert",
    "jaxconv.tuning", "jaxconv.tuning.tuner", "jaxconv.tuning.measure", "jaxconv.tuning.table", "jaxconv.train.tune",
    "jaxconv.xla_options", "jaxconv.host_memory",
)  # fmt: skip
NOTEBOOK_PAGES = sorted(p for p in DOCS.glob("*/*.md") if "kernelspec:" in p.read_text().split("\n---", 1)[0])


def _listed() -> dict[str, set[str]]:
    """``{module: names}`` from each ``.. currentmodule::`` block of docs/api.md."""
    blocks = re.split(r"^\.\. currentmodule:: ", API.read_text(), flags=re.M)[1:]
    return {
        block.split("\n", 1)[0].strip(): set(re.findall(r"^   (\w+)$", block, flags=re.M)) for block in blocks
    }


def _public(module_name: str) -> set[str]:
    """Functions and classes a module defines or re-exports from its own package, minus private names."""
    module = importlib.import_module(module_name)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and not inspect.ismodule(value)
        and (getattr(value, "__module__", "") or "").startswith(module_name)
    }


def test_the_api_reference_covers_exactly_the_public_modules():
    assert sorted(_listed()) == sorted(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_the_api_reference_names_every_public_function_and_class(module_name):
    listed = _listed()[module_name]
    public = _public(module_name)
    assert public - listed == set(), f"missing from docs/api.md under {module_name}"
    assert listed - public == set(), f"docs/api.md lists names {module_name} does not have"


def test_the_top_level_names_are_all_callables_or_documented_constants():
    import jaxconv

    names = {n for n in dir(jaxconv) if not n.startswith("_") and not inspect.ismodule(getattr(jaxconv, n))}
    assert names - _public("jaxconv") == {"IMPLS", "IMPL_CHOICES"}


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=lambda p: p.stem)
def test_every_notebook_page_offers_its_own_notebook(page):
    link = f"</_notebooks/{page.parent.name}/{page.stem}.ipynb>`"
    assert link in page.read_text(), f"{page.name} has no download link {link}"


def test_the_chapter_has_a_page_per_section():
    titles = [
        p.read_text().split("\n# ", 1)[1].split("\n", 1)[0] for p in sorted((DOCS / "chapter").glob("*.md"))
    ]
    assert [t.split()[0] for t in titles] == ["6.1", "6.2", "6.3", "6.4", "6.5", "6.6"]
