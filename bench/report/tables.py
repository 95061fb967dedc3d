"""A run's tables as pandas DataFrames: selecting rows and summarising them.

Nothing here reads files (bench.report.loading does), formats or draws: markdown.py turns
values into text, summary.py writes summary.md and bench.report.plots the figures, all from
what this module returns.

    results, curves = load_run("results/2025-01-05-digits")  # bench.report.loading
    summary = summarize(results)  # one row per cell, repeats folded in
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from bench.store.schema import (
    AXES,
    KEY_COLUMNS,
    RESULT_COLUMNS,
)

# The backend every other one is compared with, and the order backends are listed in.
REFERENCE_BACKEND = "numpy-vec"
BACKEND_ORDER = (
    "numpy-loop",
    "numpy-vec",
    "cupy",
    "keras",
    "torch",
    "jax",
    "keras-jax",
    "keras-torch",
    "sklearn",
)

# The keys of one summary row: every axis of a sweep and the sweep part, not the repeat.
GROUP_KEYS = ("part", *AXES)
# Axes that get their own sub-section when they vary: everything but dataset, loss (the
# section), backend (the rows) and batch size (the columns). The device among them, as an axis:
# a backend on two devices (torch on the CPU and on a GPU) is two rows that must not share one.
CONFIG_KEYS = tuple(k for k in GROUP_KEYS if k not in ("dataset", "loss", "backend", "batch_size"))
# The peak-memory columns of results.csv and what each measures, in the words of summary.md.
MEMORY_COLUMNS = {"peak_host_mb": "host", "peak_device_mb": "device"}

SUMMARY_COLUMNS = (
    "n",
    "test_acc_mean",
    "test_acc_median",
    "test_acc_min",
    "test_acc_max",
    "epoch_s_median",
    "epoch_s_min",
    "epoch_s_max",
    "epoch_s_lo",
    "epoch_s_hi",
    "noisy",
    "first_epoch_s_median",
    "samples_per_s_median",
    "gflops_median",
    "roofline_median",
    "time_to_target_s_median",
    "target_reached",
    "peak_host_mb_median",
    "peak_device_mb_median",
    "speedup_vs_numpy_vec",
    "speedup_lo",
    "speedup_hi",
)


def is_missing(value) -> bool:
    """True for None, NaN, pd.NA and NaT; False for anything else, lists included."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- selecting


