"""Interleaved timing rounds: the order contestants run in, and speed-ups taken round by round.

On a shared machine two things move a contestant's time besides its code: what ran just before it,
and the machine's state of the minute. ``jaxconv bench`` and ``experiments.lenet_step_race`` therefore
time their contestants in rounds, each round in an order from :func:`round_orders` (a Williams design:
everyone behind everyone else equally often), and summarise each speed-up over the rounds it was
timed in (:func:`paired_speedups`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

# Idle seconds before each contestant's turn: PyTorch's OpenMP workers spin on the cores after its
# call and slow a JAX call that starts at once (docs/performance.md, "Tuning auto"); a pause ends that.
PAUSE_SECONDS = 0.05


def round_orders(labels: Sequence[str], rounds: int) -> list[list[str]]:
    """The order in which each of ``rounds`` timing rounds runs ``labels``: rows of a Williams design.

    What ran just before a contestant changes its time (docs/performance.md: a JAX call right after a
    PyTorch call ran much slower than after a pause). Rotating one order (A B C, B C A, ...) keeps every
    contestant behind the same one in every round but the first; a Williams design (a Latin square
    balanced for carryover) puts each contestant behind every other equally often: once per ``n``
    rounds for an even number ``n`` of labels, twice per ``2 n`` for an odd one. Each contestant also
    runs at each position equally often. Rounds beyond a full design repeat it from the start.

    Args:
      labels: the contestants, distinct.
      rounds: how many rounds, >= 0.

    Returns:
      ``rounds`` lists, each a permutation of ``labels``.

    Examples:
      >>> round_orders("ABCD", 4)
      [['A', 'B', 'D', 'C'], ['B', 'C', 'A', 'D'], ['C', 'D', 'B', 'A'], ['D', 'A', 'C', 'B']]
    """
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"round_orders: labels must be distinct, got {labels}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
        raise ValueError(f"round_orders: rounds must be an int >= 0, got {rounds!r}")
    n = len(labels)
    if n == 0:
        return [[] for _ in range(rounds)]
    first, low, high = [0], 1, n - 1  # 0, 1, n-1, 2, n-2, ...: successive differences all distinct
    while low <= high:
        first.append(low)
        low += 1
        if low <= high:
            first.append(high)
            high -= 1
    square = [[(k + shift) % n for k in first] for shift in range(n)]
    if n % 2:  # an odd square needs its mirror image to balance who follows whom
        square += [row[::-1] for row in square]
    return [[labels[k] for k in square[r % len(square)]] for r in range(rounds)]


def time_in_rounds(contestants: Mapping[str, Callable[[], Any]], rounds: int, calls: int = 1,
                   pause: float = PAUSE_SECONDS) -> dict[str, list[float]]:  # fmt: skip
    """Each contestant's seconds per call, one entry per round: ``rounds`` rounds in
    :func:`round_orders`' orders, each contestant's turn ``calls`` calls (results blocked on) after
    ``pause`` idle seconds.

    Args:
      contestants: name -> a call with no arguments (a JAX result, or anything else, is waited for).
      rounds: how many rounds, >= 1.
      calls: calls per turn, >= 1; the turn's time is divided by it.
      pause: idle seconds before each turn, >= 0.

    Returns:
      name -> ``rounds`` times in seconds, in round order (for :func:`paired_speedups`).
    """
    if not isinstance(rounds, int) or rounds < 1 or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"time_in_rounds: rounds and calls must be ints >= 1, got {rounds!r}, {calls!r}")
    if pause < 0:
        raise ValueError(f"time_in_rounds: pause must be >= 0, got {pause!r}")
    seconds: dict[str, list[float]] = {name: [] for name in contestants}
    for order in round_orders(list(contestants), rounds):
        for name in order:
            time.sleep(pause)
            start = time.perf_counter()
            for _ in range(calls):
                jax.block_until_ready(contestants[name]())
            seconds[name].append((time.perf_counter() - start) / calls)
    return seconds


def paired_speedups(reference_seconds: Sequence[float], contestant_seconds: Sequence[float]) -> dict:
    """How much faster a contestant ran than a reference timed in the same rounds, round by round.

    Round ``r`` timed both, one shortly after the other, so ``reference_seconds[r] /
    contestant_seconds[r]`` sees the machine in one state; the ratio of the two medians can pair a
    fast spell of one with a slow spell of the other. A shared VM's speed drifts within a minute, so the
    spread of the per-round ratios is reported beside their median.

    Args:
      reference_seconds: the reference's time in each round, all > 0.
      contestant_seconds: the contestant's, the same number of rounds, all > 0.

    Returns:
      ``{"median", "q25", "q75", "min", "max"}`` of the per-round speed-ups (> 1: the contestant is
      faster); ``q25``-``q75`` is the middle half of the rounds (linear interpolation).

    Raises:
      ValueError: if the lengths differ, either is empty, or a time is not positive.

    Examples:
      >>> paired_speedups([2.0, 4.0, 3.0], [1.0, 1.0, 3.0])["median"]
      2.0
    """
    ref, con = np.asarray(reference_seconds, float), np.asarray(contestant_seconds, float)
    if ref.ndim != 1 or ref.shape != con.shape or ref.size == 0:
        raise ValueError(
            "paired_speedups: need the same number (>= 1) of rounds for both, "
            f"got {ref.shape} and {con.shape}"
        )
    if not (np.all(ref > 0) and np.all(con > 0)):
        raise ValueError("paired_speedups: every round's time must be > 0")
    ratios = ref / con
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75),
            "min": float(ratios.min()), "max": float(ratios.max())}  # fmt: skip
