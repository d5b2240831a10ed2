"""6.6 LeNet: train the book's recipe and the modern one, then look inside the trained network.

``python -m experiments.lenet [--out DIR] [--fast]``; the code is ``jaxconv.experiments.lenet``.
"""

from jaxconv.experiments import lenet
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("lenet", lenet.run))
