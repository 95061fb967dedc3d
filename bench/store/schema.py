"""Column names and types of the run folder's tables, derived from their declarations in
bench.store.records (nothing is listed here a second time).

results.csv holds one row per cell x repeat; curves.csv one row per cell x repeat x epoch.
Both are long format: every row carries the keys of its cell, so wide tables are derived
with pandas. Files of a run folder:

    env.json      bench.store.records.RunEnv: machine, versions, threads, command line, sweep,
                  start/end, status, sessions (each start and resume: command, load, probe)
    results.csv   RESULT_COLUMNS (bench.store.records.ResultRow)
    curves.csv    CURVE_COLUMNS (bench.store.records.CurveRow)
    summary.md    rendered from the CSVs by bench.report.write
    plots/*.png   rendered from the CSVs by bench.report.plots
    logs/         one traceback file per failed cell
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing

from bench.store.records import (
    RUN_STATUSES,
    STATUSES,
    CurveRow,
    EpochRecord,
    ResultRow,
    RunEnv,
)


def _names(record, flag: str | None = None) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record) if flag is None or f.metadata.get(flag))


# The axes of a sweep, in the order they vary in a cell's name.
AXES = _names(ResultRow, "axis")
# Settings that are fixed within one sweep part but recorded with every row.
SETTINGS = _names(ResultRow, "setting")

RESULT_COLUMNS = _names(ResultRow)
CURVE_COLUMNS = _names(CurveRow)
# A curve row's cell columns: which run, cell and repeat its epoch belongs to.
CURVE_KEYS = tuple(c for c in CURVE_COLUMNS if c not in _names(EpochRecord))
# The columns bench.worker.measure.train_and_measure fills for a cell.
MEASURED_COLUMNS = _names(ResultRow, "measured")

# Columns that identify a cell x repeat: a finished row with these values is not run again.
KEY_COLUMNS = ("cell_id", "repeat")

# env.json's top-level fields.
ENV_FIELDS = _names(RunEnv)

_KINDS = {int: "int", float: "float", bool: "bool"}


def _kind(annotation) -> str | None:
    """ "int", "float" or "bool" for a field of that type (or None), None for text."""
    options = {annotation}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        options = set(typing.get_args(annotation)) - {type(None)}
    return _KINDS.get(options.pop()) if len(options) == 1 else None


def _column_types(*records) -> dict[str, str]:
    out: dict[str, str] = {}
    for record in records:
        hints = typing.get_type_hints(record)
        for f in dataclasses.fields(record):
            kind = None if f.metadata.get("text") else _kind(hints[f.name])
            if kind is None:
                continue
            if out.setdefault(f.name, kind) != kind:
                raise TypeError(f"column {f.name} is declared {out[f.name]} and {kind}")
    return out


# The type of every column of both tables that is not text. The files hold text; readers
# (bench.report.tables) turn "int" columns into nullable Int64, "float" into float64 and "bool"
# into nullable boolean, with empty fields missing.
COLUMN_TYPES = _column_types(ResultRow, CurveRow)
INT_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "int")
FLOAT_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "float")
BOOL_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "bool")


# -- checks: the store writes only what is declared ---------------------------------------------


def _as_mapping(row, record) -> dict:
    if isinstance(row, record):
        return dataclasses.asdict(row)
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        raise TypeError(f"a {type(row).__name__} is not a {record.__name__}")
    return dict(row)


def _undeclared(keys, declared, what: str, where: str) -> None:
    unknown = [k for k in keys if k not in declared]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), declared, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        names = ", ".join(repr(k) for k in unknown)
        raise ValueError(f"{what} has no field {names}{hint}: its fields are declared by {where}")


def result_fields(row) -> dict:
    """`row` (a ResultRow or a mapping of its columns) as a mapping of declared columns;
    ValueError naming an undeclared key, or a status that is not one of STATUSES."""
    row = _as_mapping(row, ResultRow)
    _undeclared(row, RESULT_COLUMNS, "a results.csv row", "bench.store.records.ResultRow")
    status = row.get("status")
    if status not in STATUSES:
        raise ValueError(
            f"a results.csv row has status {status!r}, not one of {', '.join(STATUSES)} "
            "(bench.store.records.STATUSES)"
        )
    return row


def curve_fields(row) -> dict:
    """`row` (a CurveRow or a mapping of its columns) as a mapping of declared columns;
    ValueError naming an undeclared key."""
    row = _as_mapping(row, CurveRow)
    _undeclared(row, CURVE_COLUMNS, "a curves.csv row", "bench.store.records.CurveRow")
    return row


def check_env_fields(fields: dict, current: dict) -> None:
    """ValueError unless every top-level field of `fields` is declared by RunEnv (a field
    `current` already holds may be written back unchanged) and a run status is one of
    RUN_STATUSES."""
    kept = [k for k, value in fields.items() if k in current and current[k] == value]
    new = [k for k in fields if k not in kept]
    _undeclared(new, ENV_FIELDS, "env.json", "bench.store.records.RunEnv")
    status = fields.get("status")
    if "status" in fields and status not in RUN_STATUSES:
        raise ValueError(
            f"env.json's status {status!r} is not one of {', '.join(RUN_STATUSES)} "
            "(bench.store.records.RUN_STATUSES)"
        )
