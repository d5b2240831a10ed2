"""Proof, on a CPU-only machine, that jaxconv lowers for GPUs and TPUs and that ``auto`` picks per platform.

``jax.export`` traces and lowers for a platform without its hardware. Every program below must lower
for CUDA, ROCm and TPU; with ``impl="auto"`` the GPU and TPU programs must hold XLA's convolution (cuDNN
and the TPU emitter are what jaxconv's rule picks there) and the CPU program, lowered on this host, the
hand-written one. It proves the programs are well-formed there, not that they are fast.
"""

import jax
import jax.numpy as jnp
import pytest

import jaxconv as jc
from jaxconv.bench import harness
from jaxconv.bench.layers import ConvShape
from jaxconv.train import TrainConfig, create_train_state, eval_step, train_step

ACCELERATORS = ("cuda", "rocm", "tpu")
CONV, WINDOW = "stablehlo.convolution", "stablehlo.reduce_window"
# impl="pallas" lowers to Triton on GPUs, a custom call without export's compatibility guarantee;
# these programs are read, never run.
UNCHECKED = [jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
RECIPES = {
    "book": TrainConfig(),
    "modern": TrainConfig(variant="modern", batch_norm=True, optimizer="adam", lr=2e-3, schedule="cosine"),
}


def _programs(fn, *args) -> dict[str, str]:
    """The StableHLO text of ``jax.jit(fn)`` lowered for the CPU and for each accelerator."""
    jitted = jax.jit(fn)
    return {
        p: jax.export.export(jitted, platforms=[p], disabled_checks=UNCHECKED)(*args).mlir_module()
        for p in ("cpu", *ACCELERATORS)
    }


def _auto_is_xla_on_accelerators_only(programs: dict[str, str], op: str = CONV) -> None:
    assert op not in programs["cpu"], "the CPU program runs XLA's op: auto's CPU pick leaked out"
    for platform in ACCELERATORS:
        assert op in programs[platform], f"the {platform} program holds no {op}: auto's CPU pick leaked in"


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes Python floats with int32 counts
        yield


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_lenet_training_and_evaluation_steps_lower_for_every_platform(recipe):
    state = create_train_state(RECIPES[recipe], steps_per_epoch=10)
    batch = (jnp.zeros((8, 28, 28), jnp.uint8), jnp.zeros((8,), jnp.int32))
    _auto_is_xla_on_accelerators_only(_programs(lambda s, b: train_step(s, b), state, batch))
    _auto_is_xla_on_accelerators_only(_programs(lambda s, b: eval_step(s, b), state, batch))


def _forward_backward(op):
    def fn(x, w):
        y, pullback = jax.vjp(op, x, w)
        return y, *pullback(jnp.ones_like(y))

    return fn


@pytest.mark.parametrize("impl", [*jc.IMPLS, "auto"])
def test_every_impl_lowers_forward_and_backward_for_every_platform(impl):
    x, w = jnp.ones((2, 6, 14, 14)), jnp.ones((16, 6, 5, 5))
    programs = _programs(_forward_backward(lambda x, w: jc.conv2d(x, w, padding=1, impl=impl)), x, w)
    if impl == "auto":
        _auto_is_xla_on_accelerators_only(programs)
    else:  # xla is XLA's convolution everywhere; the hand-written ones nowhere
        assert all((CONV in text) is (impl == "xla") for text in programs.values()), impl


@pytest.mark.parametrize("impl", ["xla", "im2col", "banded", "auto"])
def test_the_transposed_convolution_and_the_drop_in_lower_for_every_platform(impl):
    x, w = jnp.ones((2, 4, 7, 7)), jnp.ones((4, 3, 3, 3))
    transposed = _programs(
        _forward_backward(lambda x, w: jc.conv_transpose2d(x, w, stride=2, impl=impl)), x, w
    )
    nhwc, hwio = jnp.ones((2, 9, 9, 4)), jnp.ones((3, 3, 4, 8))
    drop_in = _programs(
        _forward_backward(
            lambda x, w: jc.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), impl=impl
            )  # fmt: skip
        ),
        nhwc,
        hwio,
    )
    for programs in (transposed, drop_in):
        if impl == "auto":
            _auto_is_xla_on_accelerators_only(programs)
        else:
            assert all((CONV in text) is (impl == "xla") for text in programs.values()), impl


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_lowers_for_every_platform_and_auto_picks_per_platform(mode):
    pool = jc.max_pool2d if mode == "max" else jc.avg_pool2d
    x = jnp.ones((2, 3, 8, 8))
    for impl in (*jc.IMPLS, "auto"):
        fn = jax.value_and_grad(lambda x, impl=impl: pool(x, 2, impl=impl).sum())
        programs = _programs(fn, x)
        if impl == "auto":  # tiling windows: the taps' reshape on CPU, reduce_window elsewhere
            _auto_is_xla_on_accelerators_only(programs, WINDOW)
        elif impl != "xla":
            assert not any(WINDOW in text for text in programs.values()), impl


def test_the_bench_contestants_lower_for_every_platform():
    shape = ConvShape("tiny", 2, 3, 4, 8, 3, 1)
    for _, impl, layout in harness.candidates():
        x, w = harness._inputs(shape, layout, jnp.float32)
        g = harness._cotangent(shape, layout, jnp.float32)
        forward, forward_backward = harness._jax_steps(shape, impl, layout, {})
        for platform in ("cpu", *ACCELERATORS):
            jax.export.export(forward, platforms=[platform], disabled_checks=UNCHECKED)(x, w)
            program = jax.export.export(forward_backward, platforms=[platform], disabled_checks=UNCHECKED)(
                x, w, g
            ).mlir_module()
            if impl == "auto":
                assert (CONV in program) is (platform != "cpu"), platform
