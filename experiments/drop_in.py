"""Your model, our convolutions: Flax's NNX tutorial CNN with stock nnx.Conv and with each jaxconv impl.

``python -m experiments.drop_in [--out DIR] [--fast]``; the code is ``jaxconv.experiments.drop_in``.
"""

from jaxconv.experiments import drop_in
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("drop_in", drop_in.run))
