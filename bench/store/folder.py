"""The run folder on disk: created once, appended to as cells finish, resumable.

A cell's curve rows are written before its result row, and each write is flushed and synced,
so a results row on disk means its cell is complete. On resume, every complete, valid row is
kept wherever it sits in the file; what cannot be read (a row cut off by power loss, a line
damaged by hand, a repeated key) is moved to `results.csv.damaged` / `curves.csv.damaged`, never
deleted. Curve rows of cells without a result row are dropped, and those cells run again.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import errno
import fcntl
import io
import json
import math
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, DiskFullError, NotARunError, UsageError
from bench.store.schema import CURVE_COLUMNS, KEY_COLUMNS, RESULT_COLUMNS

RESULTS, CURVES, ENV, LOCK, LOGS = "results.csv", "curves.csv", "env.json", ".lock", "logs"


SLUG_MAX = 60  # characters of a name in a folder or file name (file names stop at 255 bytes)


def _slug(text: str) -> str:
    """A folder-name-safe form of `text`: ASCII letters, digits and ._- only, short."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:SLUG_MAX].strip("-.") or "run"


# Every row this module writes is one physical line ending in "\r\n" (the csv module's
# terminator, written and read with newline=""): values never hold "\r" or "\n", so a line
# that does not parse is junk on its own and never swallows the rows around it.
_LINE = re.compile(r"\r\n|\r|\n")  # the only breaks csv's reader knows (not \u2028, \x0c, ...)


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
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


def _valid_key(fields: dict) -> tuple[str, int] | None:
    cell_id, repeat = fields.get("cell_id", ""), fields.get("repeat", "")
    if not re.fullmatch(r"[0-9a-zA-Z_-]+", cell_id) or not re.fullmatch(r"[0-9]+", repeat):
        return None
    return cell_id, int(repeat)


@dataclass
class _Recovered:
    rows: list[dict]
    damaged: list[str]  # raw text quarantined, in file order
    rewrite: bool  # the file on disk differs from header + rows


def _recover_text(text: str, columns, unique) -> _Recovered:
    """Split a CSV written by this module into its complete, valid rows and the rest.

    A row is kept wherever it sits when it has one field per column of the file's header, a
    valid key, and `unique(row)` (the row's identity) not seen before. Everything else (cut
    rows, junk lines, repeated keys, an unterminated tail) is returned as damaged text.
    """
    lines, tail = _lines(text)
    header, rows, damaged, seen = None, [], [], set()
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
        if ident is None or ident in seen:
            damaged.append(line)
            continue
        seen.add(ident)
        rows.append({c: row.get(c, "") for c in columns})
    if tail:
        damaged.append(tail)
    return _Recovered(rows, damaged, _csv_text(columns, rows) != text)


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
        _disk_full_is_clear(target),
        target.open("a", encoding="utf-8", errors="surrogateescape", newline="") as f,
    ):
        for text in damaged:
            f.write(text + "\r\n")
        f.flush()
        os.fsync(f.fileno())
    return target


