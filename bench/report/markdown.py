"""Values as text for a person: durations, ratios, axis values, Markdown tables.

Pure functions of their arguments; used by summary, plots and pbench.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from bench.report.tables import is_missing

ERROR_WIDTH = 120  # characters of an error message shown in a table cell

# How settings are named in headings and sentences.
LABELS = {
    "part": "part",
    "optimizer": "optimizer",
    "lr": "lr",
    "hidden": "hidden",
    "activation": "activation",
    "epochs": "epochs",
    "dtype": "dtype",
    "threads": "threads",
    "output": "output",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "preprocess": "preprocessing",
    "init": "init",
    "order": "sample order",
    "eval_every": "eval every",
    "target_acc": "target accuracy",
}


def label(column: str) -> str:
    return LABELS.get(column, column)


def format_seconds(seconds) -> str:
    """A duration with three significant digits in the unit that suits it: µs, ms, s, min, h."""
    if is_missing(seconds):
        return "—"
    s = float(seconds)
    if not math.isfinite(s):
        return str(s)
    if s <= 0:
        return "0 s"
    if s < 60:
        for unit, scale in (("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)):
            if s < scale * 1000 or unit == "s":
                text = f"{s / scale:.3g}"
                if float(text) < 1000 or unit == "s":
                    return f"{text} {unit}"
    if s < 3600:
        minutes, rest = divmod(round(s), 60)
        return f"{minutes} min {rest:02d} s" if minutes < 60 else "1 h 00 min"
    hours, rest = divmod(round(s / 60), 60)
    return f"{hours} h {rest:02d} min"


def format_speedup(ratio) -> str:
    """Speed relative to the reference: 31×, 3.1×, 0.31×."""
    if is_missing(ratio) or not math.isfinite(float(ratio)):
        return "—"
    r = float(ratio)
    if r >= 9.95:
        return f"{r:.0f}×"
    if r >= 0.995:
        return f"{r:.1f}×"
    return f"{r:.2g}×"


def format_mb(mb, unit: bool = True) -> str:
    """Memory in MB (2**20 bytes): whole MB from 100 up (1450 MB), three significant digits
    below (94.1 MB); `unit=False` leaves out the ` MB`."""
    if is_missing(mb) or not math.isfinite(float(mb)):
        return "—"
    mb = float(mb)
    text = f"{mb:.0f}" if mb >= 99.95 else f"{mb:.3g}"
    return f"{text} MB" if unit else text


def format_band(lo, hi) -> str:
    """A ratio's range with three significant digits, `1.02–2.47×`, so that a range that
    stays above 1 never reads as starting at 1.0."""
    if is_missing(lo) or is_missing(hi):
        return "—"
    return f"{float(lo):.3g}–{float(hi):.3g}×"


def format_value(column: str, value) -> str:
    """An axis or setting value as it reads in a heading: 0.01, 256x128, threads default."""
    if is_missing(value):
        return "default" if column == "threads" else "—"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return one_line(str(value), width=10_000)


def config_label(row, keys: Sequence[str]) -> str:
    """`optimizer adam · lr 0.01`: the values of `keys` in `row`."""
    return " · ".join(f"{label(k)} {format_value(k, row[k])}" for k in keys)


def md_cell(text) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).replace("|", "\\|")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], n_left: int = 1) -> str:
    """A padded Markdown pipe table; the first `n_left` columns left-aligned, others right."""
    header = [md_cell(h) for h in header]
    rows = [[md_cell(c) for c in row] for row in rows]
    widths = [max([len(header[i])] + [len(r[i]) for r in rows] + [3]) for i in range(len(header))]

    def line(cells):
        padded = (
            c.ljust(w) if i < n_left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        (":" + "-" * (w + 1)) if i < n_left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)
    )
    return "\n".join([line(header), f"|{rule}|", *(line(r) for r in rows)])


def one_line(text, width: int = ERROR_WIDTH) -> str:
    """`text` on one line (runs of white space made one space), cut to `width` with `…`."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def parse_when(stamp) -> datetime | None:
    """An ISO time stamp as a datetime, None when missing or unreadable."""
    if is_missing(stamp) or not str(stamp).strip():
        return None
    try:
        return datetime.fromisoformat(str(stamp).strip())
    except ValueError:
        return None


def format_when(moment: datetime) -> str:
    """`2025-01-05 14:00 UTC`, or with the stamp's own offset."""
    text = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    if offset is None:
        return text
    return text + (" UTC" if offset.total_seconds() == 0 else moment.strftime(" %z"))


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 cell`, `3 cells`."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
