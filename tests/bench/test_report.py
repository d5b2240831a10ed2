"""The bench table: which speed-up it prints where the rounds paired a contestant with its peer."""

import statistics

from jaxconv.bench import report
from jaxconv.timing import rounds


def _table_row(**speedups) -> dict:
    row = {"shape": "tiny", "impl": "auto NCHW", "runs": "banded", "forward_ms": 1.0,
           "forward_backward_ms": 3.0, "forward_backward_gflops": 1.0, "peak_fraction": 0.1,
           "speedup_vs_xla": 2.0}  # fmt: skip
    return row | speedups


def _table(row: dict) -> str:
    result = {"device": "cpu:0", "matmul_gflops": 100.0, "repeats": 3, "rows": [row]}
    return report.format_table(result).splitlines()[-1]


def test_table_prints_the_rounds_median_beside_their_middle_half():
    # the ratio of the medians (0.25) lies outside the rounds' middle half: the table shows the median
    # of the rounds, the centre of the interval it prints, and the JSON keeps both
    ref, con = [1.0, 1.0, 4.0], [0.5, 4.0, 4.0]
    spread = rounds.paired_speedups(ref, con)
    row = _table_row(
        speedup_vs_torch=statistics.median(ref) / statistics.median(con),
        speedup_vs_torch_round_median=spread["median"],
        speedup_vs_torch_q25=spread["q25"],
        speedup_vs_torch_q75=spread["q75"],
    )
    assert "1.00 (0.62-1.50)" in _table(row) and "0.25" not in _table(row)
    assert " 2.00 " in _table(row)  # vs xla: the ratio of the medians


def test_table_prints_the_medians_ratio_where_no_rounds_paired_it():
    line = _table(_table_row(speedup_vs_torch=0.5))  # e.g. a row loaded from an older bench.json
    assert " 0.50 " in line and "(" not in line
    assert "(" not in _table(_table_row(speedup_vs_torch=None))
