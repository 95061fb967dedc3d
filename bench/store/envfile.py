"""env.json of a run folder: read as a dict, and changed in one place, `change_env`, which
writes only the top-level fields bench.store.records.RunEnv declares (atomically: a failed
write leaves the old file). The changes the harness makes (a field, a session's entry, a Dask
host's facts or matmul probe) are the functions below; none of its callers edits the dict.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from bench.errors import NotARunError
from bench.store.csvfile import disk_full_is_clear
from bench.store.schema import check_env_fields


def read_env(path: Path) -> dict:
    try:
        env = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NotARunError(f"{path} cannot be read: {exc}") from None
    if not isinstance(env, dict):
        raise NotARunError(f"{path} cannot be read: it holds no JSON object")
    return env


def change_env(path: Path, change: Callable[[dict], dict], replace: bool = False) -> dict:
    """The one place env.json changes. `change(env)` gets a copy of its content (empty when
    there is no file yet) and returns the top-level fields to set; they are checked against
    bench.store.records.RunEnv (ValueError naming an undeclared one) and written. `replace`:
    the fields become the whole content. Returns the new content."""
    current = read_env(path) if path.exists() else {}
    fields = change(copy.deepcopy(current))
    check_env_fields(fields, current)
    if not fields and not replace:
        return current  # nothing changes: the file stays as it is
    env = dict(fields) if replace else {**current, **fields}
    if env.get("status") == "running":  # who is running it: a later look can tell it is gone
        env["owner"] = {"pid": os.getpid(), "host": socket.gethostname()}
    _write(path, env)
    return env


def _write(path: Path, env: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(env, indent=2, sort_keys=True, default=str) + "\n"
    try:
        with disk_full_is_clear(path), tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- the changes --------------------------------------------------------------------------------


def start_session(entry: dict, fields: dict):
    """A change that appends `entry` (its index set) to `sessions` and sets `fields`.

    Sessions still "running" are marked interrupted (the caller holds the folder's lock: no
    earlier one still runs); a folder from before sessions were recorded gets its first start
    as session 0 first."""

    def change(env: dict) -> dict:
        sessions = env.get("sessions") or []
        if not sessions and env.get("started_at"):
            sessions.append(
                {
                    "index": 0,
                    "command": env.get("command"),
                    "started_at": env.get("started_at"),
                    "finished_at": env.get("finished_at"),
                    "status": env.get("status"),
                    "pid": None,
                    "load": None,
                    "matmul": {},
                }
            )
        for earlier in sessions:
            if earlier.get("status") == "running":
                earlier["status"] = "interrupted"
                earlier["note"] = "ended without closing env.json (killed?)"
        sessions.append({**entry, "index": len(sessions)})
        return {**fields, "sessions": sessions}

    return change


def set_session(index: int, entry: dict, fields: dict):
    """A change that replaces session `index`'s entry with `entry` and sets `fields`."""

    def change(env: dict) -> dict:
        sessions = env.get("sessions") or []
        if not 0 <= index < len(sessions):
            raise ValueError(f"env.json has no session {index} (it has {len(sessions)})")
        sessions[index] = {**entry, "index": index}
        return {**fields, "sessions": sessions}

    return change


def set_cluster(session: int, hosts: dict[str, dict], scheduler: dict):
    """A change that merges each host's facts into `hosts` (keeping its matmul probes) and
    makes `scheduler` the `schedulers` entry of `session`."""

    def change(env: dict) -> dict:
        known = env.get("hosts") or {}
        for name, facts in hosts.items():
            entry = known.setdefault(name, {})
            entry.update(facts)
            entry.setdefault("matmul", {})
        schedulers = [s for s in env.get("schedulers") or [] if s.get("session") != session]
        schedulers.append({"session": session, **scheduler})
        return {"hosts": known, "schedulers": schedulers}

    return change


def add_probe(host: str, session: int, threads: int, dtype: str, probe: dict):
    """A change that files a matmul probe measured on a Dask host under hosts[host]["matmul"]
    [session][threads][dtype]; a probe already filed there stays (no fields change)."""

    def change(env: dict) -> dict:
        hosts = env.get("hosts") or {}
        by_session = hosts.setdefault(host, {}).setdefault("matmul", {})
        rates = by_session.setdefault(str(session), {}).setdefault(str(threads), {})
        if dtype in rates:
            return {}
        rates[dtype] = probe
        return {"hosts": hosts}

    return change
