"""The run folder on disk: created once, appended to as cells finish, resumable.

A cell's curve rows are written before its result row, and each write is flushed and synced,
so a results row on disk means its cell is complete. On resume, a results file cut off
mid-line (power loss) keeps its complete rows; the cut row and any curve rows of cells without
a result row are dropped, and those cells run again.
"""

from __future__ import annotations

import csv
import datetime as _dt
import fcntl
import json
import math
import os
import re
from pathlib import Path

from .errors import BenchError, NotARunError, UsageError
from .schema import CURVE_COLUMNS, KEY_COLUMNS, RESULT_COLUMNS

RESULTS, CURVES, ENV, LOCK, LOGS = "results.csv", "curves.csv", "env.json", ".lock", "logs"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        return " ".join(value.split("\n"))  # one line per row: resume recovers by lines
    return value


def _recover_csv(path: Path, columns) -> list[dict]:
    """Complete rows of a CSV written by this module; rewrites the file if a row was cut."""
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    keep = []
    for line in lines:
        if not line.endswith("\n"):
            break  # cut off mid-line
        keep.append(line)
    header = next(csv.reader(keep[:1]), None)
    if header is not None and list(header) != list(columns):
        raise BenchError(f"{path} has columns {header}, expected {list(columns)}")
    rows = []
    good = keep[:1]
    for line in keep[1:]:
        fields = next(csv.reader([line]), [])
        if len(fields) != len(columns):
            break
        rows.append(dict(zip(columns, fields)))
        good.append(line)
    if len(good) != len(lines):
        path.write_text("".join(good) if good else "")
    return rows


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
            raise NotARunError(f"{path} is not a run folder: no such folder")
        if not (path / ENV).is_file():
            raise NotARunError(
                f"{path} is not a run folder: no {ENV} (a run folder is what "
                "`python -m bench run` writes)"
            )
        check_writable(path)
        store = cls(path, _lock(path))
        store._write_headers()
        return store

    def _write_headers(self):
        tables = ((self.results_path, RESULT_COLUMNS), (self.curves_path, CURVE_COLUMNS))
        for path, columns in tables:
            if not path.exists() or path.stat().st_size == 0:
                with path.open("w", newline="") as f:
                    csv.writer(f).writerow(columns)

    # -- reading ---------------------------------------------------------------------------

    def recover(self) -> set[tuple[str, int]]:
        """Repair cut-off files and return the (cell_id, repeat) keys already finished.

        Curve rows of cells that have no result row (interrupted mid-cell) are dropped.
        """
        results = _recover_csv(self.results_path, RESULT_COLUMNS)
        finished = {_key(r) for r in results} - {None}
        curves = _recover_csv(self.curves_path, CURVE_COLUMNS)
        kept = [r for r in curves if _key(r) in finished]
        if len(kept) != len(curves):
            with self.curves_path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CURVE_COLUMNS)
                writer.writeheader()
                writer.writerows(kept)
        return finished

    def read_env(self) -> dict:
        return _read_env(self.env_path)

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
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NotARunError(f"{path} cannot be read: {exc}") from None


def _update_env(path: Path, fields: dict) -> dict:
    env = _read_env(path) if path.exists() else {}
    env.update(fields)
    _write_env(path, env)
    return env


def _write_env(path: Path, env: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(env, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _key(row: dict) -> tuple[str, int] | None:
    try:
        return row["cell_id"], int(row["repeat"])
    except (KeyError, ValueError):
        return None


def _append(path: Path, columns, rows) -> None:
    with path.open("a", newline="") as f:
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


__all__ = ["RunStore", "KEY_COLUMNS", "check_writable"]