def conform(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`frame` with every column of `columns` present (missing ones all-NaN)."""
    frame = frame.copy()
    for c in columns:
        if c not in frame.columns:
            frame[c] = np.nan
    return frame


def latest(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x repeat: the last one written (a resumed run may retry a failure)."""
    results = conform(results, RESULT_COLUMNS)
    keyed = results[list(KEY_COLUMNS)].notna().all(axis=1)
    if not keyed.any():
        return results
    superseded = np.zeros(len(results), dtype=bool)
    superseded[keyed.to_numpy()] = (
        results[keyed].duplicated(list(KEY_COLUMNS), keep="last").to_numpy()
    )
    return results[~superseded]


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The latest rows of cells that finished ok."""
    rows = latest(results)
    return rows[rows["status"] == "ok"]


def varying(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns of `columns` that take more than one value (missing counts as one)."""
    return [c for c in columns if c in frame.columns and frame[c].nunique(dropna=False) > 1]


def varying_within(
    frame: pd.DataFrame, columns: Iterable[str], by: Sequence[str] = ("dataset", "loss")
) -> list[str]:
    """The columns that vary inside some group of `by`: a column that only changes with the
    dataset or the loss (as a per-loss learning rate does) splits nothing further."""
    columns = varying(frame, columns)
    if frame.empty or not columns:
        return columns
    groups = frame.groupby(list(by), dropna=False, sort=False)
    return [c for c in columns if (groups[c].nunique(dropna=False) > 1).any()]


def ordered_backends(names: Iterable) -> list[str]:
    """Backends in the project's order (BACKEND_ORDER), then any others by name."""
    names = {str(n) for n in names if not is_missing(n)}
    known = [b for b in BACKEND_ORDER if b in names]
    return known + sorted(names - set(known))


def first(series: pd.Series):
    """The first non-missing value of `series`, or None."""
    values = series.dropna()
    return values.iloc[0] if len(values) else None


def distinct(series: pd.Series) -> list:
    """Distinct values in order of first appearance (numbers ascending), missing last."""
    values = list(pd.unique(series.dropna()))
    if values and all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        values.sort()
    if series.isna().any():
        values.append(None)
    return values


def equals(series: pd.Series, value) -> pd.Series:
    """Element-wise `series == value`, where a missing `value` matches missing entries."""
    if is_missing(value):
        return series.isna()
    return (series == value).fillna(False).astype(bool)


def by_config(frame: pd.DataFrame, keys: Sequence[str]):
    """(first row, rows) for each combination of `keys` in `frame`.

    Combinations are ordered key by key: the first key's values in order of appearance
    (numbers ascending), then the second key's within them, and so on.
    """
    if not keys:
        yield None, frame
        return
    combos = sort_by_keys(frame[list(keys)].drop_duplicates(), keys, frame)
    for _, combo in combos.iterrows():
        mask = pd.Series(True, index=frame.index)
        for k in keys:
            mask &= equals(frame[k], combo[k])
        yield combo, frame[mask]


def sort_by_keys(frame: pd.DataFrame, keys: Sequence[str], ref: pd.DataFrame) -> pd.DataFrame:
    """`frame` sorted by `keys`, each in the order `distinct` gives it in `ref` (stable)."""
    if frame.empty or not keys:
        return frame
    ranks = []
    for k in keys:
        order = distinct(ref[k])
        if k == "backend":
            order = ordered_backends(order) + [None]
        rank = {_rank_key(v): i for i, v in enumerate(order)}
        ranks.append([rank.get(_rank_key(v), len(rank)) for v in frame[k]])
    position = sorted(range(len(frame)), key=lambda i: tuple(r[i] for r in ranks))
    return frame.iloc[position]


def _rank_key(value):
    return None if is_missing(value) else value


# --------------------------------------------------------------------------- summarising


def _noise_band(ok: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row, the range its steady-state epoch time is known to within: the interquartile
    range of its epochs where the row has epoch_s_spread, else its fastest and slowest
    steady epoch (epoch_s_min/max), else the median alone."""
    median = ok["epoch_s"]
    half = ok["epoch_s_spread"] * median / 2
    lo = (median - half).where(half.notna(), ok["epoch_s_min"]).fillna(median)
    hi = (median + half).where(half.notna(), ok["epoch_s_max"]).fillna(median)
    # a spread above 2 would put the band's low end below zero: no epoch was faster than the
    # fastest one measured, nor slower than the slowest
    lo = pd.concat([lo, ok["epoch_s_min"]], axis=1).max(axis=1)
    hi = pd.concat([hi, ok["epoch_s_max"]], axis=1).min(axis=1)
    return lo.clip(upper=median), hi.clip(lower=median)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Repeats of each ok cell folded into one row: medians, spreads, speed vs numpy-vec,
    peak memory (`peak_host_mb_median`, `peak_device_mb_median`; NaN where not recorded).

    Rows are keyed by part and every axis (GROUP_KEYS). `epoch_s_min`/`max` span the repeats'
    medians; `epoch_s_lo`/`hi` the band the cell's epoch time is known to within (repeats and
    each repeat's own spread of epochs, see `_noise_band`); `noisy` is true when any repeat
    was flagged noisy. `speedup_vs_numpy_vec` is numpy-vec's median epoch_s divided by this
    backend's, in the group with the same other keys (NaN where numpy-vec has no ok row
    there), and `speedup_lo`/`hi` its range from the two cells' bands: a range holding 1 is a
    difference within the noise.
    """
    ok = conform(ok_rows(results), RESULT_COLUMNS)
    ok = conform(ok, ("epoch_s_spread", "noisy", *MEMORY_COLUMNS))  # older folders lack some
    keys = list(GROUP_KEYS)
    if ok.empty:
        empty = {k: ok[k].iloc[:0] for k in keys}
        empty.update({c: pd.Series(dtype="float64") for c in SUMMARY_COLUMNS})
        empty["n"] = pd.Series(dtype="int64")
        empty["noisy"] = pd.Series(dtype="bool")
        return pd.DataFrame(empty)
    numeric = (
        "test_acc",
        "epoch_s",
        "epoch_s_min",
        "epoch_s_max",
        "epoch_s_spread",
        "first_epoch_s",
        "samples_per_s",
        "gflops",
        "roofline",
        "time_to_target_s",
        *MEMORY_COLUMNS,
    )
    for col in numeric:
        ok[col] = pd.to_numeric(ok[col], errors="coerce").astype("float64")
    ok["_lo"], ok["_hi"] = _noise_band(ok)
    ok["_noisy"] = ok["noisy"].astype("boolean").fillna(False).astype(bool)
    grouped = ok.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(
        n=("status", "size"),
        test_acc_mean=("test_acc", "mean"),
        test_acc_median=("test_acc", "median"),
        test_acc_min=("test_acc", "min"),
        test_acc_max=("test_acc", "max"),
        epoch_s_median=("epoch_s", "median"),
        epoch_s_min=("epoch_s", "min"),
        epoch_s_max=("epoch_s", "max"),
        epoch_s_lo=("_lo", "min"),
        epoch_s_hi=("_hi", "max"),
        noisy=("_noisy", "any"),
        first_epoch_s_median=("first_epoch_s", "median"),
        samples_per_s_median=("samples_per_s", "median"),
        gflops_median=("gflops", "median"),
        roofline_median=("roofline", "median"),
        time_to_target_s_median=("time_to_target_s", "median"),
        target_reached=("time_to_target_s", "count"),
        **{f"{c}_median": (c, "median") for c in MEMORY_COLUMNS},
    ).reset_index()
    others = [k for k in keys if k != "backend"]
    ref = out.loc[
        out["backend"] == REFERENCE_BACKEND, [*others, "epoch_s_median", "epoch_s_lo", "epoch_s_hi"]
    ]
    ref = ref.rename(
        columns={"epoch_s_median": "_ref", "epoch_s_lo": "_ref_lo", "epoch_s_hi": "_ref_hi"}
    )
    out = out.merge(ref, on=others, how="left")
    out["speedup_vs_numpy_vec"] = out["_ref"] / out["epoch_s_median"]
    out["speedup_lo"] = out["_ref_lo"] / out["epoch_s_hi"]
    out["speedup_hi"] = out["_ref_hi"] / out["epoch_s_lo"]
    return out[keys + list(SUMMARY_COLUMNS)]


def beyond_noise(faster, slower) -> bool:
    """Whether summary row `faster` is faster than `slower` by more than their noise: the
    slower cell's band starts above the faster one's (their bands do not overlap), and
    neither band has zero width."""
    lo, hi = slower["epoch_s_lo"], faster["epoch_s_hi"]
    if is_missing(lo) or is_missing(hi):
        return False
    # a band of zero width (one steady epoch, one repeat) is no measure of the noise at all
    if any(not r["epoch_s_hi"] > r["epoch_s_lo"] for r in (faster, slower)):
        return False
    return bool(lo > hi)


def repeats_per_cell(rows: pd.DataFrame) -> pd.Series:
    """How many ok repeats each cell (GROUP_KEYS) has."""
    ok = rows.loc[rows["status"] == "ok"]
    return ok.groupby(list(GROUP_KEYS), dropna=False).size()


# --------------------------------------------------------------------------- lookups


def plain(value):
    """A table value as a plain Python value for dictionary keys: missing -> None, NumPy
    scalars -> their Python value."""
    kind = type(value)
    if kind is str or kind is int:  # most values: no missing-value test needed
        return value
    if kind is float:
        return None if value != value else value
    if is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def cell_key(record, keys: Sequence[str] = GROUP_KEYS) -> tuple:
    """The key of a cell (a row or summary record) as a tuple of plain values."""
    return tuple(plain(record[k]) for k in keys)


class CellIndex:
    """Summary records and the statuses of the latest rows by cell key (GROUP_KEYS), so that
    building a table costs a dictionary lookup per cell, whatever the size of the run."""

    def __init__(self, summary: pd.DataFrame, rows: pd.DataFrame):
        self.summary = {cell_key(r): r for r in summary.to_dict("records")}
        self.statuses: dict[tuple, list] = {}
        keyed = rows[[*GROUP_KEYS, "status"]].to_dict("records") if len(rows) else []
        for r in keyed:
            self.statuses.setdefault(cell_key(r), []).append(r["status"])

    def ordered_cells(self, rows: pd.DataFrame, keys: Sequence[str]) -> list[dict]:
        """The distinct cells of `rows`, sorted by `keys` (each in `distinct` order, backends
        in the project's order), as records of GROUP_KEYS."""
        cells = rows[list(GROUP_KEYS)].drop_duplicates()
        return sort_by_keys(cells, list(keys), rows).to_dict("records")
