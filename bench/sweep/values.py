"""Single values of a sweep: each parser checks one flag's or TOML key's value and raises
ValueError naming what was given and what is valid (bench.sweep.build makes it a UsageError
naming the key); bounds of the integer settings; the "not set" marker of optional settings.

`parse_<what>(value)` parses one kind of value; `<kind>_parser(what, ...)` makes the parser
of one setting, whose messages name it `what`. The key table (bench.sweep.keys) pairs every
key with one of them.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Sequence

from bench import datasets as _datasets
from impls import SCHEMES
from impls.spec import unknown_name_message

FULL_BATCH = 0  # batch_sizes entry meaning "the whole training set" ("full" in flags/TOML)
ORDERS = ("shuffle", "fixed")
DEVICES = ("cpu", "cuda", "cuda:N")  # as written on the command line and in TOML

# Bounds of the integer settings, checked when they are parsed (a huge number would run and
# then break the report forever after, or overflow a C integer in a library).
INT32_MAX = 2**31 - 1  # sizes and counts: the largest a 32-bit index holds
SEED_MAX = 2**32 - 1  # NumPy's legacy seeds and many libraries' take 32-bit seeds
LIMITS = {
    "batch size": INT32_MAX,
    "hidden layer width": 2**20,  # 1,048,576 units
    "epochs": 10**7,
    "threads": 4096,
    "repeats": 10**4,
    "eval_every": 10**7,
    "seed": SEED_MAX,
    "split_seed": SEED_MAX,
}
TIMEOUT_MAX = 10**7  # seconds (about 116 days): larger waits overflow the OS's timers
NAME_MAX = 1000  # characters of a run's or part's name (folder names take the first 60)


class NotSet:
    """The value of an optional setting nobody gave: no real value (None, "none") equals it."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "NOT_SET"

    def __bool__(self):
        return False

    def __reduce__(self):
        return (NotSet, ())


NOT_SET = NotSet()


def name_parser(kind, valid):
    def parse(value):
        if not isinstance(value, str) or value not in valid:
            raise ValueError(unknown_name_message(kind, value, valid))
        return value

    return parse


def parse_device(value):
    """A device as each cell records it: "cpu", or "cuda:N" ("cuda" is "cuda:0")."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "cpu":
            return "cpu"
        kind, colon, index = text.partition(":")
        if kind == "cuda" and (not colon or (index.isdigit() and index.isascii())):
            return f"cuda:{int(index or 0)}"
        if kind == "gpu":  # the closest name is "cpu", the meant one "cuda"
            raise ValueError(
                f"unknown device {value!r}; valid: {', '.join(DEVICES)} (a GPU is 'cuda')"
            )
    raise ValueError(unknown_name_message("device", value, DEVICES))


_SWITCH_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def switch_parser(what: str):
    """A setting that is on or off: true/false in TOML, --x / --no-x on the command line."""

    def parse(value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _SWITCH_WORDS:
            return _SWITCH_WORDS[value.strip().lower()]
        raise ValueError(f"{what} is on or off (true or false), got {value!r}")

    return parse


def parse_dataset(value):
    """The dataset's canonical name, so that spellings of the same data are one dataset."""
    if not isinstance(value, str):
        raise ValueError(f"dataset names are strings, got {value!r}")
    return _datasets.canonical_dataset_name(value)  # ValueError: unknown names / parameters


def parse_integer(value, what: str, lo: int):
    """An int from an int or a string of digits; never a float (1e20), a bool or a date."""
    given = value
    if isinstance(value, str) and re.fullmatch(r"\s*\+?[0-9]+\s*", value):
        value = int(value.strip())
    hi = LIMITS.get(what, INT32_MAX)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        kind = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise ValueError(f"{what} must be {kind}, got {given!r}")
    if value > hi:
        raise ValueError(f"{what} must be at most {limit_text(hi)}, got {given!r}")
    return int(value)


def limit_text(hi: int) -> str:
    named = {INT32_MAX: "2**31-1", SEED_MAX: "2**32-1", 2**20: "2**20"}
    return f"{named[hi]} = {hi:,}" if hi in named else f"{hi:,}"


def positive_int_parser(what):
    return lambda value: parse_integer(value, what, 1)


def non_negative_int_parser(what):
    return lambda value: parse_integer(value, what, 0)


def parse_batch_size(value):
    if isinstance(value, str) and value.strip().lower() == "full":
        return FULL_BATCH
    return positive_int_parser("batch size")(value)


def number_parser(what, lo=None, lo_open=False, hi=None, hi_open=False):
    def parse(value):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{what} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{what} must be a number, got {value!r}")
        value = float(value)
        bad = not math.isfinite(value)
        if lo is not None:
            bad |= value <= lo if lo_open else value < lo
        if hi is not None:
            bad |= value >= hi if hi_open else value > hi
        if bad:
            lo_text = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
            hi_text = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
            rule = " and ".join(t for t in (lo_text, hi_text) if t)
            raise ValueError(f"{what} must be a finite number {rule}, got {value!r}")
        return value

    return parse


def parse_hidden(value) -> tuple[int, ...]:
    """Hidden layer widths from "256x128", "100", "none", 100 or [256, 128]."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", ""):
            return ()
        items = text.split("x")
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise ValueError(f"hidden layers are written like 100 or 256x128, got {value!r}")
    try:
        return tuple(positive_int_parser("hidden layer width")(item) for item in items)
    except ValueError:
        raise ValueError(
            f"hidden layers are written as positive widths like 100 or 256x128 (each at most "
            f"{limit_text(LIMITS['hidden layer width'])}), or 'none'; got {value!r}"
        ) from None


def hidden_text(hidden: tuple[int, ...]) -> str:
    return "x".join(str(h) for h in hidden) if hidden else "none"


def optional_parser(parse):
    """`parse`, with None (JSON null, Python's None) and NOT_SET meaning "not set".

    Strings are always values: "none" is the preprocessing that keeps raw values.
    """

    def wrapped(value):
        if value is None or value is NOT_SET:
            return NOT_SET
        return parse(value)

    return wrapped


def text_parser(what: str):
    """A name shown in headings and folder names: one line of printable text."""

    def parse(value):
        if not isinstance(value, str):
            raise ValueError(f"{what} must be a string, got {value!r}")
        text = clean_text(value)
        if not text:
            raise ValueError(f"{what} is empty")
        if len(text) > NAME_MAX:
            raise ValueError(f"{what} is {len(text)} characters long; at most {NAME_MAX}")
        return text

    return parse


def clean_text(value: str) -> str:
    """`value` on one line: every line break and other space runs become one space, and
    control and format characters go (they would break a heading, a CSV line or a terminal)."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in value
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    return " ".join(kept.split())


def path_parser(what: str):
    """An explicit folder, stored absolute so a resume from elsewhere finds it."""

    def parse(value):
        if not isinstance(value, str):
            raise ValueError(f"{what} must be a folder path (a string), got {value!r}")
        if not value.strip():
            raise ValueError(f"{what} is empty: give a folder")
        if "\0" in value:
            raise ValueError(f"{what} holds a NUL character")
        return _datasets.resolve_data_dir(value)

    return parse


def parse_preprocess(value):
    return name_parser("preprocessing", _datasets.PREPROCESSING)(value)


def parse_init_scheme(value):
    return name_parser("init scheme", SCHEMES)(value)
