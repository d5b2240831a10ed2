"""Receptive fields: jc.receptive_field's formula against the field measured with autodiff.

``python -m experiments.receptive_field [--out DIR] [--fast]``; the code is ``jaxconv.experiments.receptive_field``.
"""

from jaxconv.experiments import receptive_field
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("receptive_field", receptive_field.run))
