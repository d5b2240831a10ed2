"""The documentation's API reference names every public callable of ``jaxconv``."""

import inspect
import re
from pathlib import Path

import jaxconv

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_api_reference_names_every_public_function_and_class():
    listed = set(re.findall(r"^   (\w+)$", API.read_text(), flags=re.M))
    public = {name for name in dir(jaxconv) if not name.startswith("_") and callable(getattr(jaxconv, name))}
    public -= {name for name in public if inspect.ismodule(getattr(jaxconv, name))}
    assert public - listed == set(), "missing from docs/api.md"
    assert listed - public == set(), "docs/api.md lists names jaxconv does not export"
