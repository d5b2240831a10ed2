"""Sphinx configuration: the jaxconv documentation, MyST-NB notebooks executed at build time."""

project = "jaxconv"
author = "the jaxconv developers"
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build", "gallery", "jupyter_execute", "**.ipynb_checkpoints"]
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
