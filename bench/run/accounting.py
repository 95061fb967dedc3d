"""Where a run's wall time went: the work being compared, and the harness around it.

The work is what the cells' rows measured (training, the extra timing epochs that pin a
cell's median down, the evaluations, building the models) and the frameworks' start-up
(starting the worker processes); the harness is the rest (data preparation, the matmul
probe, the report, messages and bookkeeping). Cells that ran side by
side (several Dask workers) measured more seconds than passed: their sums are divided by the
number of cells that were in flight on average, so the shares add up to the wall time and the
harness's share is never negative.
"""

from __future__ import annotations

import math

from bench.report.markdown import format_seconds
from bench.store.values import finite_numbers


def _total(rows, column: str) -> float:
    values = (row.get(column) for row in rows)
    return sum(v for v in values if isinstance(v, (int, float)) and math.isfinite(v))


def _extra_total(rows) -> float:
    """The seconds of the rows' extra timing epochs (`extra_epoch_s`, a list or its JSON)."""
    return sum(sum(finite_numbers(row.get("extra_epoch_s"))) for row in rows)


def in_parallel(busy_s: float, cells_wall_s: float) -> float:
    """The cells in flight on average while cells ran: their summed time in flight over the
    time the cells took, at least 1."""
    if cells_wall_s <= 0 or not math.isfinite(busy_s):
        return 1.0
    return max(1.0, busy_s / cells_wall_s)


def time_accounting(
    rows, wall_s: float, startup_s: float, *, parallel: float = 1.0, **phases
) -> dict:
    """The run's wall time in buckets that add up to it: training, extra timing epochs,
    evaluation, framework start-up and harness (with its parts `phases`, e.g. data_s,
    matmul_probe_s, report_s). `parallel`: the cells in flight on average (`in_parallel`);
    the cells' sums are divided by it."""
    train, build = _total(rows, "train_s"), _total(rows, "build_s")
    extra = _extra_total(rows)
    evaluate = _total(rows, "eval_s") + _total(rows, "predict_s")
    raw_work = train + extra + evaluate + build + startup_s
    scale = 1.0 / max(1.0, parallel)
    if raw_work * scale > wall_s > 0:  # a clock's rounding, or cells not counted as in flight
        scale = wall_s / raw_work
    training, timing, evaluation = train * scale, extra * scale, evaluate * scale
    startup = (startup_s + build) * scale
    in_cells = (_total(rows, "cell_s") - train - extra - evaluate - build) * scale
    work = training + timing + evaluation + startup
    return {
        "wall_s": wall_s,
        "training_s": training,
        "extra_timing_s": timing,
        "evaluation_s": evaluation,
        "framework_startup_s": startup,
        "harness_s": wall_s - work,
        "harness_in_cells_s": max(0.0, in_cells),  # loading the cell's arrays, messages
        **phases,
        "cells_in_parallel": parallel,
        "work_share": work / wall_s if wall_s > 0 else math.nan,
    }


def describe_accounting(acc: dict) -> str:
    def share(seconds):
        return f"{100 * seconds / acc['wall_s']:.0f}%" if acc["wall_s"] > 0 else "—"

    parallel = acc.get("cells_in_parallel", 1.0)
    connect = ""
    if acc.get("dask_connect_s"):
        connect = f", connecting to Dask {share(acc['dask_connect_s'])}"
    side = ""
    if parallel > 1.05:
        side = f"; {parallel:.1f} cells ran at a time on average: their seconds divided by that"
    return (
        f"time: {format_seconds(acc['wall_s'])} in all: training {share(acc['training_s'])}, "
        f"extra timing epochs {share(acc.get('extra_timing_s', 0.0))}, "
        f"evaluation {share(acc['evaluation_s'])}, framework start-up "
        f"{share(acc['framework_startup_s'])}, harness {share(acc['harness_s'])} (data "
        f"{share(acc.get('data_s', 0.0))}, matmul probe {share(acc.get('matmul_probe_s', 0.0))}, "
        f"report {share(acc.get('report_s', 0.0))}{connect}){side}"
    )
