"""6.1 From fully connected layers to convolutions: parameter counts, equivariance and locality.

``python -m experiments.why_conv [--out DIR] [--fast]``; the code is ``jaxconv.experiments.why_conv``.
"""

from jaxconv.experiments import why_conv
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("why_conv", why_conv.run))
