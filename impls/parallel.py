"""The element-wise work of the hand-written backends on every thread the run was given.

BLAS runs the matrix products on all of a cell's threads; the work between them (the
activation and its derivative, the softmax's exponentials, the column sums of the bias
gradients, Adam's square roots) is NumPy's, and NumPy runs a ufunc on one thread. Its share
of an epoch grows with the threads. `set_threads(n)` puts the remedy where the core takes its
array functions from, the namespace `impls.core.NUMPY`: for n > 1 it swaps in versions of
those functions that split a large array into n blocks and run them on a pool of n − 1
threads plus the caller (NumPy releases the GIL inside a ufunc, so the blocks run at once).
`set_threads(1)` restores NumPy's own functions, and no pool exists. `take_rows` does the same
for the epoch's gather of the shuffled samples (impls.base).

Every block computes exactly what the whole call computes for its elements, in the same
order: element-wise functions are the same per element, a reduction along a row (max, sum,
axis=-1) is split by rows and a column sum (sum, axis=0, the bias gradients) by columns, so
each output element is reduced in the same order as without blocks. The results are
bit-identical to NumPy's at any thread count (tests/test_parallel.py checks each function).

Arrays smaller than `MIN_ELEMENTS` are left to NumPy in the calling thread: handing blocks to
a pool costs time, which only a large array repays. The in-place operators the core uses
(z += b, p -= g) are NumPy's own methods and stay on one thread.

The bench's workers call `set_threads` with the cell's thread count (bench.worker.threads);
code that uses the backends directly can call it the same way.
"""

from __future__ import annotations

import os
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import core

# Arrays with fewer elements run in one call on the calling thread. n threads beat one once
# a ufunc's own time on the array exceeds the cost of handing blocks to pool threads and
# waiting for them (about 30 µs per call on the 2-core development machine). There, on a quiet
# machine, 2 threads first beat 1 at 2**20 elements (np.maximum on float32: 392 µs against 361
# µs), and lose below it (2**17: 50 µs against 120 µs; 2**18, a 1024 × 256 activation: 101
# against 147 µs). So the networks of the presets stay on one thread; a batch of 4096 × 256 or
# more uses the pool. It depends on the machine and its load; to measure it again on a quiet
# machine (2 threads or more), run
#     python -m impls.parallel
# which prints 1 thread against n for np.maximum(x, 0.0) at each power of 2 and the first size
# where n threads win (scripts/perf-table prints it too), and set the constant to that size.
MIN_ELEMENTS = 1 << 20

# A column sum is cut in blocks of at least this many columns. NumPy adds a block of two or
# more columns row by row, as it adds the whole array (so the sums are the same bit for bit);
# a single column is a strided vector, which it sums pairwise, in another order.
MIN_COLUMNS = 16

# the core's functions swapped in: element-wise ones (cut in blocks of rows) and reductions
# (cut in blocks of rows for axis=-1, of columns for axis=0)
ELEMENTWISE = ("maximum", "sign", "exp", "log", "tanh", "sqrt", "abs", "log1p")
REDUCTIONS = ("sum", "max")

_PLAIN = {name: getattr(core.NUMPY, name) for name in (*ELEMENTWISE, *REDUCTIONS)}
_state = types.SimpleNamespace(threads=1, pool=None)


def threads() -> int:
    """The thread count the element-wise functions use now (1: NumPy's own, no pool)."""
    return _state.threads


def set_threads(n: int) -> None:
    """Run the core's large element-wise functions on `n` threads (n − 1 pool threads and the
    caller); n = 1 restores NumPy's own functions and shuts the pool down."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    if n == _state.threads:
        return
    if _state.pool is not None:
        _state.pool.shutdown(wait=True)
        _state.pool = None
    _state.threads = n
    if n == 1:
        for name, function in _PLAIN.items():
            setattr(core.NUMPY, name, function)
        return
    _state.pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="impls-parallel")
    for name in ELEMENTWISE:
        setattr(core.NUMPY, name, _elementwise(getattr(np, name)))
    core.NUMPY.sum = _reduction(np.add)
    core.NUMPY.max = _reduction(np.maximum)


def _bounds(length: int, parts: int) -> list[tuple[int, int]]:
    edges = [length * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _run(blocks) -> None:
    """Run the callables `blocks`: the first on this thread, the rest on the pool."""
    pending = [_state.pool.submit(block) for block in blocks[1:]]
    blocks[0]()
    for future in pending:
        future.result()


def _elementwise(ufunc):
    """`ufunc(x)` (or `ufunc(x, scalar)` for a binary ufunc) computed in blocks of rows into
    one output array. A small x goes straight to the ufunc: the check is the one cost these
    functions add to NumPy's own at the sizes numpy-loop and small batches use."""

    def blocked(x, rest):
        if _state.pool is None or type(x) is not np.ndarray or x.ndim < 1:
            return ufunc(x, *rest)
        if any(np.ndim(other) != 0 for other in rest):
            return ufunc(x, *rest)
        out = np.empty(x.shape, np.result_type(ufunc(x.flat[:1], *rest)))

        def block(lo, hi):
            return lambda: ufunc(x[lo:hi], *rest, out=out[lo:hi])

        _run([block(lo, hi) for lo, hi in _bounds(x.shape[0], _state.threads)])
        return out

    if ufunc.nin == 1:

        def call(x):
            try:
                if x.size < MIN_ELEMENTS:
                    return ufunc(x)
            except AttributeError:  # a Python number
                return ufunc(x)
            return blocked(x, ())

    else:

        def call(x, y):
            try:
                if x.size < MIN_ELEMENTS:
                    return ufunc(x, y)
            except AttributeError:
                return ufunc(x, y)
            return blocked(x, (y,))

    call.__name__ = ufunc.__name__
    return call


