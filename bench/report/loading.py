"""A run folder's tables read from disk: env.json as a dict, results.csv and curves.csv as
pandas DataFrames with the store's columns and explicit dtypes.

    results, curves = load_run("results/2025-01-05-digits")
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

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
from bench.store.values import refusal

# Spellings of a missing number (what Python, NumPy and pandas write for one).
_MISSING = frozenset({"", "nan", "na", "<na>", "none", "null", "n/a"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


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
    # the report names every refused value of both tables with results' rows
    results.attrs["bad_values"] = results.attrs.get("bad_values", []) + curves.attrs.get(
        "bad_values", []
    )
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
    numbers float64 or Int64, flags boolean; every other column stays text.

    A number that cannot be a measurement (bench.store.values: text, inf, a negative time,
    an accuracy outside [0, 1], an absurd magnitude) is read as missing, so that it corrupts
    no figure, and named with its row in the frame's `attrs["bad_values"]` and a warning."""
    out, bad = {}, []
    for col in frame.columns:
        s = frame[col].astype("str")
        s = s.where(~frame[col].isna() & ~s.isna() & (s != ""))
        if col in BOOL_COLUMNS:
            out[col] = _to_bool(s, col, source)
        elif col in INT_COLUMNS or col in FLOAT_COLUMNS:
            refused = {i: why for i, text in s.dropna().items() if (why := refusal(col, text))}
            for i, why in refused.items():
                bad.append(f"{_where(frame, i, source)}: {col} = {s[i]!r} {why}")
            out[col] = _to_number(s.drop(list(refused)).reindex(s.index), col, source)
        else:
            out[col] = s
    result = pd.DataFrame(out, index=frame.index)
    if bad:
        warnings.warn(
            f"{len(bad)} value(s) left out as they cannot be measurements: " + "; ".join(bad[:5]),
            stacklevel=3,
        )
    result.attrs["bad_values"] = bad
    return result


def _where(frame: pd.DataFrame, index, source) -> str:
    """`results.csv, cell 3f2a… repeat 0`: which row a value came from."""
    row = frame.loc[index]
    bits = [Path(source).name if source else "table"]
    if "cell_id" in frame and isinstance(row["cell_id"], str):
        bits.append(f"cell {row['cell_id']}")
    for key in ("backend", "batch_size", "repeat", "epoch"):
        if key in frame and isinstance(row[key], str) and row[key]:
            bits.append(f"{key} {row[key]}")
    return ", ".join(bits)


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