def _rewrite(path: Path, columns, rows: list[dict]) -> None:
    """Replace `path` atomically with the header and `rows` (never leaves it without a header)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with _disk_full_is_clear(path), tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(_csv_text(columns, rows))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _recover_file(path: Path, columns, unique, note, keep=None) -> list[dict]:
    """Complete, valid rows of `path`; damaged text moved to `path.damaged`, file rewritten."""
    if not path.exists():
        _rewrite(path, columns, [])
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
    if found.rewrite or dropped:  # also normalises other line endings to the writer's
        _rewrite(path, columns, rows)
    return rows


@contextlib.contextmanager
def _disk_full_is_clear(path: Path):
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


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


class RunStore:
    """One run folder: env.json, results.csv, curves.csv, logs/; locked while in use."""

    def __init__(self, path: Path, lock_handle):
        self.path = path
        self._lock = lock_handle
        self.results_path = path / RESULTS
        self.curves_path = path / CURVES
        self.env_path = path / ENV

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> RunStore:
        """A new folder `<root>/<timestamp>-<name>[-N]`, created atomically (never shared)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise UsageError(f"cannot use {root} as the results folder (--out): it is a file")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the results folder {root}: {exc.strerror}") from None
        check_writable(root)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(name)}"
        for n in range(1, 1000):
            path = root / (base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            store = cls(path, _lock(path))
            store._write_headers()
            return store
        raise BenchError(f"could not find a free run folder name under {root}")

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunStore:
        """An existing run folder, to resume it. Raises NotARunError if it is not one."""
        path = Path(path)
        if not path.is_dir():
            what = "it is a file" if path.exists() else "no such folder"
            raise NotARunError(f"{path} is not a run folder: {what}")
        if not (path / ENV).is_file():
            raise NotARunError(
                f"{path} is not a run folder: no {ENV} (a run folder is what "
                "`python -m bench run` writes)"
            )
        check_writable(path)
        store = cls(path, _lock(path))
        try:
            stale = store.stale_status()
            if stale:
                _stderr(f"note: {stale}")
                store.update_env(status="interrupted")
        except BaseException:
            store.close()
            raise
        return store

    def _write_headers(self):
        for path, columns in (
            (self.results_path, RESULT_COLUMNS),
            (self.curves_path, CURVE_COLUMNS),
        ):
            _rewrite(path, columns, [])

    # -- reading ---------------------------------------------------------------------------

    def recover(self, note=None) -> set[tuple[str, int]]:
        """Repair the tables and return the (cell_id, repeat) keys already finished.

        Every complete, valid row is kept; damaged text is quarantined (see the module's
        docstring) and said through `note`. Curve rows of cells that have no result row
        (interrupted between the two writes) are dropped: those cells run again.
        """
        note = note or _stderr
        results = _recover_file(self.results_path, RESULT_COLUMNS, _valid_key, note)
        finished = {_valid_key(r) for r in results}

        def curve_id(row):
            key = _valid_key(row)
            epoch = row.get("epoch", "")
            return None if key is None or not epoch.isdigit() else (*key, int(epoch))

        _recover_file(
            self.curves_path,
            CURVE_COLUMNS,
            curve_id,
            note,
            keep=lambda row: _valid_key(row) in finished,
        )
        return finished

    def read_env(self) -> dict:
        return _read_env(self.env_path)

    def stale_status(self) -> str | None:
        """A sentence when env.json says "running" although no process holds this folder.

        Only meaningful while this store holds the folder's lock (an open store): then the
        process that wrote "running" is gone (killed, or stopped before it could say so).
        """
        env = self.read_env()
        if env.get("status") != "running":
            return None
        return _stale_sentence(self.path, env)

    # -- writing ---------------------------------------------------------------------------

    def write_env(self, env: dict) -> None:
        """Replace env.json atomically."""
        _write_env(self.env_path, env)

    def update_env(self, **fields) -> dict:
        return _update_env(self.env_path, fields)

    @staticmethod
    def write_env_field(path, **fields) -> None:
        """Add fields to env.json of the run folder `path` after the run has closed."""
        _update_env(Path(path) / ENV, fields)

    def append_cell(self, result: dict, curves: list[dict]) -> None:
        """Write a finished cell: its curve rows, then its result row; both synced to disk."""
        if curves:
            _append(self.curves_path, CURVE_COLUMNS, curves)
        _append(self.results_path, RESULT_COLUMNS, [result])

    def write_log(self, name: str, text: str) -> Path:
        logs = self.path / LOGS
        logs.mkdir(exist_ok=True)
        path = logs / f"{_slug(name)}.log"
        path.write_text(text)
        return path

    @property
    def logs_dir(self) -> Path:
        path = self.path / LOGS
        path.mkdir(exist_ok=True)
        return path

    def close(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def _read_env(path: Path) -> dict:
    try:
        env = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NotARunError(f"{path} cannot be read: {exc}") from None
    if not isinstance(env, dict):
        raise NotARunError(f"{path} cannot be read: it holds no JSON object")
    return env


def _update_env(path: Path, fields: dict) -> dict:
    env = _read_env(path) if path.exists() else {}
    env.update(fields)
    _write_env(path, env)
    return env


def _write_env(path: Path, env: dict) -> None:
    """Replace env.json atomically; a failed write leaves the old file and no .tmp."""
    if env.get("status") == "running":  # who is running it: a later look can tell it is gone
        env["owner"] = {"pid": os.getpid(), "host": socket.gethostname()}
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(env, indent=2, sort_keys=True, default=str) + "\n"
    try:
        with _disk_full_is_clear(path), tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _stale_sentence(run_dir: Path, env: dict) -> str:
    owner = env.get("owner") if isinstance(env.get("owner"), dict) else {}
    who = f"process {owner['pid']} on {owner.get('host', '?')}" if "pid" in owner else "process"
    return (
        f"{run_dir}/env.json said the run is still running, but its {who} is gone "
        "(killed, or stopped before it could record it); treated as interrupted"
    )


def stale_running(run_dir) -> str | None:
    """A sentence when a run folder's env.json says "running" but no process is running it.

    Whoever runs a folder holds its lock (see _lock) and writes its pid and host; the lock
    decides where it can be taken, the pid where the lock file is missing. None when the
    status is not "running" or the run is alive.
    """
    run_dir = Path(run_dir)
    try:
        env = _read_env(run_dir / ENV)
    except NotARunError:
        return None
    if env.get("status") != "running":
        return None
    try:
        with (run_dir / LOCK).open("r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # held: the run is alive
            fcntl.flock(handle, fcntl.LOCK_UN)
            return _stale_sentence(run_dir, env)
    except OSError:
        pass
    owner = env.get("owner") if isinstance(env.get("owner"), dict) else {}
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return None  # cannot tell from here
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return _stale_sentence(run_dir, env)
    except OSError:
        return None
    return None


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _append(path: Path, columns, rows) -> None:
    with _disk_full_is_clear(path), path.open("a", encoding="utf-8", newline="") as f:
        if not _ends_a_line(path):
            f.write("\r\n")  # never glue a row to a cut-off one: that would lose both
        writer = csv.writer(f)
        for row in rows:
            writer.writerow([_format(row.get(c)) for c in columns])
        f.flush()
        os.fsync(f.fileno())


def _lock(path: Path):
    handle = (path / LOCK).open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"{path} is in use by another bench process") from None
    return handle


def check_writable(folder: Path) -> None:
    """Raise UsageError unless a file can be created in `folder`."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to {folder}: {exc.strerror}") from None


__all__ = ["RunStore", "KEY_COLUMNS", "check_writable", "stale_running"]
