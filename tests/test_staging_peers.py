"""Staging on the peers: Keras (on each of its backends), JAX and scikit-learn keep a cell's
data as they compute on it, apply each epoch's order there, and train exactly as they do from
NumPy arrays. tests/test_staging.py checks the contract on the backends of this process; the
Keras peers need a process of their own (Keras reads its backend once per process): their
cases run in tests/test_peers_keras.py, in the process that checks their parity."""

import dataclasses

import numpy as np
import pytest
from conftest import require_backend
from peer_parity import check_staged, problem, staged_against_arrays

from impls import MLPSpec, available_backends, init_params, make_model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["keras", "jax", "sklearn"])
def test_staged_epochs_equal_epochs_on_arrays(backend, dtype):
    require_backend(backend)
    check_staged(
        backend,
        staged_against_arrays(backend, dtype, "sgd" if backend == "sklearn" else "adam"),
        dtype,
    )


@pytest.mark.parametrize("n, batch_size", [(10, 4), (12, 4), (3, 4), (10, 1)])
def test_keras_epoch_batches_are_fits_batches(n, batch_size):
    """The batches handed to `fit` are those of fit(X[index], Y[index], batch_size,
    shuffle=False): consecutive slices, the last one smaller; with or without an index."""
    require_backend("keras")
    import keras

    from impls.keras_mlp import epoch_batches, epoch_dataset

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
        for make in (epoch_dataset, epoch_batches):
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
    data = model.stage(*problem(dtype="float32"))
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

    X, Y = problem(n=300, dtype="float32")
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
