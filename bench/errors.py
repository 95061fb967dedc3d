"""Errors the command line turns into one-line messages."""

from __future__ import annotations


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
