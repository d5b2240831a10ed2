"""How many hypothesis examples an expensive property test draws: few by default, every one of the loaded
profile's under ``HYPOTHESIS_PROFILE=thorough`` (tests/conftest.py registers both profiles)."""

import os

from hypothesis import settings


def examples(default: int) -> settings:
    """``settings`` drawing ``default`` examples (each new shape recompiles), or the thorough profile's count."""
    thorough = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
    return settings(max_examples=settings.default.max_examples if thorough else default, deadline=None)
