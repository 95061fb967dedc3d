"""summary.md: a run's tables as Markdown for a person comparing backends.

`render_summary` is a pure function of the tables and env.json, built section by section:

    header        name, machine, threads, versions, status, command(s)
    verdict       generated from the tables (verdict.py): who is fastest where, by how much,
                  where accuracies part, warm-up; a warning when the figures are unreliable
    how to read   what a cell of the tables holds
    results       one table per dataset x loss (and per combination of other varying axes)
    warm-up, compute, memory, time to target, scaling   where the run has the data
    failed cells  and the cells that did not run
    plots         links to the figures, when there are any
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.report import scaling
from bench.report.header import header_section, not_run_sentence, peaks_text
from bench.report.hosts import hosts_section
from bench.report.markdown import (
    config_label,
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
    CONFIG_KEYS,
    MEMORY_COLUMNS,
    REFERENCE_BACKEND,
    CellIndex,
    beyond_noise,
    cell_key,
    conform,
    distinct,
    is_missing,
    latest,
    ordered_backends,
    plain,
    repeats_per_cell,
    sort_by_keys,
    summarize,
    varying,
    varying_within,
)
from bench.report.verdict import ACCURACY_SPLIT, accuracy_splits, verdict_section
from bench.store.schema import SETTINGS

ACCURACY_TIE = 0.001  # accuracies this close to the best are all marked best
NOISY_MARK = "†"  # after the time of a cell with a noisy repeat
MAX_SUBTABLES = 40  # configurations of one dataset x loss shown as sub-sections; past it, rows


@dataclass
class RunView:
    """What every section reads: the latest rows, the ok ones, their summary, env.json."""

    rows: pd.DataFrame
    ok: pd.DataFrame
    summary: pd.DataFrame
    env: dict
    config_keys: list  # axes that split a dataset x loss section into sub-tables
    label_keys: list  # axes that name a row of the cross-section tables (warm-up etc.)
    pytest_benchmark: bool
    index: CellIndex

    @classmethod
    def of(cls, results: pd.DataFrame, env: dict) -> RunView:
        rows = conform(latest(results), ("noisy", "session", "epoch_s_spread"))
        config_keys = varying_within(rows, CONFIG_KEYS)
        summary = summarize(rows)
        if env.get("source") == "pytest-benchmark":  # no accuracy measured: no column for it
            summary["_no_accuracy"] = True
        return cls(
            rows=rows,
            ok=rows[rows["status"] == "ok"],
            summary=summary,
            index=CellIndex(summary, rows),
            env=env,
            config_keys=config_keys,
            label_keys=varying(rows, ("dataset", "loss")) + config_keys,
            pytest_benchmark=env.get("source") == "pytest-benchmark",
        )


def render_summary(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    env: dict,
    *,
    plots: Sequence[str | Path] = (),
    plots_note: str = "",
) -> str:
    """The run as Markdown: the sections listed in this module's docstring, in that order.

    `plots` are image paths relative to the summary's folder, listed at the end, after
    `plots_note` (e.g. that figures were aggregated, or not drawn yet).
    """
    view = RunView.of(results, env)
    sections = [
        header_section(view.rows, env, view.config_keys),
        hosts_section(view.rows, env),  # runs on a Dask cluster (bench.cluster.executor)
        verdict_section(view.rows, view.summary, env),
        how_to_read(view),
        *results_sections(view),
        *(
            [
                warmup_section(view),
                compute_section(view),
                memory_section(view),
                target_section(view),
                scaling_section(view.ok),
            ]
            if not view.ok.empty
            else []
        ),
        failed_section(view),
        plots_section(plots, plots_note),
    ]
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


# --------------------------------------------------------------------------- how to read


def how_to_read(view: RunView) -> str:
    if view.pytest_benchmark:
        return (
            "**How to read this.** Measured by pytest-benchmark; no accuracy is measured. A "
            "cell is `time per epoch · ×`: the median round of one training epoch over the "
            "model's samples (the untimed first call is in Warm-up); × speed relative to "
            f"{REFERENCE_BACKEND} (>1 is faster, ≈ when within the rounds' spread). **Bold**: "
            "the fastest time, when ahead of the next beyond both cells' interquartile range "
            "of rounds. — means no result."
        )
    n = repeats_per_cell(view.rows)
    repeats = (
        "0"
        if not len(n)
        else (f"{int(n.min())}" if n.min() == n.max() else f"{int(n.min())}–{int(n.max())}")
    )
    text = (
        "**How to read this.** A cell is `test accuracy · time per epoch (±spread) · ×`: "
        "accuracy after the last epoch (mean over repeats); steady-state training time per "
        "epoch (median of epochs 2..E; the first epoch is in Warm-up); ± half the min–max over "
        f"repeats ({repeats} per cell); × speed relative to {REFERENCE_BACKEND} (>1 is faster, "
        "≈ when within the noise). **Bold**: the fastest time, when ahead of the next beyond "
        f"both cells' noise, and the best accuracy (ties within {ACCURACY_TIE} all bold)."
    )
    if view.ok["noisy"].astype("boolean").fillna(False).any():
        text += f" {NOISY_MARK}: a noisy cell (its epoch times varied widely)."
    if not accuracy_splits(view.rows).empty:
        text += (
            f" Accuracies further apart than {ACCURACY_SPLIT} in one cell are explained in the "
            "Verdict."
        )
    return text + " — means no result."


# --------------------------------------------------------------------------- results


def results_sections(view: RunView) -> list[str]:
    """One `## dataset · loss` section per dataset x loss, sub-tables per configuration (one
    table with the configuration in its first columns when there are more than
    MAX_SUBTABLES)."""
    rows = view.rows
    if rows.empty:
        return ["No cell has finished yet: the results table is empty."]
    keys = view.config_keys
    layout: dict[tuple, dict[tuple, list[dict]]] = {}
    for cell in view.index.ordered_cells(rows, ["dataset", "loss", *keys, "backend"]):
        section = layout.setdefault(cell_key(cell, ("dataset", "loss")), {})
        section.setdefault(cell_key(cell, keys), []).append(cell)
    headings = _section_headings(view)
    out = []
    for (dataset, loss), configs in layout.items():
        lines = [f"## {headings[(dataset, loss)]}"]
        if len(configs) > MAX_SUBTABLES:
            lines += ["", f"{len(configs)} configurations, one row each:", ""]
            lines.append(
                _results_table([c for cells in configs.values() for c in cells], view.index, keys)
            )
        else:
            for config, cells in configs.items():
                if keys:
                    lines += ["", f"### {config_label(dict(zip(keys, config)), keys)}"]
                lines += ["", _results_table(cells, view.index, ())]
        out.append("\n".join(lines))
    return out


def _section_headings(view: RunView) -> dict[tuple, str]:
    """`digits · loss cce (lr 0.1)`: settings that differ between sections only (e.g. a
    learning rate per loss) are named in the heading."""
    rows = view.rows
    by_section = [
        c
        for c in varying(rows, (*CONFIG_KEYS, *SETTINGS[1:]))
        if c not in view.config_keys and c != "part"
    ]
    groups = rows.groupby(["dataset", "loss"], dropna=False, sort=False)
    counts = groups[by_section].nunique(dropna=False) if by_section else None
    firsts = groups[by_section].first() if by_section else None
    out = {}
    for key in groups.groups:
        dataset, loss = (plain(k) for k in key)
        heading = f"{format_value('dataset', dataset)} · loss {format_value('loss', loss)}"
        extras = [
            f"{label(c)} {format_value(c, firsts.loc[key, c])}"
            for c in by_section
            if counts.loc[key, c] == 1
        ]
        out[(dataset, loss)] = heading + (f" ({', '.join(extras)})" if extras else "")
    return out


def _marks(records: list[dict]) -> tuple[set, set]:
    """(fastest, most accurate) backends among summary records of one batch-size column;
    fastest only when ahead of the next backend beyond both cells' noise."""
    fastest, best = set(), set()
    times = sorted(
        (r for r in records if not is_missing(r["epoch_s_median"])),
        key=lambda r: r["epoch_s_median"],
    )
    if len(times) > 1 and beyond_noise(times[0], times[1]):
        fastest = {times[0]["backend"]}
    accs = [r for r in records if not is_missing(r["test_acc_mean"])]
    if len(accs) > 1:
        top = max(r["test_acc_mean"] for r in accs)
        tied = {r["backend"] for r in accs if r["test_acc_mean"] >= top - ACCURACY_TIE - 1e-12}
        if len(tied) < len(accs):  # all tied: a mark on every row would say nothing
            best = tied
    return fastest, best


