"""Training LeNet on Fashion-MNIST: the run's config, the jitted steps, the loop, and what they need.

``from jaxconv.train import TrainConfig, train_and_evaluate`` is the usual entry; the modules:

* :mod:`jaxconv.train.config`: :class:`TrainConfig` (the book's recipe by default), the optimizer;
* :mod:`jaxconv.train.steps`: ``TrainState``, the jitted ``train_step`` and ``eval_step``;
* :mod:`jaxconv.train.loop`: ``train_and_evaluate``, ``evaluate``;
* :mod:`jaxconv.train.data`: Fashion-MNIST, found or downloaded, read strictly, batched;
* :mod:`jaxconv.train.checkpoint`, :mod:`jaxconv.train.curves`: atomic checkpoints, the book's plot;
* :mod:`jaxconv.train.distributed`: data parallelism over devices and hosts.
"""

from jaxconv.train.config import OPTIMIZERS as OPTIMIZERS
from jaxconv.train.config import SCHEDULES as SCHEDULES
from jaxconv.train.config import TrainConfig as TrainConfig
from jaxconv.train.config import make_optimizer as make_optimizer
from jaxconv.train.loop import DivergenceError as DivergenceError
from jaxconv.train.loop import evaluate as evaluate
from jaxconv.train.loop import train_and_evaluate as train_and_evaluate
from jaxconv.train.steps import Steps as Steps
from jaxconv.train.steps import TrainState as TrainState
from jaxconv.train.steps import create_train_state as create_train_state
from jaxconv.train.steps import eval_step as eval_step
from jaxconv.train.steps import eval_step_at as eval_step_at
from jaxconv.train.steps import make_steps as make_steps
from jaxconv.train.steps import step_compiler_options as step_compiler_options
from jaxconv.train.steps import train_step as train_step
from jaxconv.train.steps import train_step_at as train_step_at
