"""The guide's examples run: every code cell of docs/guide/own_model.md, "Use jaxconv's convolutions in your
own model" (the docs build executes them too; this keeps them checked by the test suite alone)."""

import re
from pathlib import Path

import jax
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "own_model.md"


def test_the_own_model_examples_run():
    pytest.importorskip("equinox")
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(cells) == 4
    namespace: dict = {"__name__": "own_model"}
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):  # as a user's session
        for cell in cells:
            exec(compile(cell, str(PAGE), "exec"), namespace)  # noqa: S102