def _results_table(cells: list[dict], index: CellIndex, config_keys: Sequence[str]) -> str:
    """Rows: (configuration x) backend; columns: batch sizes; cells from the summary."""
    sizes = sorted({plain(c["batch_size"]) for c in cells} - {None})
    if any(plain(c["batch_size"]) is None for c in cells):
        sizes.append(None)
    columns: dict[tuple, list[dict]] = {}  # (configuration, batch size) -> summary records
    rows: dict[tuple, dict] = {}  # (configuration, backend) -> {batch size: cell key}
    for c in cells:
        config, key = cell_key(c, config_keys), cell_key(c)
        rows.setdefault((config, c["backend"]), {})[plain(c["batch_size"])] = key
        if key in index.summary:
            columns.setdefault((config, plain(c["batch_size"])), []).append(index.summary[key])
    marks = {k: _marks(v) for k, v in columns.items()}
    table = []
    for (config, backend), by_size in rows.items():
        line = [format_value(k, v) for k, v in zip(config_keys, config)] + [str(backend)]
        for bs in sizes:
            key = by_size.get(bs)
            fastest, best = marks.get((config, bs), (set(), set()))
            line.append(
                "—"
                if key is None
                else _result_cell(
                    index.statuses.get(key, []),
                    index.summary.get(key),
                    backend in fastest,
                    backend in best,
                )
            )
        table.append(line)
    header = [label(k) for k in config_keys] + ["backend"]
    header += [f"batch {format_value('batch_size', bs)}" for bs in sizes]
    return md_table(header, table, n_left=len(config_keys) + 1)


