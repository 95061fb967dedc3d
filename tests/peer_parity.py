"""Checks of one backend against numpy-vec and against itself; importable, or run as a script.

- `compare`: parity with numpy-vec over a matrix of cases (worst difference over parameters
  and predictions after the epochs, and the worst loss difference);
- `staged_against_arrays`: the same model trained from data staged once and from NumPy arrays
  each epoch, over shuffled, fixed and partial orders.

`python tests/peer_parity.py BACKEND CASES_JSON DTYPES_JSON` prints one JSON line with both
for the cases and dtypes given (`checks_in_subprocess`). The Keras peers are checked this way,
in one process of their own each, because Keras reads its backend once per process (the test
process may already hold Keras on TensorFlow), and starting Keras on JAX or PyTorch is most
of what checking it costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

TOL = {"float32": 1e-4, "float64": 1e-9}
LAYERS = (5, 8, 6, 3)
N_SAMPLES, EPOCHS = 30, 3  # batch 7: a short last batch every epoch
# exactly representable in float32: Keras rounds Python-float hyperparameters to float32
HYPER = {"momentum": 0.875, "betas": (0.875, 0.9990234375), "decay": 2.0**-7}


def case_id(case: dict) -> str:
    return "-".join(str(case[k]) for k in ("loss", "output", "opt", "decay", "batch", "dtype"))


def make_case(loss, opt, decay, dtype, batch=7, output=None) -> dict:
    output = output or {"cce": "softmax", "bce": "sigmoid", "mse": "linear"}[loss]
    return dict(loss=loss, output=output, opt=opt, decay=decay, batch=batch, dtype=dtype)


def _spec(case):
    from impls import MLPSpec

    adam = case["opt"] == "adam"
    return MLPSpec(
        LAYERS,
        loss=case["loss"],
        output=case["output"],
        optimizer="adam" if adam else "sgd",
        momentum=HYPER["momentum"] if case["opt"] == "sgd+momentum" else 0.0,
        betas=HYPER["betas"],
        lr=0.01 if adam else 0.05,
        weight_decay=HYPER["decay"] if case["decay"] else 0.0,
        dtype=case["dtype"],
    )


def _data(case):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N_SAMPLES, LAYERS[0])).astype(case["dtype"])
    if case["loss"] == "bce":
        Y = rng.integers(0, 2, size=(N_SAMPLES, LAYERS[-1]))
    else:
        Y = np.eye(LAYERS[-1])[rng.integers(0, LAYERS[-1], N_SAMPLES)]
    return X, Y.astype(case["dtype"])


def _train(backend, spec, X, Y, batch, **options):
    from impls import init_params, make_model

    model = make_model(backend, spec, init_params(spec, seed=5), **options)
    losses = [
        model.train_epoch(X, Y, batch, np.random.default_rng(100 + e).permutation(len(X)))
        for e in range(EPOCHS)
    ]
    return model.get_params(), model.predict_proba(X), np.array(losses)


def compare(backend: str, case: dict) -> tuple[float, float]:
    """(worst |difference| over parameters and predictions, worst loss difference)."""
    from impls.registry import BACKENDS

    spec = _spec(case)
    X, Y = _data(case)
    placement = BACKENDS[backend].adam_epsilon_on
    ref = _train("numpy-vec", spec, X, Y, case["batch"], adam_epsilon_on=placement)
    got = _train(backend, spec, X, Y, case["batch"])
    diffs = [np.abs(a - b).max() for pa, pb in zip(ref[0], got[0]) for a, b in zip(pa, pb)]
    worst = max(max(diffs), np.abs(ref[1] - got[1]).max())
    return float(worst), float(np.abs(ref[2] - got[2]).max())


# --------------------------------------------------------------------------- staging


def problem(n=23, seed=0, dtype="float64"):
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
    from impls import MLPSpec, init_params, make_model

    decay = 0.0 if backend == "sklearn" else 0.01
    spec = MLPSpec((6, 9, 4), optimizer=optimizer, lr=0.01, weight_decay=decay, dtype=dtype)
    params = init_params(spec, seed=1)
    X, Y = problem(dtype=dtype)
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


# the staged arrays' type per backend: the framework's own tensors, or NumPy on the host
NATIVE = {
    "keras": "EagerTensor",
    "keras-jax": "ndarray",  # on the CPU, Keras's array adapter is its fast path (keras_mlp)
    "keras-torch": "Tensor",
    "jax": "ArrayImpl",
    "sklearn": "ndarray",
}


def check_staged(backend, result, dtype):
    """Assert that a `staged_against_arrays` result shows staging changed nothing computed."""
    import pytest

    for expected, got in result["losses"]:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert result["worst"] <= (1e-12 if dtype == "float64" else 1e-6)
    assert result["type"].endswith(NATIVE[backend]), result["type"]
    assert dtype in result["dtype"]
    assert result["predict_ok"]


# --------------------------------------------------------------------------- in a process


def checks(backend: str, cases: list[dict], dtypes: list[str]) -> dict:
    """{"parity": {case_id: [worst, loss_diff]}, "staging": {dtype: staged_against_arrays}}."""
    return {
        "parity": {case_id(c): list(compare(backend, c)) for c in cases},
        "staging": {d: staged_against_arrays(backend, d) for d in dtypes},
    }


def checks_in_subprocess(
    backend: str, cases: list[dict], dtypes: list[str], timeout: float = 600
) -> dict:
    """`checks` in a fresh interpreter with the backend's own environment (KERAS_BACKEND)."""
    from impls.registry import BACKENDS

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **dict(BACKENDS[backend].process_env)}
    done = subprocess.run(
        [sys.executable, __file__, backend, json.dumps(cases), json.dumps(dtypes)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"{backend} subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(json.dumps(checks(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]))))
