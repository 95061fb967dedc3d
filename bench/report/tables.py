"""A run folder's tables as pandas DataFrames: loading, typing, selecting and summarising.

Nothing here formats or draws: markdown.py turns values into text, summary.py writes
summary.md and bench.report.plots the figures, all from what this module returns.

    results, curves = load_run("results/2025-01-05-digits")
    summary = summarize(results)  # one row per cell, repeats folded in
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import NotARunError
from bench.store.schema import (
    AXES,
    BOOL_COLUMNS,
    CURVE_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
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

# Spellings of a missing number (what Python, NumPy and pandas write for one).
_MISSING = frozenset({"", "nan", "na", "<na>", "none", "null", "n/a"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def is_missing(value) -> bool:
    """True for None, NaN, pd.NA and NaT; False for anything else, lists included."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- loading


def load_env(path: str | Path) -> dict:
    """env.json of a run folder (or the file itself) as a dict."""
    path = Path(path)
    file = path / "env.json" if path.is_dir() else path
    if not file.is_file():
        raise NotARunError(not_a_run(path, "no env.json"))
    try:
        env = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotARunError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(env, dict):
        raise NotARunError(f"{file} holds a {type(env).__name__}, not a JSON object")
    return env


def load_run(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, curves) of a run folder, with the schema's columns and explicit dtypes.

    Axes and other names are strings (hidden "100" stays "100"), counts are nullable Int64,
    times and metrics float64, flags nullable boolean; empty fields are missing values. A
    trailing record cut off mid-write is dropped with a warning. A missing curves.csv gives an
    empty curves frame.
    """
    path = Path(path)
    if not path.is_dir():
        what = "it does not exist" if not path.exists() else "not a folder"
        raise NotARunError(not_a_run(path, what))
    for name in ("results.csv", "env.json"):
        if not (path / name).is_file():
            raise NotARunError(not_a_run(path, f"no {name}"))
    results = _read_table(path / "results.csv", RESULT_COLUMNS)
    curves_file = path / "curves.csv"
    if curves_file.is_file():
        curves = _read_table(curves_file, CURVE_COLUMNS, cells=results)
    else:
        curves = typed(pd.DataFrame({c: pd.Series(dtype="str") for c in CURVE_COLUMNS}))
    return results, curves


def not_a_run(path: Path, what: str) -> str:
    return f"{path} is not a run folder: {what} (a run folder is what `python -m bench run` writes)"


def _read_records(file: Path) -> list[list[str]]:
    """The CSV records of `file`, the last one dropped (with a warning) if cut off mid-write."""
    with open(file, encoding="utf-8", errors="replace", newline="") as fh:
        text = fh.read()
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text), strict=True)
    cut_inside_quotes = False
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            cut_inside_quotes = True  # a quoted field left open: the write stopped inside it
            break
        if record:
            records.append(record)
    if text and not text.endswith(("\n", "\r")) and not cut_inside_quotes and records:
        records.pop()
        warnings.warn(
            f"{file}: dropped the last line, cut off mid-write (no line end)", stacklevel=4
        )
    elif cut_inside_quotes:
        warnings.warn(
            f"{file}: dropped the last record, cut off inside a quoted field", stacklevel=4
        )
    return records


def _read_table(file: Path, columns: Sequence[str], cells=None) -> pd.DataFrame:
    """One CSV of a run folder, dropping records cut off mid-write, typed column by column.

    A column the file lacks reads as empty, or, given `cells` (results.csv's rows), takes the
    value of its cell there by cell_id: the curves of a folder written before the device was
    an axis get their cells' device."""
    records = _read_records(file)
    header, body = (records[0], records[1:]) if records else (list(columns), [])
    kept = [r for r in body if len(r) == len(header)]
    if len(kept) < len(body):
        bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
        warnings.warn(
            f"{file}: dropped {len(bad)} record(s) with the wrong number of fields "
            f"(line(s) {', '.join(map(str, bad[:5]))}{'…' if len(bad) > 5 else ''}; "
            f"{len(header)} expected)",
            stacklevel=3,
        )
    frame = pd.DataFrame(kept, columns=header, dtype="str")
    missing = [c for c in columns if c not in frame.columns]
    filled = []
    if cells is not None and "cell_id" in frame.columns:
        by_cell = cells.dropna(subset=["cell_id"]).drop_duplicates("cell_id").set_index("cell_id")
        filled = [c for c in missing if c in by_cell.columns and by_cell[c].notna().any()]
        for c in filled:
            frame[c] = frame["cell_id"].map(by_cell[c].astype("str").where(by_cell[c].notna()))
    # A folder written by an earlier version lacks the columns added since (peak memory, for
    # one): they read as empty without a word. A missing key or axis is worth one.
    essential = [
        c for c in missing if c in (*KEY_COLUMNS, *AXES, "status", "epoch") and c not in filled
    ]
    if essential and kept:
        warnings.warn(f"{file}: no column(s) {', '.join(essential)}; read as empty", stacklevel=3)
    for c in missing:
        if c not in filled:
            frame[c] = pd.Series([None] * len(frame), index=frame.index, dtype="str")
    extra = [c for c in frame.columns if c not in columns]
    frame = frame[list(columns) + extra]
    return typed(frame, source=file)


def typed(frame: pd.DataFrame, source: Path | None = None) -> pd.DataFrame:
    """Strings to the schema's types (bench.store.schema.COLUMN_TYPES): empty fields missing,
    numbers float64 or Int64, flags boolean; every other column stays text."""
    out = {}
    for col in frame.columns:
        s = frame[col].astype("str")
        s = s.where(~frame[col].isna() & ~s.isna() & (s != ""))
        if col in BOOL_COLUMNS:
            out[col] = _to_bool(s, col, source)
        elif col in INT_COLUMNS or col in FLOAT_COLUMNS:
            out[col] = _to_number(s, col, source)
        else:
            out[col] = s
    return pd.DataFrame(out, index=frame.index)


def _to_number(s: pd.Series, col: str, source) -> pd.Series:
    s = s.where(~s.str.strip().str.lower().isin(_MISSING))
    try:
        num = pd.to_numeric(s.str.strip())
    except (ValueError, TypeError):
        warnings.warn(
            f"{source or 'table'}: column {col} holds non-numbers; kept as text", stacklevel=4
        )
        return s
    if col in INT_COLUMNS:
        try:
            return num.astype("Int64")
        except (ValueError, TypeError, OverflowError):
            return num.astype("float64")  # fractional or huge values: keep them as they are
    return num.astype("float64")


def _to_bool(s: pd.Series, col: str, source) -> pd.Series:
    text = s.str.strip().str.lower()
    known = text.isna() | text.isin(_MISSING | _TRUE | _FALSE)
    if not known.all():
        warnings.warn(
            f"{source or 'table'}: column {col} holds values that are not true/false; "
            "read as missing",
            stacklevel=4,
        )
    values = [True if t in _TRUE else False if t in _FALSE else pd.NA for t in text]
    return pd.Series(values, index=s.index, dtype="boolean")


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
    slower cell's band starts above the faster one's (their bands do not overlap)."""
    lo, hi = slower["epoch_s_lo"], faster["epoch_s_hi"]
    if is_missing(lo) or is_missing(hi):
        return False
    return bool(lo > hi)


def ratio_band(faster, slower) -> tuple[float, float, float]:
    """(ratio, low, high) of slower/faster epoch time: medians, and the bands' extremes."""
    ratio = slower["epoch_s_median"] / faster["epoch_s_median"]
    return (
        float(ratio),
        float(slower["epoch_s_lo"] / faster["epoch_s_hi"]),
        float(slower["epoch_s_hi"] / faster["epoch_s_lo"]),
    )


def repeats_per_cell(rows: pd.DataFrame) -> pd.Series:
    """How many ok repeats each cell (GROUP_KEYS) has."""
    ok = rows.loc[rows["status"] == "ok"]
    return ok.groupby(list(GROUP_KEYS), dropna=False).size()


# --------------------------------------------------------------------------- lookups


def plain(value):
    """A table value as a plain Python value for dictionary keys: missing -> None, NumPy
    scalars -> their Python value."""
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
