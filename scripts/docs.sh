#!/usr/bin/env bash
# Builds the documentation into docs/_build/html, every notebook page executed, warnings as errors.
#   bash scripts/setup.sh --dev && bash scripts/docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export JAXCONV_TUNE_MALLOC=0 MPLBACKEND=Agg
# -E -a: a fresh build (every page executes anyway), so no page keeps a stale sidebar.
.venv/bin/python -m sphinx -E -a -W --keep-going -b html docs docs/_build/html
echo "docs: built docs/_build/html/index.html"
