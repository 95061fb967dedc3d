"""summary.md: a run's tables as Markdown for a person comparing backends.

`render_summary` is a pure function of the tables and env.json, built section by section:

    title         the run's name                                            (header.py)
    verdict       generated from the tables: who is fastest where, by how much,
                  where accuracies part, warm-up; a warning when the figures are
                  unreliable                                                (verdict.py)
    your backends each user's backend against every built-in one          (plugins.py)
    environment   machine, threads, versions, status, command(s)            (header.py)
    hosts         where the cells ran, on a Dask cluster                    (hosts.py)
    how to read   what a cell of the tables holds                           (here)
    results       one table per dataset x loss (and per combination of
                  other varying axes)                                       (here)
    warm-up, compute, memory, time to target, scaling: where the run has
                  the data                                                  (sections.py)
    failed cells  and the cells that did not run                            (sections.py)
    plots         links to the figures, when there are any                  (here)

Every section reads one view of the run (view.RunView), built once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.report.header import header_section
from bench.report.hosts import hosts_section
from bench.report.markdown import (
    config_label,
    format_seconds,
    format_speedup,
    format_value,
    label,
    md_table,
)
from bench.report.plugins import plugins_section
from bench.report.sections import (
    compute_section,
    failed_section,
    memory_section,
    scaling_section,
    target_section,
    threads_section,
    warmup_section,
)
from bench.report.tables import (
    CONFIG_KEYS,
    REFERENCE_BACKEND,
    CellIndex,
    beyond_noise,
    cell_key,
    is_missing,
    plain,
    repeats_per_cell,
    varying,
)
from bench.report.verdict import ACCURACY_SPLIT, accuracy_splits, verdict_section
from bench.report.view import RunView
from bench.store.schema import SETTINGS

ACCURACY_TIE = 0.001  # accuracies this close to the best are all marked best
NOISY_MARK = "†"  # after the time of a cell with a noisy repeat
MAX_SUBTABLES = 40  # configurations of one dataset x loss shown as sub-sections; past it, rows


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
    # the title, then the answer; the machine, versions and commands after it
    title, _, environment = header_section(view.rows, env, view.config_keys).partition("\n\n")
    sections = [
        title,
        verdict_section(view.rows, view.summary, env, curves),
        plugins_section(view.rows, env),  # users' own backends against the built-in ones
        environment,
        hosts_section(view.rows, env),  # runs on a Dask cluster (bench.cluster.executor)
        how_to_read(view),
        *results_sections(view),
        *(
            [
                warmup_section(view),
                compute_section(view),
                memory_section(view),
                target_section(view),
                scaling_section(view.ok),
                threads_section(view.ok),
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


def plots_section(plots: Sequence[str | Path], note: str = "") -> str:
    if not plots and not note:
        return ""
    lines = ["## Plots"]
    if note:
        lines += ["", note]
    if plots:
        lines += [""] + [f"- [{Path(p).name}]({Path(p).as_posix()})" for p in plots]
    return "\n".join(lines)
