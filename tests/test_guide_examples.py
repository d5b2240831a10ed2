"""The README's examples run: every Python block of its "Use jaxconv's convolutions in your own model"."""

import re
from pathlib import Path

import jax
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(section: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_own_model_examples_run():
    pytest.importorskip("equinox")
    blocks = _blocks("Use jaxconv's convolutions in your own model")
    assert len(blocks) == 4
    namespace: dict = {"__name__": "readme"}
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):  # as a user's session
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
