"""The run folder on disk: created once, appended to as cells finish, resumable.

A cell's curve rows are written before its result row, and each write is flushed and synced,
so a results row on disk means its cell is complete. On resume, every complete, valid row is
kept wherever it sits in the file; what cannot be read (a row cut off by power loss, a line
damaged by hand, a repeated key) is moved to `results.csv.damaged` / `curves.csv.damaged`, never
deleted (bench.store.csvfile). Curve rows of cells without a result row are dropped, and those
cells run again. Rows and env.json hold only the fields bench.store.records declares: a key it
does not declare is an error naming it, never silently dropped.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import re
import socket
import sys
from pathlib import Path

from bench.errors import BenchError, NotARunError, UsageError
from bench.store import envfile
from bench.store.csvfile import append_rows, recover_file, rewrite, valid_key
from bench.store.schema import CURVE_COLUMNS, RESULT_COLUMNS, curve_fields, result_fields

RESULTS, CURVES, ENV, LOCK, LOGS = "results.csv", "curves.csv", "env.json", ".lock", "logs"


SLUG_MAX = 60  # characters of a name in a folder or file name (file names stop at 255 bytes)


def _slug(text: str) -> str:
    """A folder-name-safe form of `text`: ASCII letters, digits and ._- only, short."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:SLUG_MAX].strip("-.") or "run"


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
            rewrite(path, columns, [])

    # -- reading ---------------------------------------------------------------------------

    def recover(self, note=None, rerun=None) -> set[tuple[str, int]]:
        """Repair the tables and return the (cell_id, repeat) keys already finished.

        Every complete, valid row is kept; damaged text is quarantined (see the module's
        docstring) and said through `note`. Curve rows of cells that have no result row
        (interrupted between the two writes) are dropped: those cells run again. `rerun(row)`
        (a row as text): finished rows to run again, removed with their curves.
        """
        note = note or _stderr
        keep = None if rerun is None else (lambda row: not rerun(row))
        results = recover_file(self.results_path, RESULT_COLUMNS, valid_key, note, keep=keep)
        finished = {valid_key(r) for r in results}

        def curve_id(row):
            key = valid_key(row)
            epoch = row.get("epoch", "")
            return None if key is None or not epoch.isdigit() else (*key, int(epoch))

        recover_file(
            self.curves_path,
            CURVE_COLUMNS,
            curve_id,
            note,
            keep=lambda row: valid_key(row) in finished,
        )
        return finished

    def read_env(self) -> dict:
        return envfile.read_env(self.env_path)

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
        """Replace env.json atomically with `env` (its fields declared by RunEnv)."""
        envfile.change_env(self.env_path, lambda _: env, replace=True)

    def update_env(self, **fields) -> dict:
        """Set top-level fields of env.json (declared by RunEnv); returns its new content."""
        return envfile.change_env(self.env_path, lambda _: fields)

    @staticmethod
    def write_env_field(path, **fields) -> None:
        """Set fields of env.json of the run folder `path` after the run has closed."""
        envfile.change_env(Path(path) / ENV, lambda _: fields)

    def start_session(self, entry: dict, **fields) -> int:
        """Add a session (a start or --resume) to env.json's `sessions` and set `fields`, in
        one write; returns its index. Sessions left "running" become "interrupted"."""
        env = envfile.change_env(self.env_path, envfile.start_session(entry, fields))
        return len(env["sessions"]) - 1

    def update_session(self, index: int, entry: dict, **fields) -> None:
        """Replace session `index`'s entry in env.json and set `fields`, in one write."""
        envfile.change_env(self.env_path, envfile.set_session(index, entry, fields))

    def record_cluster(self, session: int, hosts: dict[str, dict], scheduler: dict) -> None:
        """A Dask session's machines ({host: facts}, merged into env.json's `hosts`) and its
        scheduler (its entry of `schedulers`)."""
        envfile.change_env(self.env_path, envfile.set_cluster(session, hosts, scheduler))

    def record_probe(self, host: str, session: int, threads: int, dtype: str, probe: dict) -> None:
        """A matmul probe measured on a Dask host, filed in env.json's hosts[host]["matmul"]
        by session, threads and dtype; the first one filed for those stays."""
        change = envfile.add_probe(host, session, threads, dtype, probe)
        envfile.change_env(self.env_path, change)

    def append_cell(self, result, curves) -> None:
        """Write a finished cell: its curve rows, then its result row; both synced to disk.

        `result` is a ResultRow or a mapping of its columns, each curve row a CurveRow or a
        mapping; ValueError, before anything is written, for a key that is not a column or a
        status that is not one of STATUSES. A column not given is written empty."""
        result = result_fields(result)
        curves = [curve_fields(c) for c in curves]
        if curves:
            append_rows(self.curves_path, CURVE_COLUMNS, curves)
        append_rows(self.results_path, RESULT_COLUMNS, [result])

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
        env = envfile.read_env(run_dir / ENV)
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


__all__ = ["RunStore", "check_writable", "stale_running"]
