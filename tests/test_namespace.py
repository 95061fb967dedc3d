"""The hand-written core is namespace-generic: the same source on NumPy and on a strict
array-API namespace (array_api_strict), which rejects anything NumPy-only, gives the same
numbers. This is what lets the same core run on other array libraries (CuPy on a GPU)."""

import types

import numpy as np
import pytest

from impls import MLPSpec, core, init_params, make_model
from impls.spec import ACTIVATION_NAMES, LOSS_OUTPUTS

xps = pytest.importorskip(
    "array_api_strict", reason='array_api_strict is not installed: pip install "mlp-bench[dev]"'
)
LOSS_OUTPUT_PAIRS = [(loss, out) for loss, outs in LOSS_OUTPUTS.items() for out in outs]
OPTIMIZERS = [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)]


def _problem(loss, n=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if loss == "bce":
        Y = rng.integers(0, 2, size=(n, 3)).astype(float)
    elif loss == "mse":
        Y = rng.normal(size=(n, 3))
    else:
        Y = rng.dirichlet(np.ones(3), size=n)
    return X, Y


def _strict(a):
    return xps.asarray(a)


def test_namespace_of_each_kind_of_array():
    assert core.namespace(np.zeros(2)) is core.NUMPY
    assert core.namespace(_strict(np.zeros(2))) is xps


@pytest.mark.parametrize("loss,output", LOSS_OUTPUT_PAIRS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_core_gradients_agree_across_namespaces(activation, loss, output):
    spec = MLPSpec(
        (5, 4, 3, 3),
        activation=activation,
        loss=loss,
        output=output,
        weight_decay=0.1,
        dtype="float64",
    )
    X, Y = _problem(loss)
    params = init_params(spec, seed=1, bias="like_weights")
    results = {}
    for name, convert in (("numpy", np.asarray), ("strict", _strict)):
        p = [(convert(W), convert(b)) for W, b in params]
        losses, grads = core.gradients(p, convert(X), convert(Y), spec, 1.0 / len(X))
        core.add_weight_decay(p, grads, spec.weight_decay)
        proba = core.predict(p, convert(X), spec.activation, spec.output)
        results[name] = [np.asarray(a) for a in (losses, proba, *[g for gs in grads for g in gs])]
        assert all(core.namespace(g) is core.namespace(p[0][0]) for gs in grads for g in gs)
    for a, b in zip(results["numpy"], results["strict"]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("optimizer,momentum", OPTIMIZERS)
@pytest.mark.parametrize("backend", ["numpy-vec", "numpy-loop"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_train_the_same_on_a_strict_namespace(backend, optimizer, momentum, dtype):
    """Whole epochs through the backend classes with xp=array_api_strict end where NumPy ends."""
    spec = MLPSpec(
        (5, 6, 3), optimizer=optimizer, momentum=momentum, weight_decay=0.01, lr=0.05, dtype=dtype
    )
    X, Y = _problem("cce", n=11)
    params = init_params(spec, seed=2)
    runs = []
    for xp in (np, xps):
        model = make_model(backend, spec, params, xp=xp)
        losses = [
            model.train_epoch(X, Y, 4, np.random.default_rng(e).permutation(11)) for e in range(2)
        ]
        runs.append((losses, model.get_params(), model.predict_proba(X)))
        assert all(core.namespace(W) is core.namespace(xp.asarray(0.0)) for W, _ in model.params)
    (losses_np, params_np, proba_np), (losses_s, params_s, proba_s) = runs
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(losses_s, losses_np, rtol=tol)
    np.testing.assert_allclose(proba_s, proba_np, rtol=tol, atol=tol)
    for (W, b), (W2, b2) in zip(params_s, params_np):
        assert W.dtype == np.dtype(dtype)
        np.testing.assert_allclose(W, W2, rtol=tol, atol=tol)
        np.testing.assert_allclose(b, b2, rtol=tol, atol=tol)


def test_staged_data_stays_in_the_namespace_as_on_a_gpu():
    """The cupy backend's path, on the CPU: staged once into the namespace's arrays, each epoch's
    order applied there (a take), predictions made from the staged arrays, all equal to NumPy."""
    spec = MLPSpec((5, 6, 3), optimizer="adam", lr=0.05, weight_decay=0.01, dtype="float64")
    X, Y = _problem("cce", n=11)
    params = init_params(spec, seed=3)
    orders = [np.random.default_rng(1).permutation(11), np.arange(11), np.array([3, 0, 7])]
    runs = []
    for xp in (np, xps):
        model = make_model("numpy-vec", spec, params, xp=xp)
        data = model.stage(X, Y)
        assert core.namespace(data.X) is core.namespace(xp.asarray(0.0))
        losses = [model.train_epoch(data, 4, order) for order in orders]
        proba = model.predict_proba(data)
        assert isinstance(proba, np.ndarray) and proba.shape == (11, 3)
        runs.append((losses, proba, model.get_params()))
    (losses_np, proba_np, params_np), (losses_s, proba_s, params_s) = runs
    np.testing.assert_allclose(losses_s, losses_np, rtol=1e-13)
    np.testing.assert_allclose(proba_s, proba_np, rtol=1e-13, atol=1e-15)
    for (W, b), (W2, b2) in zip(params_s, params_np):
        np.testing.assert_allclose(W, W2, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(b, b2, rtol=1e-13, atol=1e-15)


def test_to_numpy_of_each_kind_of_array():
    a = np.arange(3.0)
    assert core.to_numpy(a) is a
    np.testing.assert_array_equal(core.to_numpy(xps.asarray(a)), a)


def test_column_sums_by_product_equal_the_sums():
    """The CuPy namespace's one exception (bias gradients as 1^T delta in cuBLAS), checked
    with NumPy standing in for CuPy: the same sums, and the plain sum everywhere else."""

    class Array(np.ndarray):  # a NumPy array with CuPy's `device` attribute
        device = types.SimpleNamespace(id=0)

    column_sums = core._column_sums_by_product(np)
    x = np.random.default_rng(0).normal(size=(37, 5)).view(Array)
    np.testing.assert_allclose(column_sums(x, axis=0), x.sum(axis=0), rtol=1e-13)
    np.testing.assert_array_equal(column_sums(x, axis=1), x.sum(axis=1))
    np.testing.assert_array_equal(column_sums(x, axis=0, keepdims=True), x.sum(0, keepdims=True))
    np.testing.assert_array_equal(column_sums(x.T, axis=0), x.T.sum(axis=0))  # not row-major
    assert column_sums(x) == x.sum()
    np.testing.assert_allclose(column_sums(x[:7], axis=0), x[:7].sum(axis=0), rtol=1e-13)
