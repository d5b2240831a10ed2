"""6.3 Padding and stride: the book's shape examples by formula and by running conv2d.

``python -m experiments.padding_stride [--out DIR] [--fast]``; the code is ``jaxconv.experiments.padding_stride``.
"""

from jaxconv.experiments import padding_stride
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("padding_stride", padding_stride.run))
