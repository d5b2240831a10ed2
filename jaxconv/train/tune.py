"""``jaxconv train --tune`` and ``jaxconv tune``: ``auto``'s picks measured for a run's own steps.

The training and evaluation steps of a config are traced at every batch size the run will see (full
batches and the remainder) and their convolution and pooling calls tuned (:func:`jaxconv.tune`), with
the XLA options the steps compile with, so that the measured winners are those of the executables
that will run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxconv.train.config import TrainConfig
from jaxconv.train.steps import create_train_state, make_steps, step_compiler_options
from jaxconv.tuning.tuner import Report, Tuner

# Fashion-MNIST's training and test set sizes, for tuning a config without its data at hand.
TRAIN_EXAMPLES, TEST_EXAMPLES = 60_000, 10_000


def batch_sizes(examples: int, batch_size: int) -> list[int]:
    """The batch sizes an epoch over ``examples`` produces: full batches and the remainder.

    Examples:
      >>> batch_sizes(60_000, 256)
      [256, 96]
    """
    return [size for size in (min(batch_size, examples), examples % batch_size) if size]


def tune_steps(config: TrainConfig, *, train_examples: int | None = None, test_examples: int | None = None,
               tuner: Tuner | None = None) -> Report:  # fmt: skip
    """Tunes ``config``'s training and evaluation steps' calls; returns the tuner's report.

    Args:
      config: the run; its ``limit_train``/``limit_test`` cap the example counts.
      train_examples, test_examples: the sets' sizes (default: Fashion-MNIST's).
      tuner: how to measure (default: a :class:`~jaxconv.tuning.tuner.Tuner` compiling with the steps' XLA
        options).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"tune_steps: config must be a TrainConfig, got {type(config).__name__}")
    n_train = min(train_examples or TRAIN_EXAMPLES, config.limit_train or TRAIN_EXAMPLES)
    n_test = min(test_examples or TEST_EXAMPLES, config.limit_test or TEST_EXAMPLES)
    tuner = tuner or Tuner(compiler_options=step_compiler_options(config))
    steps = make_steps(config)
    state = create_train_state(config, steps_per_epoch=-(-n_train // config.batch_size))
    images = jax.ShapeDtypeStruct((max(n_train, n_test), 28, 28), jnp.uint8)
    labels = jax.ShapeDtypeStruct((max(n_train, n_test),), jnp.int32)
    train_rows = batch_sizes(n_train, config.batch_size)
    test_rows = batch_sizes(n_test, config.eval_batch_size)

    def every_step(state: object, images: jax.Array, labels: jax.Array) -> list:
        out = [steps.train(state, images, labels, jnp.zeros(rows, jnp.int32)) for rows in train_rows]
        return out + [steps.eval(state, images, labels, jnp.zeros(rows, jnp.int32)) for rows in test_rows]

    return tuner.tune(every_step, state, images, labels)
