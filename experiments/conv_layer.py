"""6.2 Convolutions for images: corr2d, edge detection, learning a kernel, correlation vs convolution.

``python -m experiments.conv_layer [--out DIR] [--fast]``; the code is ``jaxconv.experiments.conv_layer``.
"""

from jaxconv.experiments import conv_layer
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("conv_layer", conv_layer.run))
