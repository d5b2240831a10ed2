"""6.5 Pooling: the book's examples, padding and stride, channels, and tolerance to a one-pixel shift.

``python -m experiments.pooling [--out DIR] [--fast]``; the code is ``jaxconv.experiments.pooling``.
"""

from jaxconv.experiments import pooling
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("pooling", pooling.run))
