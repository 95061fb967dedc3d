"""The run folder's CSV tables on disk: rows appended whole and synced, and recovery of
what a crash, a full disk or a hand edit left behind.

Every row this module writes is one physical line ending in "\\r\\n" (the csv module's
terminator, written and read with newline=""): values never hold "\\r" or "\\n", so a line
that does not parse is junk on its own and never swallows the rows around it. On recovery,
every complete, valid row is kept wherever it sits in the file; what cannot be read (a row
cut off by power loss, a line damaged by hand, a repeated key) is moved to `<table>.damaged`,
never deleted.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import DiskFullError
from bench.store.values import refusals

_LINE = re.compile(r"\r\n|\r|\n")  # the only breaks csv's reader knows (not \u2028, \x0c, ...)


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        # float(): a NumPy float's repr is "np.float64(...)", which no reader takes as a number
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        return " ".join(_LINE.split(value))  # one line per row (see _LINE)
    return value


def _lines(text: str) -> tuple[list[str], str]:
    """The complete lines of `text` (without their terminators) and the unterminated rest."""
    pieces = _LINE.split(text)
    return pieces[:-1], pieces[-1]


def _parse_line(line: str) -> list[str] | None:
    try:
        line.encode("utf-8")  # undecodable bytes (kept as surrogates) are damage
        rows = list(csv.reader([line], strict=True))
    except (UnicodeEncodeError, csv.Error):
        return None
    return rows[0] if len(rows) == 1 else None


def valid_key(fields: dict) -> tuple[str, int] | None:
    """The (cell_id, repeat) of a row read back as text, None when it is not a valid key."""
    cell_id, repeat = fields.get("cell_id", ""), fields.get("repeat", "")
    if not re.fullmatch(r"[0-9a-zA-Z_-]+", cell_id) or not re.fullmatch(r"[0-9]+", repeat):
        return None
    return cell_id, int(repeat)


@dataclass
class _Recovered:
    rows: list[dict]
    damaged: list[str]  # raw text quarantined, in file order
    refused: list[str]  # why rows holding values that cannot be measurements were quarantined
    rewrite: bool  # the file on disk differs from header + rows


def _recover_text(text: str, columns, unique) -> _Recovered:
    """Split a CSV written by this module into its complete, valid rows and the rest.

    A row is kept wherever it sits when it has one field per column of the file's header, a
    valid key, `unique(row)` (the row's identity) not seen before, and no numeric value that
    cannot be a measurement (bench.store.values: text, inf, a negative time, ...). Everything
    else (cut rows, junk lines, repeated keys, refused values, an unterminated tail) is
    returned as damaged text.
    """
    lines, tail = _lines(text)
    header, rows, damaged, seen, refused = None, [], [], set(), []
    for line in lines:
        if not line:
            continue  # an empty line holds nothing to keep
        fields = _parse_line(line)
        if fields is not None and _is_header(fields, columns):
            if header is None:
                header = fields
            continue  # a repeated header line is dropped
        if header is None:
            header = list(columns)  # the header line itself was damaged: ours is assumed
        if fields is None or len(fields) != len(header):
            damaged.append(line)
            continue
        row = dict(zip(header, fields))
        ident = unique(row)
        bad = refusals(row)
        if bad:
            refused.append(
                f"{row.get('cell_id', '?')} repeat {row.get('repeat', '?')}"
                + (f" epoch {row['epoch']}" if row.get("epoch") else "")
                + ": "
                + ", ".join(f"{column} = {text!r} {why}" for column, text, why in bad)
            )
        if ident is None or ident in seen or bad:
            damaged.append(line)
            continue
        seen.add(ident)
        rows.append({c: row.get(c, "") for c in columns})
    if tail:
        damaged.append(tail)
    return _Recovered(rows, damaged, refused, _csv_text(columns, rows) != text)


def _csv_text(columns, rows: list[dict]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue()


def _is_header(fields: list[str], columns) -> bool:
    """The file's header: our column names (an older release's subset is read and upgraded)."""
    return (
        "cell_id" in fields
        and "repeat" in fields
        and len(set(fields)) == len(fields)
        and set(fields) <= set(columns)
    )


def _read_text(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.read()


def _quarantine(path: Path, damaged: list[str]) -> Path:
    """Append damaged text to `<file>.damaged`, synced, before the file is rewritten."""
    target = path.with_name(path.name + ".damaged")
    with (
        disk_full_is_clear(target),
        target.open("a", encoding="utf-8", errors="surrogateescape", newline="") as f,
    ):
        for text in damaged:
            f.write(text + "\r\n")
        f.flush()
        os.fsync(f.fileno())
    return target


def rewrite(path: Path, columns, rows: list[dict]) -> None:
    """Replace `path` atomically with the header and `rows` (never leaves it without a header)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with disk_full_is_clear(path), tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(_csv_text(columns, rows))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def recover_file(path: Path, columns, unique, note, keep=None) -> list[dict]:
    """Complete, valid rows of `path`; damaged text moved to `path.damaged`, file rewritten
    (under `columns`: a file with an older release's header is upgraded, its rows kept)."""
    if not path.exists():
        rewrite(path, columns, [])
        return []
    found = _recover_text(_read_text(path), columns, unique)
    rows = found.rows
    dropped = 0
    if keep is not None:
        rows = [r for r in found.rows if keep(r)]
        dropped = len(found.rows) - len(rows)
    if found.damaged:
        target = _quarantine(path, found.damaged)
        n = len(found.damaged)
        note(
            f"note: {path.name}: {n} damaged line{'s' if n > 1 else ''} (cut off, unreadable "
            f"or repeated) moved to {target}; {len(rows)} complete rows kept"
        )
        for why in found.refused:  # rows that parse but hold values no measurement gives
            note(f"note: {path.name}: {why}; the row was moved there too (its cell runs again)")
    if found.rewrite or dropped:  # also normalises other line endings to the writer's
        rewrite(path, columns, rows)
    return rows


@contextlib.contextmanager
def disk_full_is_clear(path: Path):
    """Turn "no space left" into a message naming the file and how to finish the run."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        if exc.errno == errno.EFBIG:
            what, fix = "the file size limit was reached", "raise the limit"
        else:
            what, fix = "the disk is full", "free space"
        raise DiskFullError(
            f"{what} while writing {path}; {fix} and finish with: "
            f"python -m bench run --resume {path.parent}"
        ) from None


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def append_rows(path: Path, columns, rows) -> None:
    """Append `rows` (mappings of `columns`; a missing one is written empty), synced."""
    with disk_full_is_clear(path), path.open("a", encoding="utf-8", newline="") as f:
        if not _ends_a_line(path):
            f.write("\r\n")  # never glue a row to a cut-off one: that would lose both
        writer = csv.writer(f)
        for row in rows:
            writer.writerow([_format(row.get(c)) for c in columns])
        f.flush()
        os.fsync(f.fileno())
