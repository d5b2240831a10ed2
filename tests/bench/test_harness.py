"""The benchmark harness: shapes parse and validate, every contestant runs and agrees, files are written."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from jaxconv import bench
from jaxconv.bench import harness, report
from jaxconv.cli import main


def test_shape_parsing_and_flops():
    shape = bench.ConvShape.parse("256,6,16,14,5")
    assert (shape.batch, shape.in_channels, shape.out_channels, shape.size, shape.kernel) == (
        256,
        6,
        16,
        14,
        5,
    )
    assert shape.output_size == 10
    assert shape.flops == 2 * 256 * 16 * 10 * 10 * 6 * 25
    assert bench.ConvShape.parse("8,3,4,12,3,1,2").output_size == 6


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("256,6,16", r"N,C,O,H,K"),
        ("256,6,16,14,x", r"integers"),
        ("1,1,1,4,5", r"larger than the padded input"),
        ("0,1,1,4,3", r"batch must be an int >= 1"),
    ],
)
def test_bad_shapes_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        bench.ConvShape.parse(text)


def test_run_times_every_contestant_and_they_agree(tmp_path):
    result = bench.run([bench.ConvShape("tiny", 2, 3, 4, 8, 3, 1)], repeats=1, with_torch=False,
                       progress=lambda _: None)  # fmt: skip
    labels = [r["impl"] for r in result["rows"]]
    on_cpu = jax.default_backend() == "cpu"  # where the Pallas kernel is interpreted, and not timed
    assert labels == [label for label, impl, _ in bench.candidates() if not (on_cpu and impl == "pallas")]
    assert [r["impl"] for r in result["not_timed"]] == (["pallas NHWC"] if on_cpu else [])
    for row in result["rows"]:
        assert row["forward_ms"] > 0 and row["forward_backward_ms"] > 0
        assert row["max_rel_err_f32"] < 1e-5, row
        assert row["max_rel_err_bf16"] < 3e-2, row
    assert result["rows"][0]["speedup_vs_xla"] == 1.0
    for row in result["rows"]:  # the per-round spread, against a reference timed in the same rounds
        if row["impl"] == "manual":  # timed alone, after the interleaved rounds: nothing to pair with
            assert "speedup_vs_xla_q25" not in row
        else:
            assert (
                row["speedup_vs_xla_q25"] <= row["speedup_vs_xla_round_median"] <= row["speedup_vs_xla_q75"]
            )
    assert result["rows"][0]["speedup_vs_xla_q25"] == result["rows"][0]["speedup_vs_xla_q75"] == 1.0
    assert {r["runs"] for r in result["rows"] if r["impl"] == "auto NCHW"} <= set(jc.IMPLS)
    table = report.format_table(result)
    assert "im2col NHWC" in table and "tiny" in table
    assert ("pallas NHWC     not timed: runs in Pallas's interpreter" in table) is on_cpu
    assert result["glibc_malloc_tuned"] is jc.host_memory.tuned()
    assert f"glibc malloc {'tuned' if jc.host_memory.tuned() else 'as it came'}" in table
    assert result["compiler_options"] == jc.xla_options.compiler_options()
    assert "JAX contestants compiled with jaxconv's XLA options (xla_cpu_" in table
    paths = report.write(result, tmp_path)
    assert json.loads(paths[0].read_text())["rows"][0]["shape"] == "tiny"
    assert paths[1].read_text().startswith("shape,impl,")
    assert paths[2].stat().st_size > 1000


def test_contestants_compile_with_jaxconvs_options_or_xlas_defaults(monkeypatch):
    real_jit, seen = jax.jit, []

    def spy(fun, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return real_jit(fun, **kwargs)

    monkeypatch.setattr(jax, "jit", spy)
    shape = bench.ConvShape("tiny", 2, 3, 4, 8, 3, 1)
    for tuned, options in ((True, jc.xla_options.compiler_options()), (False, {})):
        seen.clear()
        result = bench.run([shape], impls=["im2col"], repeats=1, with_torch=False, progress=lambda _: None,
                           cpu_compiler_options=tuned)  # fmt: skip
        assert result["compiler_options"] == options
        # forward and forward+backward of xla NCHW (the reference) and of im2col NHWC
        assert seen.count(options) == 4, seen
        assert ("XLA's default options" in report.format_table(result)) is (
            options == {}
        )  # jaxconv's are CPU's


def test_a_contestant_that_would_not_fit_in_memory_is_skipped_with_the_reason(tmp_path):
    on_cpu = jax.default_backend() == "cpu"  # the Pallas kernel is not timed there
    labels = [label for label, impl, _ in bench.candidates() if not (on_cpu and impl == "pallas")]
    # free_memory is asked once per JAX contestant, in order: no limit, except none left for manual
    free = iter([None if label != "manual" else 0 for label in labels])
    result = bench.run([bench.ConvShape("tiny", 2, 3, 4, 8, 3, 1)], impls=None, repeats=1, with_torch=False,
                       progress=lambda _: None, free_memory=lambda: next(free))  # fmt: skip
    assert [r["impl"] for r in result["rows"]] == [label for label in labels if label != "manual"]
    assert [(r["impl"], r["shape"]) for r in result["skipped"]] == [("manual", "tiny")]
    assert re.fullmatch(r"needs \d+\.\d GB by XLA's estimate( x 2 for the tuned heap)?, 0\.0 GB free",
                        result["skipped"][0]["reason"])  # fmt: skip
    assert re.search(r"tiny +manual +skipped: needs", report.format_table(result))
    assert json.loads(report.write(result, tmp_path)[0].read_text())["skipped"] == result["skipped"]


def test_nothing_runs_on_a_shape_whose_reference_does_not_fit(tmp_path):
    shape = bench.ConvShape("tiny", 2, 3, 4, 8, 3, 1)
    candidates = bench.candidates()[:3]
    rows, skipped = bench.bench_shape(shape, candidates, repeats=1, with_torch=False, free_memory=lambda: 1)
    assert rows == []
    assert [r["impl"] for r in skipped] == [label for label, _, _ in candidates]
    assert skipped[0]["reason"].startswith("needs ")
    assert all(r["reason"] == "the reference, xla NCHW, does not fit" for r in skipped[1:])
    # the files are still written, the shape's panel saying what was skipped
    result = {"device": "cpu:0", "matmul_gflops": 1.0, "repeats": 1, "rows": rows, "skipped": skipped}
    paths = report.write(result, tmp_path)
    assert json.loads(paths[0].read_text())["skipped"] == skipped
    assert paths[2].stat().st_size > 1000
    assert re.search(r"tiny +manual +skipped: the reference", report.format_table(result))


def test_cli_bench(tmp_path, capsys):
    assert (
        main(["bench", "--shape", "2,2,3,6,3", "--impls", "im2col", "--repeats", "1", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "im2col NHWC" in out and "shift_add" not in out.split("shape")[-1]
    assert (tmp_path / "bench.csv").exists()
    assert main(["bench", "--impls", "cudnn"]) == 1
    assert "--impls must name some of" in capsys.readouterr().err


def test_matmul_gflops_is_positive_and_refuses_empty_sizes():
    assert bench.matmul_gflops(64, repeats=2) > 0
    with pytest.raises(
        ValueError, match=r"matmul_gflops: size and repeats must be >= 1, got size=0, repeats=3"
    ):
        bench.matmul_gflops(0, repeats=3)


def test_forward_backward_times_the_forward_pass_too():
    # a conv's gradients do not need its output; without returning it XLA would drop the forward pass
    shape = bench.ConvShape.parse("2,3,4,8,3,1")
    x, w = harness._inputs(shape, "NCHW", jnp.float32)
    g = harness._cotangent(shape, "NCHW", jnp.float32)
    forward, forward_backward = harness._jax_steps(shape, "xla", "NCHW", jc.xla_options.compiler_options())
    y, dx, dw = forward_backward(x, w, g)
    np.testing.assert_array_equal(y, forward(x, w))
    assert (dx.shape, dw.shape) == (x.shape, w.shape)


def test_the_pallas_kernel_is_timed_on_cpu_when_named():
    result = bench.run([bench.ConvShape("tiny", 2, 3, 4, 8, 3, 1)], impls=["pallas"], repeats=1, with_torch=False,
                       progress=lambda _: None)  # fmt: skip
    assert [r["impl"] for r in result["rows"]] == ["xla NCHW", "pallas NHWC"]
    assert result["not_timed"] == []
    assert result["rows"][1]["max_rel_err_f32"] < 1e-5
