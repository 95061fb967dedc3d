"""Staging on the peers: Keras (on each of its backends), JAX and scikit-learn keep a cell's
data as they compute on it, apply each epoch's order there, and train exactly as they do from
NumPy arrays. tests/test_staging.py checks the contract on the backends of this process; the
Keras peers need a process of their own (Keras reads its backend once per process), so their
cases run in a fresh interpreter here."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import require_backend

from impls import BACKENDS, MLPSpec, available_backends, init_params, make_model


def _problem(n=23, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(dtype)
    return X, np.eye(4, dtype=dtype)[rng.integers(0, 4, n)]


# shuffled orders, the fixed order (no gather), and a subset shorter than the data
ORDERS = [[int(i) for i in np.random.default_rng(e).permutation(23)] for e in range(2)]
ORDERS += [list(range(23)), [5, 0, 17, 3, 9]]


def staged_against_arrays(backend: str, dtype: str, optimizer: str = "adam") -> dict:
    """Train two models of `backend` from the same parameters, one from NumPy arrays each
    epoch, one from data staged once, over ORDERS at batch 4: the losses of both and the
    largest parameter difference, and the type of the staged arrays."""
    decay = 0.0 if backend == "sklearn" else 0.01
    spec = MLPSpec((6, 9, 4), optimizer=optimizer, lr=0.01, weight_decay=decay, dtype=dtype)
    params = init_params(spec, seed=1)
    X, Y = _problem(dtype=dtype)
    on_arrays, staged = make_model(backend, spec, params), make_model(backend, spec, params)
    data = staged.stage(X, Y)
    losses = []
    for order in ORDERS:
        order = np.array(order)
        losses.append([on_arrays.train_epoch(X, Y, 4, order), staged.train_epoch(data, 4, order)])
    worst = max(
        float(np.abs(a - b).max())
        for pa, pb in zip(staged.get_params(), on_arrays.get_params())
        for a, b in zip(pa, pb)
    )
    P = staged.predict_proba(data)  # where the staged data is, brought back as NumPy
    return {
        "losses": losses,
        "worst": worst,
        "type": f"{type(data.X).__module__}.{type(data.X).__name__}",
        "dtype": str(getattr(data.X, "dtype", "")),
        "predict_ok": bool(
            isinstance(P, np.ndarray) and np.allclose(P, staged.predict_proba(X), rtol=0, atol=0)
        ),
    }


def _in_subprocess(backend: str, dtypes: list[str]) -> dict:
    """{dtype: staged_against_arrays(backend, dtype)} from a fresh interpreter."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **dict(BACKENDS[backend].process_env)}
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        "import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "from test_staging_peers import staged_against_arrays as f; "
        "print(json.dumps({d: f(sys.argv[3], d) for d in sys.argv[4:]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, here, os.path.dirname(here), backend, *dtypes],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"{backend} subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# the staged arrays' type per backend: the framework's own tensors, or NumPy on the host
NATIVE = {
    "keras": "EagerTensor",
    "keras-jax": "ndarray",  # on the CPU, Keras's array adapter is its fast path (keras_mlp)
    "keras-torch": "Tensor",
    "jax": "ArrayImpl",
    "sklearn": "ndarray",
}


def _check(backend, result, dtype):
    for expected, got in result["losses"]:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert result["worst"] <= (1e-12 if dtype == "float64" else 1e-6)
    assert result["type"].endswith(NATIVE[backend]), result["type"]
    assert dtype in result["dtype"]
    assert result["predict_ok"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["keras", "jax", "sklearn"])
def test_staged_epochs_equal_epochs_on_arrays(backend, dtype):
    require_backend(backend)
    _check(
        backend,
        staged_against_arrays(backend, dtype, "sgd" if backend == "sklearn" else "adam"),
        dtype,
    )


@pytest.mark.parametrize("backend", ["keras-jax", "keras-torch"])
def test_keras_peers_stage_their_own_tensors(backend):
    reason = available_backends()[backend]  # not require_backend: it skips these in-process
    if reason is not None:
        pytest.skip(f"backend {backend}: {reason}")
    for dtype, result in _in_subprocess(backend, ["float32", "float64"]).items():
        _check(backend, result, dtype)


