"""6.4 Multiple input and output channels: the book's examples, 1x1 as a matmul, FLOPs, composition.

``python -m experiments.channels [--out DIR] [--fast]``; the code is ``jaxconv.experiments.channels``.
"""

from jaxconv.experiments import channels
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("channels", channels.run))
