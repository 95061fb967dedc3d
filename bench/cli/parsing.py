"""What every command's parser shares: the parser class that names close flags, list and
path types, and the sweep settings read from flags or a TOML file."""

from __future__ import annotations

import argparse
import difflib

from bench.errors import UsageError, require_readable_file

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bench.sweep.build import integer_setting
from bench.sweep.keys import PART_KEYS, RUN_KEYS

# The settings the command line takes: every key of the sweep's table that has a flag.
SETTING_KEYS = {**PART_KEYS, **RUN_KEYS}


class Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            flags = all_flags(self)
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.6)
                if word.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise UsageError(message)


def all_flags(parser) -> list[str]:
    flags = []
    for action in parser._actions:
        flags += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += all_flags(sub)
    return flags


def split_list(text: str, flag: str = "", key: str = "") -> list[str]:
    """Comma-separated values; in dataset lists a comma followed by `key=value` continues the
    parameters of the dataset before it: "synthetic:n=500,d=4,digits" is two datasets."""
    where = f"{flag}: " if flag else ""
    if not text.strip():
        raise UsageError(f"{where}the list is empty: give at least one value")
    items = []
    for piece in (item.strip() for item in text.split(",")):
        name, eq, _ = piece.partition("=")
        if key == "datasets" and items and eq and ":" not in name and ":" in items[-1]:
            items[-1] += "," + piece
        else:
            items.append(piece)
    if any(item == "" for item in items):
        raise UsageError(
            f"{where}empty item in the list {text!r}: write values separated by commas"
        )
    return items


def path_type(what: str):
    """An argparse type for a path: an empty one is a usage error, not the current folder."""
    return given(what, "a path")


def given(what: str, kind: str = "one"):
    """An argparse type for a value that must not be empty (empty would mean "not given")."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"the {what} is empty: give {kind}")
        return text

    return parse


def count_type(what: str):
    """An argparse type for a whole number >= 1, parsed and bounded as in a sweep."""

    def parse(text: str) -> int:
        try:
            return integer_setting(what, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


threads_type = count_type("threads")


def sweep_overrides(args) -> dict:
    overrides = {}
    for key in SETTING_KEYS.values():
        value = getattr(args, key.name, None)
        if value is not None:
            overrides[key.name] = (
                split_list(value, key.cli_flags[0], key.name) if key.axis else value
            )
    return overrides


def load_config(path: str) -> dict:
    """The [sweep] table of a TOML file; every problem is a UsageError naming the file."""
    require_readable_file("config file", path)
    try:
        with open(path, "rb") as f:
            data = tomllib.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a TOML file: byte {exc.start} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{path} is not usable: its tables or arrays nest too deep") from None
    if set(data) - {"sweep"}:
        extra = ", ".join(sorted(set(data) - {"sweep"}))
        raise UsageError(f"{path}: unknown table(s) {extra}; the settings go under [sweep]")
    if "sweep" not in data:
        raise UsageError(f"{path} has no [sweep] table")
    if not isinstance(data["sweep"], dict):
        raise UsageError(f"{path}: sweep must be a table ([sweep]), got {data['sweep']!r}")
    return data["sweep"]
