"""`model.stage(X, Y)` places a cell's data once where the model computes; `train_epoch(data,
batch_size, order)` then applies the order there. Checked the same way on every backend."""

import numpy as np
import pytest
from conftest import require_backend

from impls import MLPSpec, init_params, make_model
from impls.base import Staged


def _problem(n=23, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(dtype)
    return X, np.eye(4, dtype=dtype)[rng.integers(0, 4, n)]


def _spec(dtype="float64"):
    return MLPSpec((6, 9, 4), optimizer="adam", lr=0.01, weight_decay=0.01, dtype=dtype)


def test_staged_epochs_equal_epochs_on_arrays(backend):
    spec = _spec()
    params = init_params(spec, seed=1)
    X, Y = _problem()
    orders = [np.random.default_rng(e).permutation(23) for e in range(2)]
    orders += [np.arange(23), np.array([5, 0, 17, 3, 9])]  # the fixed order, and a subset
    on_arrays, staged = make_model(backend, spec, params), make_model(backend, spec, params)
    data = staged.stage(X, Y)
    assert isinstance(data, Staged) and data.n == 23
    for e, order in enumerate(orders):
        expected = on_arrays.train_epoch(X, Y, 4, order)
        # positional and keyword forms of the staged call
        got = (
            staged.train_epoch(data, 4, order)
            if e % 2
            else staged.train_epoch(data, batch_size=4, order=order)
        )
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    for (W, b), (W2, b2) in zip(staged.get_params(), on_arrays.get_params()):
        np.testing.assert_allclose(W, W2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b2, rtol=1e-12, atol=1e-14)


def test_staging_checks_once_and_converts_to_the_spec_dtype():
    spec = _spec("float32")
    model = make_model("numpy-vec", spec, init_params(spec))
    X, Y = _problem()
    data = model.stage(X, Y)  # float64 in, float32 kept
    assert data.X.dtype == data.Y.dtype == np.float32 and data.X.flags.c_contiguous
    X32, Y32 = _problem(dtype="float32")
    same = model.stage(X32, Y32)
    assert same.X is X32 and same.Y is Y32  # already fit: no copy
    with pytest.raises(ValueError, match=r"X must be shaped \(n, 6\)"):
        model.stage(X[:, :5], Y)
    with pytest.raises(ValueError, match="Y must be shaped"):
        model.stage(X, Y[:3])
    with pytest.raises(ValueError, match="outside"):
        model.train_epoch(data, 4, np.array([0, 23]))
    with pytest.raises(TypeError, match="fourth"):
        model.train_epoch(data, 4, np.arange(23), 1)
    with pytest.raises(TypeError, match="needs X and Y"):
        model.train_epoch(X)
    other = make_model("numpy-vec", spec, init_params(spec))
    with pytest.raises(ValueError, match="another model"):
        other.train_epoch(data, 4)


def test_torch_stages_tensors_on_its_device():
    require_backend("torch")
    import torch

    spec = _spec("float32")
    model = make_model("torch", spec, init_params(spec))
    X, Y = _problem(dtype="float32")
    data = model.stage(X, Y)
    assert isinstance(data.X, torch.Tensor) and data.X.device == model.device
    assert data.X.dtype == torch.float32
    # one-hot cce targets are staged as class indices (CrossEntropyLoss's fast path)
    assert data.Y.dtype == torch.int64 and data.Y.shape == (23,)
    assert np.isfinite(model.train_epoch(data, 8, np.random.default_rng(0).permutation(23)))
