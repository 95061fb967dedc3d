"""Errors the command line turns into one-line messages."""

from __future__ import annotations

import os
import stat


class BenchError(Exception):
    """An error with a message meant for the user; the CLI prints it without a traceback."""

    exit_code = 1


class UsageError(BenchError):
    """Bad input from the user: flags, config file, names, numbers. Exit status 2."""

    exit_code = 2


class NotARunError(BenchError):
    """A folder given as a run folder holds no run (no results.csv / env.json)."""

    exit_code = 2


class DiskFullError(BenchError):
    """No space left (or a file size limit) while writing a run folder; it can be resumed."""


def require_readable_file(what: str, path: str, folder_hint: str = "") -> None:
    """`path` is a regular file this process can read; else a UsageError naming `what` (a
    FIFO would block a reader forever and a device never ends, so both are refused)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{what} {path} is a folder" + (f": {folder_hint}" if folder_hint else ""))
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path} is not a regular file (a pipe, device or socket)")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror})") from None
