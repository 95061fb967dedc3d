"""Which values of a numeric column can be a measurement, and why the others cannot.

The run folder's tables are text, and a hand edit, a bad conversion or a damaged disk can put
anything in them. A value of an `int` or `float` column (bench.store.schema.COLUMN_TYPES) is
refused when it is text that is not a number ("0.9O8"), not finite (inf; an empty field or
NaN is a missing value, not a bad one), a time below zero (-0.0 included) or an epoch's time
of zero, an accuracy outside [0, 1], or of an absurd magnitude (above MAX_MAGNITUDE, or a
time above MAX_SECONDS). Losses may be infinite: a diverged cell's loss is.

The report leaves refused values out of its figures and names them (bench.report.loading);
a resume treats a row holding one as damaged, as it treats a cut row (bench.store.csvfile).
"""

from __future__ import annotations

import json
import math

from bench.store.schema import FLOAT_COLUMNS, INT_COLUMNS

MAX_SECONDS = 1e12  # about 30,000 years
MAX_MAGNITUDE = 1e15  # no count, rate or size the harness records comes near it
_MISSING = frozenset({"", "nan", "na", "<na>", "none", "null", "n/a"})
# times that cannot be zero: an epoch always takes some time
_NONZERO_TIMES = frozenset(
    {"epoch_s", "epoch_s_min", "epoch_s_max", "first_epoch_s", "train_s", "elapsed_s"}
)


def finite_numbers(value) -> list[float]:
    """The finite numbers of a list column's value (`extra_epoch_s`): a list, or the JSON text
    results.csv holds it as (bench.store.csvfile writes lists so); anything else, and any item
    that is not a finite number, counts as nothing."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, (list, tuple)):
        return []
    return [
        float(v)
        for v in value
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def is_time(column: str) -> bool:
    return (column.endswith("_s") and not column.endswith("per_s")) or column in (
        "epoch_s_min",
        "epoch_s_max",
    )


def is_accuracy(column: str) -> bool:
    return column.endswith("_acc")


def is_loss(column: str) -> bool:
    return column.endswith("_loss")


def refusal(column: str, text) -> str | None:
    """Why `text` (a field as written) cannot be column `column`'s value; None when it can
    (a missing value can), or when the column is not numeric."""
    if column not in FLOAT_COLUMNS and column not in INT_COLUMNS:
        return None
    raw = "" if text is None else str(text).strip()
    if raw.lower() in _MISSING:
        return None
    try:
        value = float(raw)
    except ValueError:
        return "is not a number"
    if math.isnan(value):
        return None
    if math.isinf(value):
        return None if is_loss(column) else "is not finite"
    if column in INT_COLUMNS and value != int(value):
        return "is not a whole number"
    if is_time(column):
        if math.copysign(1.0, value) < 0:
            return "is a negative time"
        if value == 0 and column in _NONZERO_TIMES:
            return "is an epoch time of zero"
        if value > MAX_SECONDS:
            return f"is an absurd time (above {MAX_SECONDS:g} s)"
        return None
    if is_accuracy(column) and not 0 <= value <= 1:
        return "is an accuracy outside [0, 1]"
    if abs(value) > MAX_MAGNITUDE and not is_loss(column):
        return f"is of an absurd magnitude (above {MAX_MAGNITUDE:g})"
    return None


def refusals(row: dict) -> list[tuple[str, str, str]]:
    """(column, text, why) for each refused value of `row` (a row read back as text)."""
    out = []
    for column, text in row.items():
        why = refusal(column, text)
        if why:
            out.append((column, str(text), why))
    return out
