"""Flax Linen modules over the jaxconv functions."""

from jaxconv.nn.layers import AvgPool2D as AvgPool2D
from jaxconv.nn.layers import Conv2D as Conv2D
from jaxconv.nn.layers import ConvTranspose2D as ConvTranspose2D
from jaxconv.nn.layers import MaxPool2D as MaxPool2D
from jaxconv.nn.lenet import LeNet as LeNet
from jaxconv.nn.lenet import count_params as count_params
from jaxconv.nn.lenet import format_summary as format_summary
from jaxconv.nn.lenet import summary as summary
from jaxconv.nn.pooling import max_pool as max_pool
