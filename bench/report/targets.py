"""The speed targets of the hand-written backends from a pytest-benchmark run
(tests/benchmarks/test_bench_targets.py): each target's ratio, measured in alternating rounds
with its 10th-90th percentiles, beside the least ratio it asks for. Reported, never asserted."""

from __future__ import annotations

import math

import pandas as pd

from bench.report.markdown import md_table

TARGETS = {
    "products": "numpy-vec's products ÷ its epoch (its rate by the honest FLOP count over its "
    "products' own rate)",
    "torch": "numpy-vec ÷ torch speed",
    "yardstick": "numpy-loop ÷ the Jacobian yardstick speed, batch 1",
    "numpy-vec": "numpy-loop ÷ numpy-vec speed, batch 1",
}
COLUMNS = ["target", "model", "optimizer", "batch_size", "threads", "ratio", "p10", "p90", "goal"]


def targets_table(benchmarks) -> pd.DataFrame:
    """One row per target benchmark in `benchmarks` ((extra_info, stats) pairs), in the order
    of TARGETS, then batch size; a benchmark without its alternating ratio (run as a test) is
    left out."""
    rows = []
    for info, _ in benchmarks:
        if info.get("kind") != "target" or info.get("target") not in TARGETS:
            continue
        if not isinstance(info.get("ratio"), (int, float)):
            continue
        rows.append(
            [
                info["target"],
                info.get("model"),
                info.get("optimizer", "sgd"),
                int(info["batch_size"]),
                info.get("threads"),
                float(info["ratio"]),
                float(info.get("ratio_p10", math.nan)),
                float(info.get("ratio_p90", math.nan)),
                float(info.get("goal", math.nan)),
            ]
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = {name: i for i, name in enumerate(TARGETS)}
    return table.sort_values(
        ["target", "optimizer", "threads", "batch_size"],
        key=lambda c: c.map(order) if c.name == "target" else c,
        kind="stable",
    ).reset_index(drop=True)


def targets_section(table: pd.DataFrame) -> str:
    """The Targets section of a pytest-benchmark summary ("" without target benchmarks)."""
    if table.empty:
        return ""
    body = []
    for r in table.itertuples():
        met = "—" if math.isnan(r.goal) else ("met" if r.ratio >= r.goal else "not met")
        spread = "" if math.isnan(r.p10) else f" ({r.p10:.2f}–{r.p90:.2f})"
        body.append(
            [
                TARGETS[r.target],
                str(r.model),
                str(r.optimizer),
                str(r.batch_size),
                str(r.threads),
                f"{r.ratio:.2f}{spread}",
                f"≥ {r.goal:.2f}",
                met,
            ]
        )
    header = ["target", "model", "optimizer", "batch", "threads", "ratio (p10–p90)", "goal", ""]
    return "\n".join(
        [
            "## Targets",
            "",
            "Each ratio is measured in alternating rounds of its two sides, so both see the same "
            "machine state (`tests/benchmarks/test_bench_targets.py`); every ratio reads higher "
            "is better. The goal is reported, not asserted: a busy machine misses it, so read "
            "the spread before the verdict.",
            "",
            md_table(header, body, n_left=3),
        ]
    )
