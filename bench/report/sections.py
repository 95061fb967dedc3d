"""summary.md's tables after the results: warm-up, compute, memory, time to target,
scaling, and the cells that failed. Each is a function of the run's view (RunView) and is
left out ("") where the run has no data for it."""

from __future__ import annotations

import pandas as pd

from bench.report import scaling
from bench.report.header import not_run_sentence, peaks_text
from bench.report.markdown import (
    format_mb,
    format_seconds,
    format_speedup,
    format_value,
    label,
    md_table,
    one_line,
    plural,
)
from bench.report.tables import (
    MEMORY_COLUMNS,
    cell_key,
    distinct,
    is_missing,
    ordered_backends,
    plain,
    sort_by_keys,
)
from bench.report.view import RunView


def _keyed_table(view: RunView, cell, keep=None) -> str:
    """Rows: each configuration (the varying keys) x backend; columns: batch sizes; each
    cell `cell(summary record)`. With `keep`, only the summary records it is true for are
    shown: rows and columns left without any are left out."""
    keys = view.label_keys
    cells = view.index.ordered_cells(view.ok, [*keys, "backend"])
    sizes = distinct(view.ok["batch_size"])
    rows: dict[tuple, dict] = {}
    for c in cells:
        if keep is not None:
            s = view.index.summary.get(cell_key(c))
            if s is None or not keep(s):
                continue
        rows.setdefault((cell_key(c, keys), c["backend"]), {})[plain(c["batch_size"])] = cell_key(c)
    if keep is not None:
        shown = {bs for by_size in rows.values() for bs in by_size}
        sizes = [bs for bs in sizes if plain(bs) in shown]
    table = []
    for (config, backend), by_size in rows.items():
        line = [format_value(k, v) for k, v in zip(keys, config)] + [str(backend)]
        for bs in sizes:
            s = view.index.summary.get(by_size.get(plain(bs)))
            line.append("—" if s is None else cell(s))
        table.append(line)
    header = [label(k) for k in keys] + ["backend"]
    header += [f"batch {format_value('batch_size', bs)}" for bs in sizes]
    return md_table(header, table, n_left=len(keys) + 1)


def warmup_section(view: RunView) -> str:
    def cell(s):
        first_s, steady = s["first_epoch_s_median"], s["epoch_s_median"]
        if is_missing(first_s):
            return "—"
        if is_missing(steady) or steady <= 0:
            return format_seconds(first_s)
        return f"{format_seconds(first_s)} · {format_speedup(first_s / steady)}"

    return "\n".join(
        [
            "## Warm-up",
            "",
            "First epoch (median over repeats) and how many steady-state epochs it is worth: "
            "frameworks pay for tracing, compilation and lazy set-up in epoch 1, so the ratio "
            "shows what a short run costs beyond the time per epoch above.",
            "",
            _keyed_table(view, cell),
        ]
    )


# A share of the matmul peak above this says the probe misread the machine (the count is of
# products a step must compute, so a step at the matmul rate reads 100%); 10% allowed for the
# probe's own spread and for shapes that run a little faster than its n x n products.
ROOFLINE_PLAUSIBLE = 1.10


def compute_section(view: RunView) -> str:
    ok = view.ok
    has_roofline = ok["roofline"].notna().any()
    if not (has_roofline or ok["gflops"].notna().any()):
        return ""

    def cell(s):
        if is_missing(s["gflops_median"]):
            return "—"
        text = f"{s['gflops_median']:.3g} GFLOP/s"
        if not is_missing(s["roofline_median"]):
            share = s["roofline_median"] * 100
            text += f" · {share:.2g}%" if share < 100 else f" · {share:.0f}%"
        return text

    peaks = peaks_text(view.env)
    text = (
        "Training work per second, counting the products a training step computes "
        "(`flops_per_sample`: per layer 2 × weights for the forward pass and 2 × weights for "
        "the weight gradient, and 2 × weights for the input gradient of every layer but the "
        "first)"
    )
    if has_roofline:
        text += ", and its share of the machine's measured matmul peak for the same dtype and "
        text += f"threads ({peaks})" if peaks else "threads"
        if peaks.startswith("session"):
            text += "; each row is divided by the peak of the session (start or resume) it ran in"
    text += "."
    above = ok["roofline"].dropna()
    above = above[above > ROOFLINE_PLAUSIBLE]
    if len(above):
        text += (
            f" **{len(above)} of {ok['roofline'].notna().sum()} cells read above "
            f"{100 * ROOFLINE_PLAUSIBLE:.0f}% of the peak (up to {100 * above.max():.0f}%)**: "
            "no training step outruns the products it computes, so the probe, taken at the "
            "start of the session, read a slower machine than these cells ran on. Their "
            "shares are not shares of this machine's peak; the times and ratios are measured "
            "as ever."
        )
    return "\n".join(["## Compute", "", text, "", _keyed_table(view, cell)])


