"""The model race: the Flax and PyTorch transcriptions are the same models, and a tiny race runs."""

import jax
import numpy as np
import pytest

from jaxconv.bench import model_race, torch_peer

MODELS = ("mobilenet_v2", "unet_decoder")


def _flax_parameter_count(model):
    shapes = model_race.batch_shapes(model, 2)
    x = jax.numpy.zeros(shapes["x"])
    args = (x,) if model == "mobilenet_v2" else (x, [jax.numpy.zeros(shapes[f"skip{i}"]) for i in range(3)])
    variables = jax.eval_shape(model_race.flax_model(model, None).init, jax.random.key(0), *args)
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("model", MODELS)
def test_the_flax_and_pytorch_models_have_the_same_parameters(model):
    if not torch_peer.available():
        pytest.skip("optional peer: pip install torch==2.13.0")
    torch_count = sum(p.numel() for p in model_race.torch_model(model).parameters())
    assert _flax_parameter_count(model) == torch_count


def test_the_mobilenet_stack_has_torchvision_s_parameter_count():
    # torchvision's mobilenet_v2().features[2:7]: 5 inverted residuals, 16 -> 24 -> 24 -> 32 -> 32 -> 32
    # (weights and batch-norm scales and offsets), and the 32 -> 10 classifier.
    blocks = sum(
        c * 6 * c + 2 * 6 * c + 9 * 6 * c + 2 * 6 * c + 6 * c * o + 2 * o
        for c, o, _ in model_race.MOBILENET_BLOCKS
    )
    assert _flax_parameter_count("mobilenet_v2") == blocks + 32 * 10 + 10


@pytest.mark.parametrize("model", MODELS)
def test_a_tiny_race_runs_and_the_plugged_in_model_computes_the_stock_loss(model):
    result = model_race.run(model, batch=2, rounds=1, steps_per_round=1, with_torch=False)
    assert set(result["step_ms"]) == {"stock Flax", "jaxconv auto"}
    np.testing.assert_allclose(
        result["first_loss"]["jaxconv auto"], result["first_loss"]["stock Flax"], rtol=1e-4
    )
    assert "stock Flax" in result["speedups"]["jaxconv auto"]
    assert "jaxconv auto" in model_race.format_result(result)


def test_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="model must be"):
        model_race.run("resnet", with_torch=False)
