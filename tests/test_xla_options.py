"""jaxconv's XLA compiler options: which backends get them, that they reach the compiled HLO, and
that the training step computes the same thing with or without them."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import xla_options
from jaxconv.train import TrainConfig, create_train_state, make_steps, step_compiler_options
from tests import reference


@pytest.fixture(autouse=True)
def _standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 counts
        yield


def test_options_are_for_cpu_only():
    assert xla_options.compiler_options("gpu") == {} and xla_options.compiler_options("tpu") == {}
    cpu = xla_options.compiler_options("cpu")
    assert cpu == xla_options.CPU_OPTIONS and cpu is not xla_options.CPU_OPTIONS  # a copy to change
    separate = xla_options.compiler_options("cpu", fuse_elementwise=False)
    assert separate == xla_options.CPU_OPTIONS_SEPARATE_DOTS != cpu
    assert separate is not xla_options.CPU_OPTIONS_SEPARATE_DOTS
    assert xla_options.compiler_options("gpu", fuse_elementwise=False) == {}
    with pytest.raises(TypeError, match=r"compiler_options: fuse_elementwise must be a bool, got 0"):
        xla_options.compiler_options("cpu", fuse_elementwise=0)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"compiler_options: backend must be a str \('cpu', \.\.\.\), got int"
    ):
        xla_options.compiler_options(0)  # type: ignore[arg-type]


def test_a_jaxlib_that_rejects_them_warns_and_compiles_with_defaults(monkeypatch):
    monkeypatch.setattr(xla_options, "CPU_OPTIONS", {"xla_cpu_no_such_option": "1"})
    xla_options._accepted_on_cpu.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=r"rejects XLA options \{'xla_cpu_no_such_option': '1'\}"):
            assert xla_options.compiler_options("cpu") == {}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per process, not per call
            assert xla_options.compiler_options("cpu") == {}
    finally:
        xla_options._accepted_on_cpu.cache_clear()


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options concern XLA's CPU backend")
def test_reductions_leave_ynnpack_and_results_stay():
    def pooled_bias_grad(x):  # LeNet's conv1 output: summed per channel, as its bias gradient is
        return (x * x).sum((0, 1, 2))

    x = jax.random.normal(jax.random.key(0), (16, 28, 28, 6))
    plain = jax.jit(pooled_bias_grad).lower(x).compile().as_text()
    if "__ynn_fusion" not in plain:
        pytest.skip("this XLA does not hand reductions to YNNPACK by default")
    tuned = xla_options.jit(pooled_bias_grad)
    assert "__ynn_fusion" not in tuned.lower(x).compile().as_text()
    np.testing.assert_allclose(
        tuned(x), np.einsum("nhwc,nhwc->c", *(np.asarray(x, np.float64),) * 2), rtol=1e-5
    )
    assert tuned.__name__ == "pooled_bias_grad" and "TunedJit(" in repr(tuned)
    with pytest.raises(TypeError, match=r"TunedJit: fun must be callable, got int"):
        xla_options.jit(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"TunedJit: fuse_elementwise must be a bool, got 'no'"):
        xla_options.jit(pooled_bias_grad, fuse_elementwise="no")  # type: ignore[arg-type]


def _ynn_fused_ops(hlo: str) -> set[str]:
    """The HLO opcodes inside the computations that YNNPACK fusions of a compiled module call."""
    called = set(re.findall(r"calls=(%[\w.-]+)[^\n]*__ynn_fusion", hlo))
    ops: set[str] = set()
    for name, body in reference.hlo_computations(hlo).items():
        if name in called:
            ops.update(re.findall(r"= \S+ ([a-z][\w-]*)\(", body))
    return ops


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options concern XLA's CPU backend")
def test_training_steps_hand_ynnpack_each_dot_alone():
    state = create_train_state(TrainConfig(), 10)
    images = jnp.zeros((64, 28, 28), jnp.uint8)
    labels, idx = jnp.zeros(64, jnp.int32), jnp.arange(32, dtype=jnp.int32)
    train_step_at, eval_step_at, _ = make_steps(TrainConfig())
    assert repr(train_step_at) == "TunedJit(_train_step_at, fuse_elementwise=False)"
    fused_step = xla_options.jit(train_step_at.__wrapped__)  # the same step, elementwise ops fused
    fused = _ynn_fused_ops(fused_step.lower(state, images, labels, idx).compile().as_text())
    if "exponential" not in fused:
        pytest.skip("this XLA does not fuse the sigmoid into YNNPACK's dots")
    for step in (train_step_at, eval_step_at):
        ops = _ynn_fused_ops(step.lower(state, images, labels, idx).compile().as_text())
        assert "dot" in ops and "exponential" not in ops and "add" not in ops, ops
    assert step_compiler_options(TrainConfig()) == xla_options.CPU_OPTIONS_SEPARATE_DOTS
    assert step_compiler_options(TrainConfig(cpu_compiler_options=False)) == {}


def test_train_step_agrees_with_and_without_the_options():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, 10, 64, dtype=np.int32))
    idx = jnp.arange(32, dtype=jnp.int32)
    results = []
    for tuned in (True, False):
        config = TrainConfig(cpu_compiler_options=tuned)
        train_step_at, eval_step_at, _ = make_steps(config)
        state, metrics = train_step_at(create_train_state(config, 10), images, labels, idx)
        results.append((state.params, metrics, eval_step_at(state, images, labels, idx + 32)))
    assert make_steps(TrainConfig()).train is not make_steps(TrainConfig(cpu_compiler_options=False)).train
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    with pytest.raises(TypeError, match=r"TrainConfig: cpu_compiler_options must be a bool, got 'no'"):
        TrainConfig(cpu_compiler_options="no")  # type: ignore[arg-type]