# The Memory table has the layout of the Warm-up and Compute tables (a row per varying keys x
# backend, the device among the keys where it varies; a column per batch size) rather than one
# figure per row at one batch size: device memory grows with the batch (activations are
# batch x width) and so does host memory on the CPU at large batches, and the same columns
# let a reader set each cell's memory beside its time in the tables above.
def memory_section(view: RunView) -> str:
    """Peak host and device memory per cell (medians over repeats); figures that no cell has
    (device memory in a run without a GPU) are left out, and the whole table in a run folder
    from before memory was recorded."""
    figures = [c for c in MEMORY_COLUMNS if view.summary[f"{c}_median"].notna().any()]
    if not figures:
        return ""
    medians = [f"{c}_median" for c in figures]

    def cell(s):
        return " · ".join(format_mb(s[m]) for m in medians)

    def keep(s):
        return any(not is_missing(s[m]) for m in medians)

    meaning = {
        "peak_host_mb": "**Host**: the peak resident set of the cell's worker process during "
        "the cell; everything resident in it counts (the framework and its libraries, the "
        "data), so it is what running that backend costs in RAM.",
        "peak_device_mb": "**Device**: the most GPU memory the backend's allocator held "
        "during the cell, in use or cached for reuse: torch's caching allocator at its peak "
        "(reserved), CuPy's memory pool at its largest; — where not measured: cells on the "
        "CPU, and JAX, which keeps no peak per cell.",
    }
    text = "Peak memory of each cell, median over repeats, in MB (2²⁰ bytes)"
    text += ", a cell `host · device`. " if len(figures) > 1 else ". "
    text += " ".join(meaning[c] for c in figures)
    return "\n".join(["## Memory", "", text, "", _keyed_table(view, cell, keep)])


def target_section(view: RunView) -> str:
    ok = view.ok
    if not ok["time_to_target_s"].notna().any():
        return ""

    def cell(s):
        reached, n = int(s["target_reached"]), int(s["n"])
        if reached == 0:
            return "not reached"
        text = format_seconds(s["time_to_target_s_median"])
        return text if reached == n else f"{text} ({reached}/{n} reached)"

    targets = ok["target_acc"].dropna().unique()
    which = f"test accuracy {targets[0]:g}" if len(targets) == 1 else "each cell's target accuracy"
    return "\n".join(
        [
            "## Time to target",
            "",
            f"Training time until the first epoch at {which} (median over the repeats that got "
            "there; evaluation excluded).",
            "",
            _keyed_table(view, cell),
        ]
    )


def scaling_section(ok: pd.DataFrame) -> str:
    slopes = scaling.fit_slopes(ok)
    if slopes.empty:
        return ""
    studies = slopes[["part", "axis", "x_min", "x_max"]].drop_duplicates(["part", "axis"])
    header = ["backend"] + [
        f"{scaling.AXES[r.axis]} {r.x_min:g}–{r.x_max:g} ({r.part})" for r in studies.itertuples()
    ]
    table = []
    for backend in ordered_backends(slopes["backend"]):
        cells = [backend]
        for study in studies.itertuples():
            hit = slopes[(slopes["backend"] == backend) & (slopes["part"] == study.part)]
            if hit.empty:
                cells.append("—")
            else:
                r = hit.iloc[0]
                cells.append(f"{r.slope:+.2f} (r² {r.r2:.2f}, {r.points} pts)")
        table.append(cells)
    return "\n".join(
        [
            "## Scaling",
            "",
            "Slope of log(s/epoch) against log(the axis), fitted by least squares over the "
            "cells of each part. Against training samples or hidden width, +1 is proportional "
            "growth. Against batch size (the same samples per epoch cut into fewer, larger "
            "steps), −1 means each step costs the same whatever its size (per-call overhead "
            "dominates) and 0 means the epoch costs the same however it is cut (the arithmetic "
            "dominates).",
            "",
            md_table(header, table),
        ]
    )


