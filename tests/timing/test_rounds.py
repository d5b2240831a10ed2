"""The timing rounds' design and their per-round speed-ups (jaxconv.timing.rounds)."""

import itertools
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxconv.timing import rounds as rounds_module
from jaxconv.timing.rounds import paired_speedups, round_orders, time_in_rounds


@given(n=st.integers(1, 12), extra=st.integers(0, 5))
def test_round_orders_put_each_contestant_behind_every_other_equally_often(n, extra):
    labels = [f"impl{k}" for k in range(n)]
    full = n if n % 2 == 0 else 2 * n  # one whole Williams design
    orders = round_orders(labels, full + extra)
    assert len(orders) == full + extra
    assert all(sorted(order) == sorted(labels) for order in orders)
    assert orders[full:] == orders[:extra]  # later rounds repeat the design
    design = orders[:full]
    followers = Counter(pair for order in design for pair in itertools.pairwise(order))
    times = full // n  # every ordered pair of distinct contestants, equally often
    assert followers == dict.fromkeys(itertools.permutations(labels, 2), times)
    at_position = Counter((k, label) for order in design for k, label in enumerate(order))
    assert set(at_position.values()) == {full // n}
    if n % 2 == 0:  # within one square nobody follows the same contestant twice
        for label in labels:
            behind = [o[o.index(label) - 1] for o in design if o.index(label) > 0]
            assert len(behind) == len(set(behind))


def test_round_orders_refuse_repeated_labels_and_bad_rounds():
    assert round_orders([], 2) == [[], []]
    with pytest.raises(ValueError, match="labels must be distinct"):
        round_orders(["xla", "xla"], 2)
    for rounds in (-1, 2.0, True):
        with pytest.raises(ValueError, match="rounds must be an int >= 0"):
            round_orders(["xla"], rounds)


def _quartile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile in plain Python (numpy's default), the reference for the bench's."""
    ordered, pos = sorted(values), q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (pos - low) * (ordered[high] - ordered[low])


@given(rounds=st.lists(st.tuples(st.floats(1e-4, 10.0), st.floats(1e-4, 10.0)), min_size=1, max_size=12))
def test_paired_speedups_summarise_the_per_round_ratios(rounds):
    ref, con = [r for r, _ in rounds], [c for _, c in rounds]
    spread = paired_speedups(ref, con)
    ratios = [r / c for r, c in rounds]
    for key, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75)):
        assert spread[key] == pytest.approx(_quartile(ratios, q), rel=1e-12)
    assert spread["min"] == pytest.approx(min(ratios)) and spread["max"] == pytest.approx(max(ratios))
    assert spread["min"] <= spread["q25"] <= spread["median"] <= spread["q75"] <= spread["max"]


def test_paired_speedups_pair_rounds_not_medians():
    # per round 2x, 0.25x, 1x: their median is 1x, while the medians' ratio (1 s / 4 s) says 0.25x
    assert paired_speedups([1.0, 1.0, 4.0], [0.5, 4.0, 4.0]) == {
        "median": 1.0, "q25": 0.625, "q75": 1.5, "min": 0.25, "max": 2.0
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ref", "con", "match"),
    [
        ([1.0, 2.0], [1.0], r"same number \(>= 1\) of rounds for both, got \(2,\) and \(1,\)"),
        ([], [], r"same number \(>= 1\) of rounds"),
        ([1.0, 0.0], [1.0, 1.0], "every round's time must be > 0"),
        ([1.0, 1.0], [1.0, -2.0], "every round's time must be > 0"),
    ],
)
def test_paired_speedups_refuse_unpaired_or_empty_rounds(ref, con, match):
    with pytest.raises(ValueError, match=match):
        paired_speedups(ref, con)


def test_time_in_rounds_runs_each_turn_in_the_designs_order_after_a_pause(monkeypatch):
    log, clock = [], iter(range(1000))
    monkeypatch.setattr(rounds_module.time, "sleep", lambda s: log.append(("pause", s)))
    monkeypatch.setattr(rounds_module.time, "perf_counter", lambda: float(next(clock)))
    contestants = {name: (lambda name=name: log.append(name)) for name in "ABC"}
    seconds = time_in_rounds(contestants, rounds=4, calls=2, pause=0.25)
    turns = [entry for entry in log if entry != ("pause", 0.25)]
    expected = [name for order in round_orders("ABC", 4) for name in order for _ in range(2)]
    assert turns == expected and log.count(("pause", 0.25)) == 12
    assert seconds == {name: [0.5] * 4 for name in "ABC"}  # one clock tick per turn of 2 calls


@pytest.mark.parametrize(
    ("rounds", "calls", "pause"), [(0, 1, 0.0), (1, 0, 0.0), (1, 1, -1.0), (1.5, 1, 0.0)]
)
def test_time_in_rounds_refuses_bad_counts(rounds, calls, pause):
    with pytest.raises(ValueError, match="time_in_rounds"):
        time_in_rounds({"A": lambda: None}, rounds=rounds, calls=calls, pause=pause)
