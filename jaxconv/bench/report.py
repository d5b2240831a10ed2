"""``jaxconv bench``'s results as a terminal table (:func:`format_table`) and as ``bench.json``,
``bench.csv`` and a bar chart, ``bench.png`` (:func:`write`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def _options_text(options: dict[str, str] | None) -> str:
    """How the JAX contestants were compiled, for the table's header (``None``: not recorded)."""
    if options is None:
        return "unrecorded options"
    if not options:
        return "XLA's default options"
    return "jaxconv's XLA options (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"


def _with_rounds(row: dict, key: str) -> str:
    """``"0.76 (0.70-0.80)"``: the median of a speed-up's per-round values and their middle half, where
    the rounds paired it; otherwise the ratio of the medians, ``"0.76"``.

    The ratio of the medians can fall outside the middle half of the rounds (LeNet's conv1 against
    PyTorch: 2.71 beside 3.33-5.25, PyTorch's times skewed by what ran before it), so the number
    printed before an interval is the per-round median, the interval's own centre.
    """
    value, center = row.get(key), row.get(f"{key}_round_median")
    low, high = row.get(f"{key}_q25"), row.get(f"{key}_q75")
    if center is not None and low is not None and high is not None:
        return f"{center:.2f} ({low:.2f}-{high:.2f})"
    return "" if value is None else f"{value:.2f}"


def format_table(result: dict) -> str:
    """A plain-text table: one line per shape x implementation."""
    runs = max([18, *(len(r["runs"]) for r in result["rows"])])  # a tuned pick names the rule's beside it
    head = (
        f"{'shape':<22} {'impl':<15} {'runs':<{runs}} {'fwd ms':>8} {'fwd+bwd ms':>11} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'vs xla':>7} {'vs torch (rounds)':>17} {'vs torch NHWC':>17} {'compile s':>9} "
        f"{'rel err':>8} "
        f"{'bf16 err':>8}"
    )
    lines = [
        f"device {result['device']}, matmul {result['matmul_gflops']:.0f} GFLOP/s (its best), median of "
        f"{result['repeats']}, forward+backward = output and grads wrt input and weight, glibc malloc "
        f"{'tuned' if result.get('glibc_malloc_tuned') else 'as it came'} (jaxconv.host_memory), "
        f"JAX contestants compiled with {_options_text(result.get('compiler_options'))}; "
        f"vs xla: the ratio of the medians; vs torch: the per-round ratios' median (their middle half)",
        head,
    ]

    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    for r in result["rows"]:
        lines.append(
            f"{r['shape']:<22} {r['impl']:<15} {r['runs']:<{runs}} {r['forward_ms']:>8.1f} "
            f"{r['forward_backward_ms']:>11.1f} {r['forward_backward_gflops']:>8.1f} "
            f"{100 * r['peak_fraction']:>6.1f}% {num(r['speedup_vs_xla'], '.2f'):>7} "
            f"{_with_rounds(r, 'speedup_vs_torch'):>17} {_with_rounds(r, 'speedup_vs_torch_nhwc'):>17} "
            f"{num(r.get('compile_s'), '.2f'):>9} "
            f"{num(r.get('max_rel_err_f32'), '.0e'):>8} {num(r.get('max_rel_err_bf16'), '.0e'):>8}"
        )
    lines += [f"{r['shape']:<22} {r['impl']:<15} skipped: {r['reason']}" for r in result.get("skipped", [])]
    lines += [
        f"{'every layer':<22} {r['impl']:<15} not timed: {r['reason']}" for r in result.get("not_timed", ())
    ]
    return "\n".join(lines)


def write(result: dict, out: str | Path) -> list[Path]:
    """Writes ``bench.json``, ``bench.csv`` and ``bench.png`` (fwd+bwd ms per shape) under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.csv", out / "bench.png"]
    paths[0].write_text(json.dumps(result, indent=2))
    first = ["shape", "impl", "runs", "layer"]
    fields = first + sorted({k for r in result["rows"] for k in r} - set(first))
    with paths[1].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result["rows"])
    skipped = result.get("skipped", [])
    shapes = list(dict.fromkeys([r["shape"] for r in result["rows"]] + [r["shape"] for r in skipped]))
    labels = list(dict.fromkeys(r["impl"] for r in result["rows"]))
    columns = min(3, len(shapes))
    grid_rows = -(-len(shapes) // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(4.2 * columns, 3.0 * grid_rows), squeeze=False)
    colours = {"auto": "tab:orange", "torch": "tab:gray", "manual": "tab:red"}
    for ax, shape in zip(axes.flat, shapes, strict=False):
        rows = {r["impl"]: r for r in result["rows"] if r["shape"] == shape}
        left_out = [r["impl"] for r in skipped if r["shape"] == shape]
        if left_out:  # a missing bar must not read as a contestant that was never entered
            note = "skipped (memory): " + ", ".join(left_out)
            ax.text(
                0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="tab:red"
            )
        if not rows:
            ax.set_title(f"{shape}: nothing fitted in memory", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        present = [label for label in labels if label in rows]
        times = [rows[label]["forward_backward_ms"] for label in present]
        bars = ax.barh(present, times, color=[colours.get(label.split()[0], "tab:blue") for label in present])
        ax.bar_label(
            bars, labels=[f"{t:,.0f}" if t >= 100 else f"{t:.1f}" for t in times], fontsize=6, padding=2
        )
        ax.set_xscale("log")  # the book's manual impl is far slower on wide layers; keep the rest readable
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # the bars carry their values
        ax.margins(x=0.25)
        ax.invert_yaxis()
        ax.set_title(f"{shape}: {rows[present[0]]['layer']}", fontsize=8)
        ax.set_xlabel("forward+backward ms, log scale (lower is faster)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shapes) :]:
        ax.axis("off")
    fig.suptitle(f"jaxconv bench on {result['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    return paths
