"""Entry points, one per experiment: ``python -m experiments.NAME`` from the repository root.

The experiments' code lives in the package, :mod:`jaxconv.experiments`, so that ``jaxconv experiment
NAME`` works from an installed wheel; this folder is not installed.
"""
