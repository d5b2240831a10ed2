"""``jaxconv bench``: every convolution implementation raced on the same layers, interleaved.

* :mod:`jaxconv.bench.layers`: the layers raced (:class:`ConvShape`, :data:`STANDARD_SHAPES`);
* :mod:`jaxconv.bench.harness`: the race itself (:func:`run`, :func:`bench_shape`);
* :mod:`jaxconv.bench.report`: the table, ``bench.json``/``bench.csv`` and the chart.

The rounds' order and whether a contestant fits in memory are :mod:`jaxconv.timing`'s, shared with the
tuner (:mod:`jaxconv.tuning`).
"""

from jaxconv.bench.harness import TORCH as TORCH
from jaxconv.bench.harness import bench_shape as bench_shape
from jaxconv.bench.harness import candidates as candidates
from jaxconv.bench.harness import matmul_gflops as matmul_gflops
from jaxconv.bench.harness import run as run
from jaxconv.bench.harness import torch_available as torch_available
from jaxconv.bench.layers import STANDARD_SHAPES as STANDARD_SHAPES
from jaxconv.bench.layers import ConvShape as ConvShape
from jaxconv.bench.report import format_table as format_table
from jaxconv.bench.report import write as write
