"""impls.parallel: the core's element-wise functions in blocks over a thread pool give NumPy's
results bit for bit, use exactly the threads asked for, and leave small arrays alone."""

import numpy as np
import pytest

from impls import MLPSpec, core, init_params, make_model, parallel


@pytest.fixture
def threads():
    """set_threads(n) for the test, every array counted as large; one thread again after."""
    saved = parallel.MIN_ELEMENTS
    parallel.MIN_ELEMENTS = 0
    yield parallel.set_threads
    parallel.set_threads(1)
    parallel.MIN_ELEMENTS = saved


def _arrays(dtype):
    rng = np.random.default_rng(0)
    # odd shapes: blocks of unequal size, a row count below the thread count
    shapes = ((37, 29), (2, 1000), (301,), (40, 33), (300, 32), (9, 90))
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_function_is_bit_identical_to_numpy(threads, n, dtype):
    plain = {name: getattr(core.NUMPY, name) for name in (*parallel.ELEMENTWISE, "sum", "max")}
    threads(n)
    for x in _arrays(dtype):
        positive = np.abs(x) + 0.5
        for name in parallel.ELEMENTWISE:
            args = (positive,) if name in ("log", "sqrt", "log1p") else (x,)
            args += (0.0,) if name == "maximum" else ()
            got, want = getattr(core.NUMPY, name)(*args), plain[name](*args)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want), name
        assert core.NUMPY.maximum(x, 0.0).dtype == x.dtype
        if x.ndim == 2:
            for name in ("sum", "max"):
                for axis in (0, -1, 1, None):
                    for keepdims in (False, True):
                        got = getattr(core.NUMPY, name)(x, axis=axis, keepdims=keepdims)
                        want = plain[name](x, axis=axis, keepdims=keepdims)
                        assert np.shape(got) == np.shape(want), (name, axis, keepdims)
                        assert np.array_equal(got, want), (name, axis, keepdims)


def test_the_pool_has_exactly_the_threads_asked_for_and_one_thread_is_numpy(threads):
    plain_maximum = core.NUMPY.maximum
    threads(3)
    assert parallel.threads() == 3 and parallel._state.pool._max_workers == 2  # + the caller
    assert core.NUMPY.maximum is not plain_maximum
    threads(1)
    assert parallel.threads() == 1 and parallel._state.pool is None
    assert core.NUMPY.maximum is plain_maximum and core.NUMPY.sum is parallel._PLAIN["sum"]
    with pytest.raises(ValueError, match="positive integer"):
        threads(0)


def test_small_arrays_stay_on_the_calling_thread(monkeypatch):
    parallel.set_threads(2)
    try:
        submitted = []
        monkeypatch.setattr(parallel._state.pool, "submit", lambda f: submitted.append(f))
        core.NUMPY.maximum(np.ones(parallel.MIN_ELEMENTS - 1, "f4"), 0.0)
        core.NUMPY.sum(np.ones((10, 10), "f4"), axis=0)
        assert submitted == []
    finally:
        monkeypatch.undo()
        parallel.set_threads(1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_epoch_on_threads_is_bit_identical(threads, optimizer):
    # hidden layers wide enough for their column sums to be cut in blocks
    spec = MLPSpec((20, 64, 48, 4), optimizer=optimizer, lr=0.01, dtype="float32")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 20)).astype("f4")
    Y = np.eye(4, dtype="f4")[rng.integers(0, 4, 64)]
    order = rng.permutation(64)
    runs = []
    for n in (1, 2, 3):
        threads(n)
        model = make_model("numpy-vec", spec, init_params(spec, seed=0))
        loss = model.train_epoch(X, Y, 32, order)
        runs.append((loss, model.get_params()))
    for loss, params in runs[1:]:
        assert loss == runs[0][0]
        for (W, b), (W0, b0) in zip(params, runs[0][1]):
            assert np.array_equal(W, W0) and np.array_equal(b, b0)


def test_a_worker_pins_the_elementwise_work_to_the_cells_threads():
    """bench.worker.threads.pin_threads gives impls.parallel the cell's thread count, and
    records it among the counts in effect; one thread is NumPy's own functions."""
    from bench.worker.threads import pin_threads

    try:
        effective = pin_threads(2)
        assert effective["numpy_elementwise"] == 2 and parallel.threads() == 2
        assert parallel._state.pool._max_workers == 1
    finally:
        effective = pin_threads(1)  # the test session's count (tests/conftest.py)
    assert effective["numpy_elementwise"] == 1 and parallel._state.pool is None


def test_the_epoch_gather_in_blocks_is_the_same_copy(threads):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(103, 7)).astype("f4")
    order = rng.permutation(103)
    for n in (1, 2, 4):
        threads(n)
        out = np.empty_like(X)
        assert parallel.take_rows(X, order, out) is out
        assert np.array_equal(out, X[order])
