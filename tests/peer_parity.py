"""Parity of one backend with numpy-vec over a matrix of cases; importable, or run as a script.

`python tests/peer_parity.py BACKEND CASES_JSON` prints one JSON line: case id -> worst
difference over parameters and predictions after the epochs, and the worst loss difference.
The Keras peers are checked this way, in a process of their own, because Keras reads its
backend once per process (the test process may already hold Keras on TensorFlow).
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


def compare_in_subprocess(backend: str, cases: list[dict], timeout: float = 600) -> dict:
    """compare() for each case in a fresh interpreter: {case_id: [worst, loss_diff]}."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, backend, json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"parity subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    name, given = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({case_id(c): compare(name, c) for c in given}))
