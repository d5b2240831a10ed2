"""The tuned-vs-rule race's models: each builds a step that trains, the same with every impl."""

import jax
import numpy as np
import pytest

from jaxconv.bench import tuned_race


@pytest.mark.parametrize("model", ["lenet_classic", "lenet_modern", "nnx_tutorial"])
def test_each_models_step_runs_and_agrees_across_impls(model):
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats with int32 step counts
        losses = []
        for impl in ("xla", "auto"):
            step, state, options = tuned_race.build(model, impl)
            losses.append(float(jax.jit(step, compiler_options=options)(state)[1]))
    assert np.isfinite(losses[0]) and losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="model must be one of"):
        tuned_race.build("vgg", "auto")
    with pytest.raises(ValueError, match="model must be one of"):
        tuned_race.run("vgg")