def _result_cell(statuses: list, s, fastest: bool, best: bool) -> str:
    if s is None:
        if not statuses:
            return "—"
        return "*" + "/".join(dict.fromkeys(str(x) for x in statuses)) + "*"
    n = int(s["n"])
    acc = "—"
    if not is_missing(s["test_acc_mean"]):
        acc = f"{s['test_acc_mean']:.3f}"
        acc = f"**{acc}**" if best else acc
        if n > 1 and not is_missing(s["test_acc_max"]):
            acc += f" ±{(s['test_acc_max'] - s['test_acc_min']) / 2:.3f}"
    parts = [acc] if not (acc == "—" and s.get("_no_accuracy")) else []
    if not is_missing(s["epoch_s_median"]):
        t = format_seconds(s["epoch_s_median"])
        t = f"**{t}**" if fastest else t
        if n > 1 and s["epoch_s_median"] > 0:
            spread = (s["epoch_s_max"] - s["epoch_s_min"]) / 2 / s["epoch_s_median"]
            t += f" (±{spread * 100:.0f}%)"
        if bool(s["noisy"]):
            t += NOISY_MARK
        parts.append(t)
    if not is_missing(s["speedup_vs_numpy_vec"]):
        parts.append(speedup_text(s))
    text = " · ".join(parts)
    if len(statuses) > n:
        text += f" ({n}/{len(statuses)} ok)"
    return text


def speedup_text(s) -> str:
    """× against the reference; `≈` in front when the two cells' noise bands overlap."""
    text = format_speedup(s["speedup_vs_numpy_vec"])
    if s["backend"] == REFERENCE_BACKEND:
        return text
    lo, hi = s["speedup_lo"], s["speedup_hi"]
    if not is_missing(lo) and not is_missing(hi) and lo <= 1 <= hi:
        return "≈" + text
    return text


# --------------------------------------------------------------------------- other tables


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
        "Training work per second, counting 6 × weights × samples per epoch (the forward and "
        "backward matrix products)"
    )
    if has_roofline:
        text += ", and its share of the machine's measured matmul peak for the same dtype and "
        text += f"threads ({peaks})" if peaks else "threads"
        if peaks.startswith("session"):
            text += "; each row is divided by the peak of the session (start or resume) it ran in"
    return "\n".join(["## Compute", "", text + ".", "", _keyed_table(view, cell)])


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


def plots_section(plots: Sequence[str | Path], note: str = "") -> str:
    if not plots and not note:
        return ""
    lines = ["## Plots"]
    if note:
        lines += ["", note]
    if plots:
        lines += [""] + [f"- [{Path(p).name}]({Path(p).as_posix()})" for p in plots]
    return "\n".join(lines)
