"""jaxconv.tune and jaxconv.explain: calls collected, winners decided by the timer, remembered and used."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from jaxconv import impls
from jaxconv.spec import ConvSpec
from jaxconv.tuning import calls, lookup, table
from jaxconv.tuning.measure import candidates, measure
from jaxconv.tuning.tuner import Tuner, tune_on_miss

X = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 10, 10)), jnp.float32)
W = jnp.asarray(np.random.default_rng(1).normal(size=(8, 3, 3, 3)), jnp.float32)


def fake_timer(seconds):
    """A timer that says each impl takes ``seconds[impl]`` (default 1 s) and runs nothing."""
    return lambda impl, run: seconds.get(impl, 1.0)


def model(w, x):
    y = jc.max_pool2d(jax.nn.relu(jc.conv2d(x, w, padding=1)), 2)
    return jc.conv2d(y, w[:, :, :1, :1].repeat(8 // 3 + 1, axis=1)[:, :8], impl="xla").sum()


def loss(w, x):
    return jc.conv2d(jc.conv2d(x, w, padding=1), w[:, :1].repeat(8, axis=1), padding=1).sum()


def test_tune_collects_each_distinct_call_with_its_pass_and_how_often(tmp_path):
    def fn(w, x):
        g = jax.grad(lambda w: jc.conv2d(x, w, padding=1).sum())(w)
        return g, jc.conv2d(x, w, padding=1), jc.conv2d(x, w, padding=1), jc.conv2d(x, w, impl="im2col")

    with calls.recording() as seen:
        jax.eval_shape(fn, W, X)
    assert [(c.impl, c.pass_) for c in seen] == [("auto", "forward+backward"), ("auto", "forward"),
                                                 ("auto", "forward"), ("im2col", "forward")]  # fmt: skip
    report = Tuner(
        table=tmp_path / "t.json", timer=fake_timer({}), rounds=1, progress=False, in_context=False
    ).tune(fn, W, X)
    rows = {(row.pass_, row.source): row for row in report}
    assert rows[("forward", "tuned")].count == 2 and rows[("forward", "given")].runs == "im2col"
    assert rows[("forward+backward", "tuned")].count == 1
    assert len(report) == 3


def test_the_fake_timers_winner_is_written_and_auto_runs_it(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    fast = {"shift_add": 0.001}
    report = Tuner(table=path, timer=fake_timer(fast), rounds=3, progress=False, in_context=False).tune(
        jax.grad(loss), W, X
    )
    assert [row.runs for row in report] == ["shift_add", "shift_add"]
    assert all(row.ms["shift_add"] == 1.0 and row.source == "tuned" for row in report)
    traced = []
    core = impls.REGISTRY["shift_add"]
    monkeypatch.setitem(impls.REGISTRY, "shift_add", dataclasses.replace(
        core, conv=lambda *a, **k: traced.append(k["spec"]) or core.conv(*a, **k)))  # fmt: skip
    with table.use_table(path):
        explained = jc.explain(jax.grad(loss), W, X)
        grads = jax.jit(jax.grad(loss))(W, X)
    assert [(row.runs, row.source) for row in explained] == [("shift_add", "table")] * 2
    assert traced  # auto ran shift_add's core
    np.testing.assert_allclose(grads, jax.grad(loss)(W, X), rtol=1e-5, atol=1e-4)
    # A second tune finds the entries and times nothing.
    again = Tuner(table=path, timer=fake_timer({}), progress=False, in_context=False).tune(
        jax.grad(loss), W, X
    )
    assert [row.source for row in again] == ["table", "table"]


def test_the_rule_keeps_a_near_tie(tmp_path):
    spec_rule = jc.explain(lambda x, w: jc.conv2d(x, w, padding=1), X, W)[0].rule
    near = {spec_rule: 1.02, "im2col": 1.0, "xla": 1.0}
    report = Tuner(table=tmp_path / "t.json", timer=fake_timer(near), rounds=1, progress=False, in_context=False).tune(
        lambda x, w: jc.conv2d(x, w, padding=1), X, W)  # fmt: skip
    assert report[0].runs == spec_rule != "im2col"


def test_a_candidate_with_wrong_numbers_is_rejected_even_if_fastest(monkeypatch):
    wrong = dataclasses.replace(
        impls.REGISTRY["im2col"], conv=lambda x, w, b, **k: 2 * impls.REGISTRY["xla"].conv(x, w, b, **k)
    )
    monkeypatch.setitem(impls.REGISTRY, "broken", wrong)
    spec = ConvSpec(batch=2, in_channels=3, out_channels=4, input_hw=(8, 8), kernel=(3, 3))
    result = measure("conv", spec, "forward", rounds=2, timer=fake_timer({"broken": 1e-6}))
    assert "broken" not in result.seconds and "differs from xla's" in result.rejected["broken"]
    assert result.fastest != "broken"


def test_a_candidate_too_big_for_free_memory_is_skipped():
    spec = ConvSpec(batch=2, in_channels=3, out_channels=4, input_hw=(8, 8), kernel=(3, 3))
    result = measure("conv", spec, "forward", rounds=1, timer=fake_timer({}), free_memory=lambda: 10)
    assert result.seconds == {} and all("GB free" in why for name, why in result.rejected.items()
                                        if name in ("xla", "im2col"))  # fmt: skip


def test_candidates_leave_out_the_reference_and_interpreters_and_say_why():
    spec = ConvSpec(batch=2, in_channels=16, out_channels=16, input_hw=(8, 8), kernel=(3, 3))
    names, left = candidates("cpu", "conv", spec)
    assert "manual" in left and "pallas" in left and "stencil" in left
    assert {"xla", "im2col", "shift_add", "banded", "winograd"} <= set(names)
    depthwise_names, _ = candidates("cpu", "conv", spec.replace(groups=16))
    assert "stencil" in depthwise_names
    gpu, left_gpu = candidates("gpu", "conv", spec)
    assert gpu == ["xla", "pallas"] and "im2col" in left_gpu


def test_an_empty_table_compiles_exactly_the_rules_program(tmp_path):
    def fn(w, x):
        return (
            jax.grad(loss)(w, x),
            jc.max_pool2d(x, 2),
            jc.conv_transpose2d(x, W.transpose(1, 0, 2, 3), stride=2),
        )

    with table.use_table(tmp_path / "none.json"):
        empty = jax.jit(fn).lower(W, X).as_text()
    with lookup.rule_only():
        rule = jax.jit(fn).lower(W, X).as_text()
    assert empty == rule


def test_tuning_on_a_miss_is_opt_in(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    f = jax.jit(lambda x, w: jc.conv2d(x, w, padding=1))
    with table.use_table(path):
        f(X, W)
        assert table.read(path) == []  # off by default
        jax.clear_caches()
        with tune_on_miss(Tuner(rounds=1, progress=False, timer=fake_timer({"im2col": 0.1}))):
            y = f(X, W)
        assert [e.impl for e in table.read(path)] == ["im2col"]
    np.testing.assert_allclose(y, jc.conv2d(X, W, padding=1, impl="xla"), rtol=1e-5, atol=1e-5)
    assert not lookup.tuning_on_miss()
    monkeypatch.setenv("JAXCONV_TUNE_ON_MISS", "1")
    assert lookup.tuning_on_miss()


def test_tune_refuses_a_corrupt_table_before_timing_and_leaves_it(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("garbage")
    timed = []
    with pytest.raises(table.TableError, match="not a readable"):
        Tuner(
            table=path, timer=lambda impl, run: timed.append(impl) or 1.0, progress=False, in_context=False
        ).tune(loss, W, X)
    assert timed == [] and path.read_text() == "garbage"


def test_the_report_prints_as_a_table(tmp_path):
    report = Tuner(table=tmp_path / "t.json", timer=fake_timer({"banded": 0.5}), rounds=1, progress=False, in_context=False).tune(
        jax.grad(loss), W, X)  # fmt: skip
    text = str(report)
    assert text.splitlines()[0].split()[:3] == ["call", "pass", "n"]
    assert "conv 4x3x10x10 -> 8, 3x3 p1 NCHW" in text and "banded 500" in text
    assert report.to_markdown().startswith("| call | pass |")


@pytest.mark.parametrize("bad, error", [(dict(rounds=0), ValueError), (dict(table=3), TypeError)])
def test_tuner_options_are_checked(bad, error):
    with pytest.raises(error):
        Tuner(**bad)
    with pytest.raises(TypeError, match="callable"):
        jc.tune(3)


class FakeStepTimer:
    """The whole step's timer with made-up medians: each variant's ms is given by the tuned picks it has."""

    def __init__(self, cost):
        self.cost, self.ms = cost, {}

    def __call__(self, fn, args, kwargs, options, rounds):
        return self

    def add(self, label, picks):
        self.ms[label] = sum(self.cost(key, impl) for key, impl in picks.items())
        return self.ms[label]

    def ratio(self, reference, label):
        return self.ms[reference] / self.ms[label]

    def medians(self):
        return dict(self.ms)


def _two_convs(x, w):
    return jc.conv2d(jc.conv2d(x, w, padding=1), w[:, :1].repeat(8, axis=1), padding=1)


def test_in_the_step_a_tuned_pick_that_loses_there_goes_back_to_the_rule(tmp_path, monkeypatch):
    from jaxconv.tuning import tuner

    # Alone, im2col wins both calls; in the step, the second call's im2col costs more than the rule's pick.
    def cost(key, impl):
        second = '"in_channels":8' in key[1]
        return {"auto": 10.0, "im2col": 12.0 if second else 5.0}.get(impl, 11.0)

    monkeypatch.setattr(tuner, "_StepTimer", FakeStepTimer(cost))
    path = tmp_path / "t.json"
    report = Tuner(table=path, timer=fake_timer({"im2col": 0.1}), rounds=1, progress=False).tune(
        _two_convs, X, W
    )
    assert [(row.spec.in_channels, row.pick, row.source) for row in report] == [
        (3, "im2col", "tuned"), (8, "auto", "tuned in the step")]  # fmt: skip
    assert report.step_ms["rule"] == 20.0 and report.step_ms["tuned"] == 17.0
    entries = {e.spec.in_channels: e for e in table.read(path)}
    assert entries[3].impl == "im2col" and entries[8].impl == "auto"
    assert "slower in the step" in entries[8].rejected["im2col"]
    with table.use_table(path):
        assert [row.source for row in jc.explain(_two_convs, X, W)] == ["table", "table"]
        assert jc.explain(_two_convs, X, W)[1].runs == jc.explain(_two_convs, X, W)[1].rule


def test_the_step_check_needs_concrete_arguments_and_can_be_turned_off(tmp_path, monkeypatch):
    from jaxconv.tuning import tuner

    timers = []
    monkeypatch.setattr(tuner, "_StepTimer", lambda *a: timers.append(a) or FakeStepTimer(lambda k, i: 1.0))
    abstract = jax.ShapeDtypeStruct(X.shape, X.dtype), jax.ShapeDtypeStruct(W.shape, W.dtype)
    options = dict(timer=fake_timer({"im2col": 0.1}), rounds=1, progress=False, save=False)
    Tuner(**options).tune(_two_convs, *abstract)
    Tuner(**options, in_context=False).tune(_two_convs, X, W)
    assert timers == []
    Tuner(**options).tune(_two_convs, X, W)
    assert len(timers) == 1
