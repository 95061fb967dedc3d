"""What a worker does so that a backend's faults are its own and named as such.

- The dataset a worker caches for its cells is handed out read-only (`read_only`): a model that
  changes X or Y in place fails its cell with an error naming the array (`describe_failure`),
  instead of spoiling the later cells of the worker and the harness's own losses.
- A user's class may import any framework: after its import, every framework it loaded is
  pinned as the registered backends of that framework are (`pin_loaded_frameworks`).
"""

from __future__ import annotations

import sys
import traceback

import numpy as np

ARRAY_NAMES = ("X_train", "Y_train", "X_test", "Y_test")
# a framework module a user's class may load -> the bench.worker.threads.FRAMEWORK_PINS entry
# that pins it as its registered backend does
_FRAMEWORKS = (("torch", "torch"), ("tensorflow", "keras"), ("jax", "jax"))


def read_only(data) -> None:
    """Make the cached arrays of `data` (X_train, Y_train, X_test, Y_test) read-only."""
    for name in ARRAY_NAMES:
        getattr(data, name).flags.writeable = False


def describe_failure(exc: BaseException, data=None) -> str:
    """One line for what a cell raised: "Type: message", and for an in-place change of the
    harness's arrays (`data`) which one it was and what to do."""
    if isinstance(exc, KeyboardInterrupt):  # the worker ignores SIGINT: the model raised it
        return "KeyboardInterrupt raised by the backend's own code (the worker ignores Ctrl-C)"
    if isinstance(exc, SystemExit):
        return f"the backend's code called sys.exit({exc.code!r}) during the cell"
    text = f"{type(exc).__name__}: {exc}"
    if data is None or not (isinstance(exc, ValueError) and "read-only" in str(exc)):
        return text
    names = _changed_arrays(exc, data) or ["X", "Y"]
    return (
        f"{text}: the model changed {' or '.join(names)} in place. The harness's arrays are "
        "read-only, since every later cell and the harness's own losses use them: copy an "
        "array before changing it (e.g. Y = Y * 0.9, or Y = Y.copy())"
    )


def _changed_arrays(exc: BaseException, data) -> list[str]:
    """The harness's arrays that the failing line of `exc`'s traceback refers to: the names
    in the innermost frame whose values share memory with one of `data`'s arrays and appear
    on that line, each with the array it is ("Y (Y_train)")."""
    tb = exc.__traceback__
    if tb is None:
        return []
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    line = traceback.extract_tb(tb, limit=1)[-1].line or ""
    found = []
    for local, value in frame.f_locals.items():
        if not isinstance(value, np.ndarray) or local not in line:
            continue
        for name in ARRAY_NAMES:
            if np.shares_memory(value, getattr(data, name)):
                found.append(name if local == name else f"{local} ({name})")
                break
    return found


def pin_loaded_frameworks(threads: int) -> dict:
    """Pin, as their registered backends are pinned, the frameworks a user's class loaded
    (PyTorch, TensorFlow, JAX), then NumPy's BLAS and every OpenMP runtime now loaded; the
    thread counts in effect, by library."""
    from bench.worker.threads import FRAMEWORK_PINS, pin_threads

    effective = {}
    for module, backend in _FRAMEWORKS:
        if module in sys.modules:
            effective.update(FRAMEWORK_PINS[backend](threads))
    effective.update(pin_threads(threads, None))
    return effective
