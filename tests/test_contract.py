"""The contract, checked the same way on every backend."""

import importlib.util

import numpy as np
import pytest
from conftest import require_backend

from impls import BackendUnavailable, MLPSpec, available_backends, init_params, make_model, registry


def _problem(n=30, n_in=6, k=4, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return X, Y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_and_dtypes(backend, dtype):
    spec = MLPSpec((6, 9, 5, 4), dtype=dtype)
    params = init_params(spec)
    model = make_model(backend, spec, params)
    X, Y = _problem(dtype=dtype)
    loss = model.train_epoch(X, Y, batch_size=8, order=np.arange(30)[::-1])
    assert isinstance(loss, float) and np.isfinite(loss)
    P = model.predict_proba(X)
    assert isinstance(P, np.ndarray) and P.shape == (30, 4) and P.dtype == np.dtype(dtype)
    got = model.get_params()
    assert [(W.shape, b.shape) for W, b in got] == [((6, 9), (9,)), ((9, 5), (5,)), ((5, 4), (4,))]
    assert all(isinstance(a, np.ndarray) and a.dtype == np.dtype(dtype) for p in got for a in p)


def test_get_set_round_trip(backend):
    spec = MLPSpec((6, 9, 4), dtype="float64")
    model = make_model(backend, spec, init_params(spec, seed=0))
    other = init_params(spec, seed=1, scheme="normal", scale=0.3, bias="like_weights")
    model.set_params(other)
    for (W, b), (W2, b2) in zip(model.get_params(), other):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    # get_params returns copies: changing them leaves the model alone
    got = model.get_params()
    got[0][0][:] = 0
    assert np.abs(model.get_params()[0][0]).sum() > 0
    with pytest.raises(ValueError, match="layer 0"):
        model.set_params([(np.zeros((5, 9)), np.zeros(9)), other[1]])


def test_deterministic(backend):
    spec = MLPSpec((6, 9, 4), optimizer="adam", lr=0.01)
    params = init_params(spec, seed=2)
    X, Y = _problem()
    runs = []
    for _ in range(2):
        model = make_model(backend, spec, params)
        losses = [
            model.train_epoch(X, Y, 7, np.random.default_rng(e).permutation(30)) for e in range(3)
        ]
        runs.append((losses, model.get_params(), model.predict_proba(X)))
    assert runs[0][0] == runs[1][0]
    for (W, b), (W2, b2) in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_loss_decreases_on_digits(backend, digits):
    X_tr, Y_tr, _, _ = digits
    spec = MLPSpec((64, 32, 10), lr=0.1)
    model = make_model(backend, spec, init_params(spec, seed=0))
    losses = [
        model.train_epoch(X_tr, Y_tr, 32, np.random.default_rng(e).permutation(len(X_tr)))
        for e in range(4)
    ]
    assert losses[0] > 1.0 and losses[-1] < 0.6 * losses[0]
    assert all(a > b for a, b in zip(losses, losses[1:]))


@pytest.mark.parametrize(
    "loss,output", [("cce", "softmax"), ("mse", "softmax"), ("bce", "sigmoid"), ("mse", "linear")]
)
def test_output_activations(backend, loss, output):
    spec = MLPSpec((6, 9, 4), loss=loss, output=output)
    model = make_model(backend, spec, init_params(spec, scheme="normal", scale=2.0))
    X, _ = _problem()
    P = model.predict_proba(X * 10)
    if output == "softmax":
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
        assert (P >= 0).all()
    elif output == "sigmoid":
        assert ((P >= 0) & (P <= 1)).all()
    else:
        assert (P < 0).any()  # linear: unbounded


def test_order_semantics(backend):
    spec = MLPSpec((6, 9, 4), dtype="float64")
    params = init_params(spec)
    X, Y = _problem(dtype="float64")

    def run(batch_size, order, X=X, Y=Y):
        model = make_model(backend, spec, params)
        loss = model.train_epoch(X, Y, batch_size, order)
        return loss, model.get_params()[0][0]

    def assert_same(a, b):
        assert a[0] == pytest.approx(b[0], rel=1e-12)
        np.testing.assert_allclose(a[1], b[1], atol=1e-12)

    # no order means the natural order; a batch larger than the data is one batch
    assert_same(run(7, None), run(7, np.arange(30)))
    assert_same(run(1000, None), run(30, None))
    # a subset of indices, in any order, is an epoch over those samples only, in that order
    subset = np.array([17, 3, 25, 8, 0, 11, 29, 4, 20])
    assert_same(run(4, subset), run(4, None, X[subset], Y[subset]))
    # and the order matters: the same samples reversed end elsewhere
    assert not np.allclose(run(4, subset)[1], run(4, subset[::-1])[1])


def test_bad_inputs_raise_value_error(backend):
    spec = MLPSpec((6, 9, 4))
    model = make_model(backend, spec, init_params(spec))
    X, Y = _problem()
    with pytest.raises(ValueError, match=r"X must be shaped \(n, 6\)"):
        model.train_epoch(X[:, :5], Y, 4)
    with pytest.raises(ValueError, match="Y must be shaped"):
        model.train_epoch(X, Y[:, :3], 4)
    with pytest.raises(ValueError, match="batch_size"):
        model.train_epoch(X, Y, 0)
    with pytest.raises(ValueError, match="outside"):
        model.train_epoch(X, Y, 4, order=np.array([0, 30]))
    with pytest.raises(ValueError, match="empty"):
        model.train_epoch(X, Y, 4, order=np.array([], dtype=int))
    with pytest.raises(ValueError, match=r"X must be shaped \(n, 6\)"):
        model.predict_proba(X[:, :2])
    with pytest.raises(ValueError, match="2 \\(W, b\\) pairs"):
        make_model(backend, spec, init_params(spec)[:1])


def test_unknown_backend_suggests_closest():
    spec = MLPSpec((2, 3, 2))
    with pytest.raises(ValueError, match=r"unknown backend 'numpy-vex'.*did you mean 'numpy-vec'"):
        make_model("numpy-vex", spec, init_params(spec))


def test_cpu_only_backends_refuse_cuda():
    spec = MLPSpec((2, 3, 2), device="cuda")
    for name in ("numpy-loop", "numpy-vec"):
        with pytest.raises(ValueError, match="runs on cpu only, got device 'cuda'"):
            make_model(name, spec, init_params(spec))


def test_torch_cuda_request_without_cuda_is_an_error():
    require_backend("torch")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    spec = MLPSpec((2, 3, 2), device=f"cuda:{count}")  # one past the last device there is
    with pytest.raises(ValueError, match=f"torch sees {count} CUDA device"):
        make_model("torch", spec, init_params(spec))


def test_missing_framework_is_a_clear_message(monkeypatch):
    real_find_spec = registry.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "torch" else real_find_spec(name, *args)

    monkeypatch.setattr(registry.importlib.util, "find_spec", find_spec)
    reason = available_backends()["torch"]
    assert reason == 'PyTorch is not installed: pip install "mlp-bench[torch]"'
    spec = MLPSpec((2, 3, 2))
    with pytest.raises(BackendUnavailable, match=r"mlp-bench\[torch\]"):
        make_model("torch", spec, init_params(spec))


def test_keras_backend_setting_is_honoured(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    assert "cannot train" in available_backends()["keras"]
    if importlib.util.find_spec("keras") is None:
        return  # the Keras backends below are then all reported as Keras missing
    for keras_backend, module in registry.KERAS_BACKEND_MODULES.items():
        monkeypatch.setenv("KERAS_BACKEND", keras_backend)
        reason = available_backends()["keras"]
        if importlib.util.find_spec(module) is None:
            assert f"Keras backend {keras_backend!r} is not installed" in reason
        else:
            assert reason is None, keras_backend


def _traced_functions(fn, seen=None):
    """The tf.function objects reachable from `fn` through closures (Keras's train function
    is a Python closure over its tf.functions)."""
    seen = set() if seen is None else seen
    found = []
    if id(fn) in seen:
        return found
    seen.add(id(fn))
    if hasattr(fn, "experimental_get_tracing_count"):
        found.append(fn)
        fn = getattr(fn, "python_function", None)
    for cell in getattr(fn, "__closure__", None) or ():
        contents = cell.cell_contents
        if callable(contents):
            found += _traced_functions(contents, seen)
    return found


def test_keras_does_not_retrace_across_epochs():
    """The full batch and the smaller last batch are traced in the first epochs; later
    epochs (each a new `fit` call) reuse the traces."""
    require_backend("keras")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tracing counts are a TensorFlow notion")
    spec = MLPSpec((6, 9, 4))
    model = make_model("keras", spec, init_params(spec))
    X, Y = _problem(n=30)
    model.train_epoch(X, Y, 8)  # 3 batches of 8 and one of 6
    model.train_epoch(X, Y, 8)
    train_function = model.model.train_function
    functions = _traced_functions(train_function)
    assert functions, "no tf.function found behind Keras's train function"
    traced = [f.experimental_get_tracing_count() for f in functions]
    assert sum(traced) >= 1
    for _ in range(3):
        model.train_epoch(X, Y, 8)
    assert model.model.train_function is train_function
    assert [f.experimental_get_tracing_count() for f in functions] == traced


# --------------------------------------------------------------------------- keras: feeding fit
# The keras backend feeds `fit` a tf.data.Dataset on TensorFlow, and can run several steps per
# execution (`steps_per_execution`). Neither may change what is computed: these tests pin both
# to a plain `fit` over the ordered arrays, smaller last batch included.


def _keras_run(options, batch_size=7, epochs=3):
    """(epoch losses, params, warnings) of the keras backend in float64 on a 30-sample problem."""
    import warnings

    spec = MLPSpec((6, 9, 4), dtype="float64", optimizer="adam", lr=0.01, weight_decay=0.01)
    X, Y = _problem(dtype="float64")
    model = make_model("keras", spec, init_params(spec, seed=3), **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses = [
            model.train_epoch(X, Y, batch_size, np.random.default_rng(e).permutation(30))
            for e in range(epochs)
        ]
    return losses, model.get_params(), [str(w.message) for w in caught]


def test_keras_epoch_is_a_plain_fit_over_the_ordered_arrays():
    require_backend("keras")
    from impls.keras_mlp import floatx

    losses, params, _ = _keras_run({})
    spec = MLPSpec((6, 9, 4), dtype="float64", optimizer="adam", lr=0.01, weight_decay=0.01)
    X, Y = _problem(dtype="float64")
    plain = make_model("keras", spec, init_params(spec, seed=3))
    for e, loss in enumerate(losses):
        order = np.random.default_rng(e).permutation(30)
        with floatx("float64"):
            history = plain.model.fit(
                X[order], Y[order], batch_size=7, epochs=1, shuffle=False, verbose=0
            )
        np.testing.assert_allclose(loss, history.history["data_loss"][-1], rtol=1e-12)
    for (W, b), (W2, b2) in zip(params, plain.get_params()):
        np.testing.assert_allclose(W, W2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("steps", [2, 5, 16])  # 5 batches: 4 of 7, one of 2
def test_keras_steps_per_execution_changes_nothing_computed(steps):
    require_backend("keras")
    losses, params, _ = _keras_run({})
    losses_k, params_k, caught = _keras_run({"steps_per_execution": steps})
    np.testing.assert_allclose(losses_k, losses, rtol=1e-12)
    for (W, b), (W2, b2) in zip(params_k, params):
        np.testing.assert_allclose(W, W2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b2, rtol=1e-12, atol=1e-14)
    assert not [m for m in caught if "ran out of data" in m]


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_keras_steps_per_execution_must_be_a_positive_integer(steps):
    require_backend("keras")
    spec = MLPSpec((6, 9, 4))
    with pytest.raises(ValueError, match="steps_per_execution"):
        make_model("keras", spec, init_params(spec), steps_per_execution=steps)


def test_epoch_gather_reuses_buffers_and_skips_the_identity_order():
    spec = MLPSpec((4, 3, 2), dtype="float32")
    model = make_model("numpy-vec", spec, init_params(spec, seed=0))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 4)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 6)]
    Xi, Yi = model._gather(X, Y, np.arange(6))
    assert Xi is X and Yi is Y  # the fixed order: no copy
    perm = rng.permutation(6)
    Xo, Yo = model._gather(X, Y, perm)
    np.testing.assert_array_equal(Xo, X[perm])
    np.testing.assert_array_equal(Yo, Y[perm])
    Xo2, _ = model._gather(X, Y, perm[::-1])
    assert Xo2 is Xo  # the same buffer every epoch
    np.testing.assert_array_equal(Xo2, X[perm[::-1]])
    X64 = X.astype(np.float64)
    Xc, _ = model._gather(X64, Y, np.arange(6))  # another dtype: converted into the buffer
    assert Xc.dtype == np.float32 and Xc is not X64
    np.testing.assert_array_equal(Xc, X)
    sub, _ = model._gather(X, Y, np.arange(3))  # a subset in order is still gathered
    np.testing.assert_array_equal(sub, X[:3])
    X_before = X.copy()
    model.train_epoch(X, Y, 2, perm)
    np.testing.assert_array_equal(X, X_before)  # the caller's data is never written


@pytest.mark.parametrize("spec_dtype", ["float32", "float64"])
def test_params_of_any_float_dtype_and_memory_order_are_accepted(backend, spec_dtype):
    """Every backend converts the parameters at its edge: float32, float64, Fortran-ordered
    or strided arrays, to make_model and to set_params, without changing their values."""
    spec = MLPSpec((6, 9, 4), dtype=spec_dtype)
    reference = init_params(spec, seed=4, bias="like_weights")
    variants = {
        "float64": [(W.astype(np.float64), b.astype(np.float64)) for W, b in reference],
        "float32": [(W.astype(np.float32), b.astype(np.float32)) for W, b in reference],
        "fortran": [(np.asfortranarray(W.astype(np.float64)), b) for W, b in reference],
        "strided": [(np.repeat(W, 2, axis=1)[:, ::2], np.repeat(b, 2)[::2]) for W, b in reference],
    }
    X, _ = _problem(dtype=spec_dtype)
    expected = make_model(backend, spec, reference).predict_proba(X)
    for name, params in variants.items():
        for model in (make_model(backend, spec, params), make_model(backend, spec, reference)):
            model.set_params(params)
            for (W, b), (W_in, b_in) in zip(model.get_params(), params):
                assert W.dtype == b.dtype == np.dtype(spec_dtype), name
                np.testing.assert_array_equal(W, W_in.astype(spec_dtype), err_msg=name)
                np.testing.assert_array_equal(b, b_in.astype(spec_dtype), err_msg=name)
            # float32 values in a float64 model differ from the reference by their rounding
            np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-6, atol=1e-6)
    # the caller's arrays are never written: training works on the backend's own copy
    params = variants["fortran"]
    before = [(W.copy(), b.copy()) for W, b in params]
    model = make_model(backend, spec, params)
    model.train_epoch(*_problem(dtype=spec_dtype), batch_size=8)
    for (W, b), (W0, b0) in zip(params, before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_train_epoch_takes_the_contracts_two_call_shapes():
    """train_epoch(data, batch_size, order) on staged data and train_epoch(X, Y, batch_size,
    order) on arrays, positional or by keyword, train alike; a call that fits neither shape
    says which shapes there are."""
    spec = MLPSpec((6, 9, 4), dtype="float64")
    X, Y = _problem(dtype="float64")
    order = np.random.default_rng(1).permutation(30)
    calls = {
        "staged": lambda m: m.train_epoch(m.stage(X, Y), 8, order),
        "staged, keywords": lambda m: m.train_epoch(data=m.stage(X, Y), batch_size=8, order=order),
        "arrays": lambda m: m.train_epoch(X, Y, 8, order),
        "arrays, keywords": lambda m: m.train_epoch(X=X, Y=Y, batch_size=8, order=order),
    }
    losses, params = {}, {}
    for name, call in calls.items():
        model = make_model("numpy-vec", spec, init_params(spec, seed=0))
        losses[name] = call(model)
        params[name] = model.get_params()
    assert len(set(losses.values())) == 1, losses
    for got in params.values():
        for (W, b), (W0, b0) in zip(got, params["staged"]):
            np.testing.assert_array_equal(W, W0)
            np.testing.assert_array_equal(b, b0)
    model = make_model("numpy-vec", spec, init_params(spec, seed=0))
    data = model.stage(X, Y)
    assert np.isfinite(model.train_epoch(data, 8))  # order None: 0..n-1
    with pytest.raises(TypeError, match=r"train_epoch\(data, batch_size, order\).*fourth"):
        model.train_epoch(data, Y, 8, order)  # Y given again with staged data
    with pytest.raises(TypeError, match="batch_size"):
        model.train_epoch(data)
    with pytest.raises(TypeError, match="needs X and Y"):
        model.train_epoch(X, batch_size=8)
    with pytest.raises(TypeError, match="needs X and Y"):
        model.train_epoch(X, Y, 8, order, "extra")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.train_epoch(X, Y, "8")