@pytest.mark.parametrize("n, batch_size", [(10, 4), (12, 4), (3, 4), (10, 1)])
def test_keras_epoch_batches_are_fits_batches(n, batch_size):
    """The batches handed to `fit` are those of fit(X[index], Y[index], batch_size,
    shuffle=False): consecutive slices, the last one smaller; with or without an index."""
    require_backend("keras")
    import keras

    from impls.keras_mlp import _epoch_batches, _epoch_dataset

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    Y = rng.normal(size=(n, 2)).astype(np.float32)
    Xt, Yt = keras.ops.convert_to_tensor(X), keras.ops.convert_to_tensor(Y)
    for index in (None, rng.permutation(n), np.array([n - 1, 0])):
        rows = np.arange(n) if index is None else index
        expected = [
            (X[rows][i : i + batch_size], Y[rows][i : i + batch_size])
            for i in range(0, len(rows), batch_size)
        ]
        for make in (_epoch_dataset, _epoch_batches):
            got = [
                (keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))
                for x, y in make(Xt, Yt, index, batch_size)
            ]
            assert len(got) == len(expected), make.__name__
            for (x, y), (ex, ey) in zip(got, expected):
                np.testing.assert_array_equal(x, ex)
                np.testing.assert_array_equal(y, ey)


def test_jax_stages_on_its_device_and_names_missing_gpus():
    require_backend("jax")
    import jax

    from impls.jax_mlp import device_of

    spec = MLPSpec((6, 9, 4), dtype="float32")
    model = make_model("jax", spec, init_params(spec))
    data = model.stage(*_problem(dtype="float32"))
    assert data.X.devices() == {model.device} == {jax.devices("cpu")[0]}
    with pytest.raises(ValueError, match=r"'cuda:99' was asked for but JAX has \d+ GPU\(s\)"):
        device_of(MLPSpec((6, 9, 4), device="cuda:99"))
    with pytest.raises(ValueError, match=r"cuda:99.*\(devices: .*cpu:0"):  # all JAX found
        make_model("jax", MLPSpec((6, 9, 4), device="cuda:99"), init_params(spec))


def test_jax_matmuls_are_full_float32_unless_tf32_is_allowed():
    require_backend("jax")
    import jax

    from impls.jax_mlp import matmul_precision

    spec = MLPSpec((6, 9, 4))
    assert matmul_precision(spec) == jax.lax.Precision.HIGHEST
    assert matmul_precision(dataclasses.replace(spec, tf32=True)) == jax.lax.Precision.DEFAULT


def _jax_gpu_reason():
    if available_backends()["jax"] is not None:
        return f"backend jax: {available_backends()['jax']}"
    import jax

    try:
        jax.devices("gpu")
    except RuntimeError:
        return "JAX sees no GPU here"
    return None


def test_jax_on_cuda_matches_the_cpu():
    """On a GPU (skipped without one): data staged there, the order applied there, and the
    same training as on the CPU to float32 parity (full float32 products, no TF32)."""
    reason = _jax_gpu_reason()
    if reason is not None:
        pytest.skip(reason)
    import jax

    X, Y = _problem(n=300, dtype="float32")
    results = {}
    for device in ("cpu", "cuda:0"):
        spec = MLPSpec((6, 64, 4), lr=0.05, momentum=0.875, dtype="float32", device=device)
        model = make_model("jax", spec, init_params(spec, seed=2))
        data = model.stage(X, Y)
        assert data.X.devices() == {model.device}
        if device != "cpu":
            assert model.device == jax.devices("gpu")[0]
        losses = [
            model.train_epoch(data, 32, np.random.default_rng(e).permutation(300)) for e in range(3)
        ]
        results[device] = (losses, model.get_params())
    (l_cpu, p_cpu), (l_gpu, p_gpu) = results["cpu"], results["cuda:0"]
    np.testing.assert_allclose(l_gpu, l_cpu, rtol=1e-5)
    for (W, b), (W2, b2) in zip(p_gpu, p_cpu):
        np.testing.assert_allclose(W, W2, atol=1e-4)
        np.testing.assert_allclose(b, b2, atol=1e-4)
