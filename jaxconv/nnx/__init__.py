"""Flax NNX modules over the jaxconv functions (the Linen ones are :mod:`jaxconv.nn`)."""

from jaxconv.nnx.functional import functional as functional
from jaxconv.nnx.layers import AvgPool2D as AvgPool2D
from jaxconv.nnx.layers import Conv2D as Conv2D
from jaxconv.nnx.layers import ConvTranspose2D as ConvTranspose2D
from jaxconv.nnx.layers import MaxPool2D as MaxPool2D
from jaxconv.nnx.lenet import LeNet as LeNet
from jaxconv.nnx.lenet import linen_variables as linen_variables
from jaxconv.nnx.lenet import set_linen_variables as set_linen_variables
from jaxconv.nnx.lenet import summary as summary
