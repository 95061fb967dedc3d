"""The class under test gets arrays of its own, read-only where the contract says they are
inputs: X, Y, each epoch's order and the parameters passed to `__init__`. An in-place edit
raises at once (NumPy: "assignment destination is read-only"); `written_input` then names the
array from the traceback, and `Inputs.changed` catches a change made any other way. The
reference is built from copies of its own: the class and the reference never share an array.
"""

from __future__ import annotations

import linecache
import re

import numpy as np

DESCRIPTIONS = {
    "X": "X (the inputs)",
    "Y": "Y (the targets)",
    "order": "order (the epoch's sample order)",
}


class ContractBreach(Exception):
    """The class wrote into an array the contract passes read-only."""


def read_only(array) -> np.ndarray:
    """A read-only view of a private copy of `array` (a view: its flag cannot be set back)."""
    base = np.array(array)
    base.flags.writeable = False
    return base.view()


def _describe(name: str) -> str:
    if name in DESCRIPTIONS:
        return DESCRIPTIONS[name]
    what = "weights" if name.endswith("[0]") else "biases"
    return f"{name} (layer {name[7]}'s initial {what}, passed to __init__)"


class Inputs:
    """The arrays handed to the class, by name, with a pristine copy of each."""

    def __init__(self):
        self.given: dict[str, np.ndarray] = {}
        self.pristine: dict[str, np.ndarray] = {}

    def add(self, name: str, array) -> np.ndarray:
        self.pristine[name] = np.array(array)
        self.given[name] = read_only(array)
        return self.given[name]

    def params(self, params) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (self.add(f"params[{i}][0]", W), self.add(f"params[{i}][1]", b))
            for i, (W, b) in enumerate(params)
        ]

    def changed(self) -> list[str]:
        """Names of the given arrays that no longer hold what they were given."""
        return [
            name
            for name, array in self.given.items()
            if not np.array_equal(array, self.pristine[name], equal_nan=True)
        ]

    def breach(self, exc: BaseException, where: str) -> ContractBreach | None:
        """A ContractBreach naming the array, if `exc` is a write into one of the inputs."""
        if not (isinstance(exc, ValueError) and "read-only" in str(exc)):
            changed = self.changed()
            if not changed:
                return None
            name = changed[0]
        else:
            name = written_input(exc, self.given) or "one of its inputs (X, Y, order, params)"
        return ContractBreach(
            f"your class wrote into {_describe(name)} in {where}, which the contract passes "
            "read-only: work on a copy of its own (np.array(...))"
        )

    def check(self, where: str) -> None:
        """Raise ContractBreach if an input changed during `where` without raising."""
        changed = self.changed()
        if changed:
            raise ContractBreach(
                f"your class changed {_describe(changed[0])} in {where}, which the contract "
                "passes read-only: work on a copy of its own (np.array(...))"
            )


def _arrays_in(value, depth: int = 2):
    if isinstance(value, np.ndarray):
        yield value
    elif depth and isinstance(value, (list, tuple)):
        for item in value[:64]:
            yield from _arrays_in(item, depth - 1)


def _shared(value, given: dict[str, np.ndarray]) -> str | None:
    for array in _arrays_in(value):
        if array.flags.writeable:
            continue
        for name, mine in given.items():
            if np.shares_memory(array, mine):
                return name
    return None


def written_input(exc: BaseException, given: dict[str, np.ndarray]) -> str | None:
    """The name of the input a read-only write went to: in the innermost frame of the
    traceback holding one of `given`, the one named on the failing line, else the first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    for frame, line_no in reversed(frames):
        line = linecache.getline(frame.f_code.co_filename, line_no)
        named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line))
        local = frame.f_locals
        for key in [k for k in local if k in named] + list(local):
            found = _shared(local[key], given)
            if found:
                return found
    return None
