"""Sphinx configuration: the jaxconv documentation, MyST-NB notebooks executed at build time."""

from pathlib import Path

project = "jaxconv"
author = "the jaxconv developers"
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
exclude_patterns = [
    "_build",
    "_notebooks",
    "gallery",
    "jupyter_execute",
    "**.ipynb_checkpoints",
    "guide/_impls_table.md",
]
html_theme = "sphinx_book_theme"
html_title = "jaxconv"
html_theme_options = {"show_toc_level": 2}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # every notebook page runs at build time
nb_execution_timeout = 600
nb_execution_raise_on_error = True
autosummary_generate = True
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False


def _write_notebooks(app) -> None:
    """Each notebook page as an ``.ipynb`` in ``_notebooks/`` (what its download link offers), by jupytext."""
    import jupytext

    src = Path(app.srcdir)
    for page in sorted(src.glob("*/*.md")) + sorted(src.glob("*.md")):
        if "_notebooks" in page.parts or "kernelspec:" not in page.read_text().split("\n---", 1)[0]:
            continue
        target = src / "_notebooks" / page.relative_to(src).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(page), target)


def _write_impls_table(app) -> None:
    """The implementations' table, read from jaxconv's registry (``jaxconv.impls.table``), for the pages
    that include it: the docs list what the registry holds, not a copy."""
    from jaxconv import impls

    (Path(app.srcdir) / "guide" / "_impls_table.md").write_text(impls.table() + "\n")


def setup(app) -> None:
    app.connect("builder-inited", _write_notebooks)
    app.connect("builder-inited", _write_impls_table)
