"""The tuning table on disk: round trips, what invalidates an entry, corrupt files, concurrent writers."""

import json
import subprocess
import sys
import textwrap
import warnings

import pytest

from jaxconv.spec import ConvSpec, PoolSpec
from jaxconv.tuning import table

SPEC = ConvSpec(batch=8, in_channels=16, out_channels=32, input_hw=(12, 12), kernel=(3, 3), layout="NHWC")
POOL = PoolSpec(batch=8, channels=16, input_hw=(12, 12), window=(2, 2), stride=(2, 2))


def _entry(spec=SPEC, impl="im2col", pass_="forward+backward", machine=None, op="conv"):
    return table.Entry(machine or table.machine("cpu"), op, spec, pass_, impl, {impl: 1.0, "xla": 2.0},
                       {"winograd": "differs"})  # fmt: skip


def test_entries_round_trip_through_the_file(tmp_path):
    path = tmp_path / "t.json"
    entries = [
        _entry(),
        _entry(POOL, "shift_add", "forward", op="pool"),
        _entry(SPEC.replace(groups=4), "stencil"),
    ]
    table.write(path, entries)
    assert table.read(path) == entries
    assert json.loads(path.read_text())["format"] == table.FORMAT


def test_a_write_merges_with_the_file_and_replaces_the_same_key(tmp_path):
    path = tmp_path / "t.json"
    table.write(path, [_entry(impl="im2col"), _entry(POOL, "xla", "forward", op="pool")])
    table.write(path, [_entry(impl="winograd")])
    found = {(e.op, e.impl) for e in table.read(path)}
    assert found == {("conv", "winograd"), ("pool", "xla")}


def test_lookup_finds_this_machines_entry_and_prefers_the_asked_pass(tmp_path):
    path = tmp_path / "t.json"
    table.write(path, [_entry(impl="banded", pass_="forward")])
    with table.use_table(path):
        assert table.lookup("cpu", "conv", SPEC, "forward").impl == "banded"
        assert table.lookup("cpu", "conv", SPEC, "forward+backward").impl == "banded"  # the other pass's
        table.write(path, [_entry(impl="im2col")])
        assert table.lookup("cpu", "conv", SPEC, "forward+backward").impl == "im2col"  # re-read on change
        assert table.lookup("cpu", "conv", SPEC.replace(batch=9), "forward") is None
        assert table.lookup("cpu", "pool", POOL, "forward") is None


@pytest.mark.parametrize("field, value", [("jax", "0.0.1"), ("jaxlib", "0.0.1"), ("jaxconv", "9.9"),
                                          ("device", "another CPU"), ("platform", "gpu")])  # fmt: skip
def test_an_entry_for_other_versions_or_another_device_is_ignored(tmp_path, field, value):
    path = tmp_path / "t.json"
    table.write(path, [_entry(machine={**table.machine("cpu"), field: value})])
    with table.use_table(path):
        assert table.lookup("cpu", "conv", SPEC, "forward+backward") is None


@pytest.mark.parametrize("text", ["{not json", '{"entries": []}', '{"format": "jaxconv-tuning-table", "version": 7, '
                                  '"entries": []}', '{"format": "jaxconv-tuning-table", "version": 1, "entries": [1]}'])  # fmt: skip
def test_a_corrupt_or_foreign_file_warns_once_falls_back_and_is_not_overwritten(tmp_path, text):
    path = tmp_path / "t.json"
    path.write_text(text)
    with table.use_table(path), pytest.warns(UserWarning, match=str(path)):
        assert table.lookup("cpu", "conv", SPEC, "forward") is None
    with table.use_table(path), warnings.catch_warnings():
        warnings.simplefilter("error")  # once per version of the file
        assert table.lookup("cpu", "conv", SPEC, "forward") is None
    with pytest.raises(table.TableError, match=str(path)):
        table.write(path, [_entry()])
    assert path.read_text() == text


def test_the_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXCONV_TUNING_CACHE", str(tmp_path / "mine.json"))
    assert table.default_path() == tmp_path / "mine.json" == table.active_path()
    monkeypatch.delenv("JAXCONV_TUNING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert table.default_path() == tmp_path / "jaxconv" / "tuning.json"
    with table.use_table(tmp_path / "team.json"):
        assert table.active_path() == tmp_path / "team.json"
    assert table.active_path() == tmp_path / "jaxconv" / "tuning.json"


def test_entries_refuse_a_spec_of_the_wrong_kind_or_an_unknown_pass():
    with pytest.raises(TypeError, match="PoolSpec"):
        _entry(SPEC, op="pool")
    with pytest.raises(ValueError, match="pass_"):
        _entry(pass_="backward")


def test_two_concurrent_writers_leave_one_valid_file_with_both_sets_of_entries(tmp_path):
    path = tmp_path / "shared.json"
    writer = textwrap.dedent(f"""
        import sys
        from jaxconv.spec import ConvSpec
        from jaxconv.tuning import table
        first = int(sys.argv[1])
        for batch in range(first, first + 25):
            spec = ConvSpec(batch=batch, in_channels=4, out_channels=4, input_hw=(8, 8), kernel=(3, 3))
            table.write({str(path)!r}, [table.Entry(table.machine("cpu"), "conv", spec, "forward", "im2col")])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(first)]) for first in (1, 101)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    batches = sorted(e.spec.batch for e in table.read(path))
    assert batches == [*range(1, 26), *range(101, 126)]
    assert not list(tmp_path.glob("*.tmp"))
