"""What code a process runs, and on which machine: the identity the Dask client and its
workers compare when a run connects (and each task checks again), so that no cell runs on a
worker with other code than the client's."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import socket
import sys
from pathlib import Path

_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # holds bench/ and impls/


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("mlp-bench")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """A short hash of this copy's bench/ and impls/ Python sources (paths and contents)."""
    digest = hashlib.sha256()
    for package in ("bench", "impls"):
        for path in sorted((_PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(_PROJECT_ROOT)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def identity() -> dict:
    """What code this process runs, and on which machine: compared at connection."""
    from bench.worker import envinfo

    return {
        "host": socket.gethostname(),
        "version": _package_version(),
        "commit": envinfo.git_commit(_PROJECT_ROOT),
        "code": code_hash(),
        "python": sys.version.split()[0],
    }


def describe_code(ident: dict) -> str:
    commit = ident.get("commit")
    where = (
        f", commit {commit[:12]}{' with local changes' if commit.endswith('-dirty') else ''}"
        if commit
        else ""
    )
    return f"mlp-bench {ident.get('version') or 'unknown'} (sources {ident.get('code')}{where})"


def same_code(mine: dict, theirs: dict) -> bool:
    return mine.get("version") == theirs.get("version") and mine.get("code") == theirs.get("code")


def worker_facts() -> dict:
    """Run on a Dask worker at connection: its code and its machine (no framework import)."""
    from bench.worker import envinfo

    facts = envinfo.collect()
    return {"identity": identity(), **facts}
