"""Tuning ``impl="auto"``: measured picks for your model on your machine, remembered in a table.

* :func:`jaxconv.tune` / :class:`jaxconv.tuning.tuner.Tuner`: time the implementations for every call a
  function makes and write the winners (:mod:`jaxconv.tuning.tuner`, :mod:`jaxconv.tuning.measure`);
* :func:`jaxconv.explain`: what ``auto`` runs for each call, and why;
* :mod:`jaxconv.tuning.table`: the JSON table, the user's cache or a team's (:func:`use_table`);
* :mod:`jaxconv.tuning.calls` and :mod:`jaxconv.tuning.lookup`: what the dispatcher records and asks.

The dispatcher (:mod:`jaxconv.impls`) reads the table, and the tuner times the dispatcher, so this package
imports only its lower half here; the tuner's names load on first use (``jaxconv`` itself loads them).
"""

from typing import Any

from jaxconv.tuning.table import TableError as TableError
from jaxconv.tuning.table import active_path as active_path
from jaxconv.tuning.table import default_path as default_path
from jaxconv.tuning.table import use_table as use_table

_TUNER_NAMES = ("CallReport", "Report", "Tuner", "explain", "tune", "tune_on_miss")


def __getattr__(name: str) -> Any:
    if name in _TUNER_NAMES:
        from jaxconv.tuning import tuner

        return getattr(tuner, name)
    raise AttributeError(f"module 'jaxconv.tuning' has no attribute {name!r}")