def _reduction(ufunc):
    """`ufunc.reduce(x, axis=..., keepdims=...)` for a 2-D x: along rows (axis=-1 or 1) in
    blocks of rows, down columns (axis=0) in blocks of columns; anything else, and any small
    x, in one call."""

    def reduce(x, /, *, axis=None, keepdims=False):
        try:
            small = x.size < MIN_ELEMENTS
        except AttributeError:
            small = True
        down_columns = axis == 0
        if (
            small
            or _state.pool is None
            or type(x) is not np.ndarray
            or x.ndim != 2
            or axis not in (0, 1, -1)
            or (down_columns and x.shape[1] < 2 * MIN_COLUMNS)
        ):
            return ufunc.reduce(x, axis=axis, keepdims=keepdims)
        out_shape = (1, x.shape[1]) if down_columns else (x.shape[0], 1)
        out = np.empty(out_shape, x.dtype)
        if down_columns:
            parts = _bounds(x.shape[1], min(_state.threads, x.shape[1] // MIN_COLUMNS))
        else:
            parts = _bounds(x.shape[0], _state.threads)

        def block(lo, hi):
            if down_columns:
                return lambda: ufunc.reduce(x[:, lo:hi], axis=0, keepdims=True, out=out[:, lo:hi])
            return lambda: ufunc.reduce(x[lo:hi], axis=1, keepdims=True, out=out[lo:hi])

        _run([block(lo, hi) for lo, hi in parts])
        return out if keepdims else out.reshape(out_shape[1] if down_columns else out_shape[0])

    reduce.__name__ = ufunc.__name__
    return reduce


def take_rows(X: np.ndarray, order: np.ndarray, out: np.ndarray) -> np.ndarray:
    """X[order] written into `out` (the epoch's gather of the shuffled samples), on the set
    threads in blocks of rows where `out` is large: a copy, so bit-identical.

    `order` must hold valid row indices (impls.base.check_order checks them once per epoch).
    Speed: np.take's default mode="raise" writes into a temporary and copies it into `out`
    (NumPy's documented behaviour for `out` with "raise"); mode="clip" writes `out` directly,
    which halves the gather (8192 x 784 float32 shuffled: 8.5 ms against 4.1 ms; 60000 x 784:
    76 against 35 ms, 1 thread, on an AMD EPYC with AVX2; 8192 x 784: 5.6 against 2.0 ms on an
    Intel Xeon with AVX-512). Per call:
        python -m timeit -s "import numpy as np; X = np.ones((8192, 784), 'f4'); \
            o = np.random.permutation(8192); out = np.empty_like(X)" \
            "np.take(X, o, axis=0, out=out, mode='clip')"      (then without mode='clip')
    """
    if _state.pool is None or out.size < MIN_ELEMENTS or out.ndim != 2:
        return np.take(X, order, axis=0, out=out, mode="clip")

    def block(lo, hi):
        return lambda: np.take(X, order[lo:hi], axis=0, out=out[lo:hi], mode="clip")

    _run([block(lo, hi) for lo, hi in _bounds(out.shape[0], _state.threads)])
    return out


def measure_threshold(threads: int = 2) -> int:
    """The smallest power-of-2 element count at which np.maximum(x, 0.0) on float32 in blocks
    over `threads` threads is faster than one call (2**24 if none is); prints each size."""
    global MIN_ELEMENTS
    import timeit

    before, saved = _state.threads, MIN_ELEMENTS

    def best_s(x) -> float:
        call = core.NUMPY.maximum
        return min(timeit.repeat(lambda: call(x, 0.0), number=10, repeat=20)) / 10

    try:
        for power in range(10, 25):
            x = np.random.default_rng(0).random((2**power // 256, 256), dtype=np.float32)
            set_threads(1)
            one = best_s(x)
            set_threads(threads)
            MIN_ELEMENTS = 0  # every size in blocks
            many = best_s(x)
            MIN_ELEMENTS = saved
            print(
                f"2**{power} elements: 1 thread {one * 1e6:.1f} µs, {threads}: {many * 1e6:.1f} µs"
            )
            if many < one:
                return 2**power
        return 2**24
    finally:
        MIN_ELEMENTS = saved
        set_threads(before)


if __name__ == "__main__":
    n = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    print(f"MIN_ELEMENTS on this machine: {measure_threshold(max(n, 2))}")
