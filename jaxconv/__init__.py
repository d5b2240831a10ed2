"""jaxconv: the convolution chapter of *Dive into Deep Learning*, in JAX, by XLA and by hand.

``import jaxconv as jc``; every op takes ``impl="auto"`` (default: the fastest for the call and
backend) or the name of one implementation in :data:`IMPLS`: ``"xla"`` (XLA's fused op), ``"manual"``
(the book's definition, vmapped by hand) and the hand-written forms the registry lists
(:mod:`jaxconv.impls`, with what each computes and supports).
"""

from jaxconv import convert as convert
from jaxconv import host_memory as host_memory
from jaxconv import tuning as tuning
from jaxconv import xla_options as xla_options
from jaxconv.adaptive_pool import adaptive_avg_pool2d as adaptive_avg_pool2d
from jaxconv.adaptive_pool import adaptive_max_pool2d as adaptive_max_pool2d
from jaxconv.adaptive_pool import global_avg_pool2d as global_avg_pool2d
from jaxconv.adaptive_pool import global_max_pool2d as global_max_pool2d
from jaxconv.conv import conv2d as conv2d
from jaxconv.conv_general import conv_general_dilated as conv_general_dilated
from jaxconv.conv_general import conv_transpose as conv_transpose
from jaxconv.corr import convolve2d as convolve2d
from jaxconv.corr import corr2d as corr2d
from jaxconv.corr import corr2d_multi_in as corr2d_multi_in
from jaxconv.corr import corr2d_multi_in_out as corr2d_multi_in_out
from jaxconv.corr import corr2d_multi_in_out_1x1 as corr2d_multi_in_out_1x1
from jaxconv.impls import IMPL_CHOICES as IMPL_CHOICES
from jaxconv.impls import IMPLS as IMPLS
from jaxconv.pool import avg_pool2d as avg_pool2d
from jaxconv.pool import max_pool2d as max_pool2d
from jaxconv.pool import pool2d as pool2d
from jaxconv.pool_indices import max_unpool2d as max_unpool2d
from jaxconv.shapes import ReceptiveField as ReceptiveField
from jaxconv.shapes import conv_output_shape as conv_output_shape
from jaxconv.shapes import conv_transpose_output_shape as conv_transpose_output_shape
from jaxconv.shapes import pool_output_shape as pool_output_shape
from jaxconv.shapes import receptive_field as receptive_field
from jaxconv.transpose import conv_transpose2d as conv_transpose2d
from jaxconv.tuning.tuner import explain as explain
from jaxconv.tuning.tuner import tune as tune

__version__ = "0.1.0"
