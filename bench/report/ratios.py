"""Each backend's speed against the reference backend, per configuration, with its 95%
interval (bench.report.intervals); and which cells' times are known precisely enough that
the spread of their epochs alone does not make them unreliable.

The reference is numpy-vec wherever it ran (the plain vectorised NumPy network every other
backend is measured against); in a configuration without it, the first backend in the
project's order (bench.report.tables.BACKEND_ORDER).
"""

from __future__ import annotations

import pandas as pd

from bench.precision import is_precise
from bench.report.markdown import format_value, label, md_table
from bench.report.samples import CellTimes
from bench.report.tables import (
    GROUP_KEYS,
    REFERENCE_BACKEND,
    cell_key,
    ordered_backends,
    varying,
)


def precise_cells(rows: pd.DataFrame, times: CellTimes) -> set:
    """The cell_ids of the cells whose median time is known within bench.precision's
    PRECISION."""
    out = set()
    if rows.empty:
        return out
    for record in rows[[*GROUP_KEYS, "cell_id"]].to_dict("records"):
        if is_precise(times.samples(cell_key(record))):
            out.add(str(record["cell_id"]))
    return out


def _clear(record: dict, threshold: float) -> bool:
    """A comparison that its interval settles: a clear win or loss (beyond the threshold,
    the interval excluding 1), or an interval inside the threshold band on both sides (no
    practical difference, known to be none)."""
    if record["verdict"] in ("faster", "slower"):
        return True
    lo, hi = record["lo"], record["hi"]
    return bool(lo == lo and hi == hi and lo >= 1 / (1 + threshold) and hi <= 1 + threshold)


def settled_cells(rows: pd.DataFrame, ratios: pd.DataFrame, times: CellTimes, threshold) -> set:
    """The cell_ids whose timing leaves no comparison open: their median is precise, or every
    comparison they take part in (`speed_ratios`, against the reference) is settled by its
    interval. A noisy cell outside this set is what makes a run's timing unreliable."""
    out = precise_cells(rows, times)
    if rows.empty or ratios.empty:
        return out
    ids = {
        cell_key(record): str(record["cell_id"])
        for record in rows[[*GROUP_KEYS, "cell_id"]].to_dict("records")
    }
    seen, unsettled = set(), set()
    for record in ratios.to_dict("records"):
        pair = {cell_key(record), cell_key({**record, "backend": record["reference"]})}
        seen |= pair
        if not _clear(record, threshold):
            unsettled |= pair
    return out | {ids[key] for key in seen - unsettled if key in ids}


def open_comparisons(ratios: pd.DataFrame, threshold: float) -> list[str]:
    """The comparisons whose interval is too wide to say which is faster, in words:
    `keras against numpy-vec at batch 1 (0.95× [0.81, 1.12])`."""
    out = []
    for record in ratios.to_dict("records"):
        if _clear(record, threshold):
            continue
        where = f"at batch {format_value('batch_size', record['batch_size'])}"
        out.append(f"{record['backend']} against {record['reference']} {where} ({record['text']})")
    return out


def reference_of(backends) -> str | None:
    names = ordered_backends(backends)
    if not names:
        return None
    return REFERENCE_BACKEND if REFERENCE_BACKEND in names else names[0]


def speed_ratios(summary: pd.DataFrame, times: CellTimes, threshold: float) -> pd.DataFrame:
    """One row per configuration x backend (the reference left out): GROUP_KEYS,
    `reference`, `ratio` (the reference's time over the backend's: above 1 is faster),
    `lo`, `hi`, `n`, `method` and `verdict` ("faster", "slower", "~" or "too few samples")."""
    others = [k for k in GROUP_KEYS if k != "backend"]
    out = []
    timed = summary.dropna(subset=["epoch_s_median"])
    for group in _grouped(timed[list(GROUP_KEYS)].to_dict("records"), others):
        ref = reference_of(r["backend"] for r in group)
        ref_key = cell_key([r for r in group if r["backend"] == ref][0])
        for record in group:
            if record["backend"] == ref:
                continue
            iv = times.speedup(ref_key, cell_key(record))
            if not iv.known:
                verdict = "too few samples"
            elif iv.beyond(threshold):
                verdict = "faster" if iv.ratio > 1 else "slower"
            else:
                verdict = "~"
            out.append(
                {
                    **{k: record[k] for k in GROUP_KEYS},
                    "reference": ref,
                    "ratio": iv.ratio,
                    "lo": iv.lo,
                    "hi": iv.hi,
                    "n": iv.n,
                    "method": iv.method,
                    "verdict": verdict,
                    "text": iv.text(),
                }
            )
    columns = [*GROUP_KEYS, "reference", "ratio", "lo", "hi", "n", "method", "verdict", "text"]
    return pd.DataFrame(out, columns=columns)


def ratio_table(ratios: pd.DataFrame, threshold: float) -> str:
    """The speed against the reference (`speed_ratios`) as Markdown: a row per configuration,
    a column per backend, each cell `1.32× [1.28, 1.37]` and its verdict; "" with nothing to
    compare."""
    if ratios.empty:
        return ""
    keys = [k for k in ("dataset", *GROUP_KEYS) if k not in ("backend",)]
    keys = list(dict.fromkeys(k for k in keys if k in varying(ratios, keys) or k == "batch_size"))
    backends = ordered_backends(ratios["backend"])
    body = []
    for group in _grouped(ratios.to_dict("records"), [*keys, "reference"]):
        first = group[0]
        cells = [format_value(k, first[k]) for k in keys] + [str(first["reference"])]
        by_backend = {r["backend"]: r for r in group}
        for b in backends:
            r = by_backend.get(b)
            cells.append("" if r is None else f"{r['text']} {_mark(r['verdict'])}".strip())
        body.append(cells)
    header = ["batch" if k == "batch_size" else label(k) for k in keys] + ["against", *backends]
    note = (
        "**Speed against the reference.** "
        "How many times faster each backend trains an epoch than the reference backend of its "
        "configuration (numpy-vec where it ran), with a 95% interval. **faster** / "
        f"**slower**: the interval excludes 1 and the ratio is beyond {100 * threshold:.0f}%; "
        "~: no clear difference. See docs/compare.md for what the intervals mean."
    )
    return note + "\n\n" + md_table(header, body, n_left=len(keys) + 1)


def _grouped(records: list[dict], keys: list[str]) -> list[list[dict]]:
    """`records` in groups of equal `keys` (missing values alike), in order of appearance."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(cell_key(record, keys), []).append(record)
    return list(groups.values())


def _mark(verdict: str) -> str:
    return {"faster": "**faster**", "slower": "**slower**", "~": "~"}.get(verdict, "")