def _setting(fits: pd.DataFrame, r) -> str:
    """The cells of one Amdahl fit: dataset, batch and hidden layers, then every other axis
    whose value differs between the fits."""
    shown = ["dataset", "batch_size", "hidden"]
    varying = [
        k
        for k in scaling.THREAD_KEYS
        if k not in ("part", "backend", *shown) and fits[k].nunique() > 1
    ]
    values = [str(r.dataset), f"batch {r.batch_size}", str(r.hidden)]
    return " · ".join(values + [f"{label(k)} {getattr(r, k)}" for k in varying])


def threads_section(ok: pd.DataFrame) -> str:
    """Amdahl's law fitted per backend and setting where the same cells ran at several thread
    counts (scaling.fit_amdahl): the serial fraction that the threads do not shorten."""
    fits = scaling.fit_amdahl(ok)
    if fits.empty:
        return ""
    table = []
    for backend in ordered_backends(fits["backend"]):
        for r in fits[fits["backend"] == backend].itertuples():
            fit = f"{r.serial_fraction:.2f}" + ("" if is_missing(r.r2) else f" (r² {r.r2:.2f})")
            speedup = "—" if is_missing(r.speedup) else f"{r.speedup:.2f}×"
            t1 = format_seconds(r.t1_s)
            table.append([backend, _setting(fits, r), r.threads, t1, speedup, fit])
    header = ["backend", "cells", "threads", "fitted 1-thread epoch", "speed-up", "serial"]
    return "\n".join(
        [
            "## Threads",
            "",
            "Amdahl's law, T(n) = T1 (s + (1 − s)/n), fitted by least squares to the median "
            "epoch time at each thread count: s is the serial fraction, the share of the "
            "1-thread epoch that more threads do not shorten (0 scales perfectly; the speed-up "
            "is measured, from the fewest threads to the most). An s below 0 or above 1 says "
            "the times did not follow the law: noise, or a machine busy with other work.",
            "",
            md_table(header, table, n_left=2),
        ]
    )


def failed_section(view: RunView) -> str:
    rows = view.rows
    failed = rows[rows["status"] != "ok"]
    not_run = not_run_sentence(view.rows, view.env)
    if failed.empty:
        if rows.empty:
            return "## Failed cells\n\nNone (no cell has finished yet)." + not_run
        if not_run:
            return (
                f"## Failed cells\n\nNone: the {plural(len(rows), 'cell')} that ran "
                f"finished ok.{not_run}"
            )
        return f"## Failed cells\n\nAll {len(rows)} cells finished ok (cells × repeats)."
    keys = [k for k in view.label_keys if k != "batch_size"]
    failed = sort_by_keys(failed, [*keys, "backend", "batch_size", "repeat"], rows)
    table = []
    for _, r in failed.iterrows():
        message = r.get("error")
        if is_missing(message) or not str(message).strip():
            if r["status"] == "diverged" and not is_missing(r.get("diverged_epoch")):
                message = f"diverged at epoch {int(r['diverged_epoch'])}"
            else:
                message = ""
        table.append(
            [format_value(k, r[k]) for k in keys]
            + [
                str(r["backend"]),
                format_value("batch_size", r["batch_size"]),
                format_value("repeat", r["repeat"]),
                str(r["status"]),
                one_line(message),
            ]
        )
    header = [label(k) for k in keys] + ["backend", "batch", "repeat", "status", "error"]
    return "\n".join(
        [
            "## Failed cells",
            "",
            f"{len(failed)} of {len(rows)} cells (cells × repeats) did not finish ok; tracebacks "
            f"are in logs/.{not_run}",
            "",
            md_table(header, table, n_left=len(header)),
        ]
    )
