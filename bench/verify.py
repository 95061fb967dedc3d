"""`python -m bench verify`: proof, on this machine, that the backends compute the same thing.

Every installed backend trains the same small network from the same weights on the same
sample orders, in its own worker process, and its parameters and predictions are compared
with numpy-vec's. Hyperparameters are exactly representable in float32 (momentum 0.875,
betas 0.875 and 0.9990234375, weight decay 2^-7), because Keras rounds Python-float
hyperparameters to float32 even in float64 work; Keras's Adam is compared with numpy-vec
using Keras's placement of epsilon (see impls.core.Adam).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from impls import BACKENDS, MLPSpec, available_backends, init_params, make_model
from impls.registry import parity_tolerance

from . import measure
from .worker import Worker, WorkerDied, WorkerTimeout

TOLERANCE = {"float32": 1e-4, "float64": 1e-9}
N, BATCH, EPOCHS = 100, 7, 3


def _cases():
    from .datasets import load_dataset

    ds = load_dataset("digits", seed=42, dtype="float64")
    X, Y = ds.X_train[:N], ds.Y_train[:N]
    rng = np.random.default_rng(0)
    orders = [rng.permutation(N) for _ in range(EPOCHS)]
    for dtype in ("float32", "float64"):
        for name, kwargs in (
            ("sgd+momentum", {"optimizer": "sgd", "momentum": 0.875, "lr": 0.0625}),
            ("adam", {"optimizer": "adam", "lr": 0.0078125, "betas": (0.875, 0.9990234375)}),
        ):
            spec = dict(
                layer_sizes=(64, 32, 10), loss="cce", weight_decay=2.0**-7, dtype=dtype, **kwargs
            )
            yield dtype, name, spec, X.astype(dtype), Y.astype(dtype), orders


def _reference(spec_kwargs, X, Y, orders, epsilon_on):
    spec = MLPSpec(**spec_kwargs)
    model = make_model("numpy-vec", spec, init_params(spec, seed=1), adam_epsilon_on=epsilon_on)
    for order in orders:
        model.train_epoch(X, Y, BATCH, order)
    return model.get_params(), model.predict_proba(X)


def _worst(params_a, proba_a, params_b, proba_b) -> float:
    diffs = [np.abs(a - b).max() for pa, pb in zip(params_a, params_b) for a, b in zip(pa, pb)]
    return float(max(max(diffs), np.abs(proba_a - proba_b).max()))


def run_verify(threads: int | None = None, out=sys.stdout) -> int:
    """Print the worst difference per backend and case; 0 if all within tolerance, else 1."""
    from .sweep import default_threads

    threads = threads or default_threads()
    backends = [
        b for b, reason in available_backends().items() if reason is None and b != "numpy-vec"
    ]
    missing = {b: r for b, r in available_backends().items() if r is not None}
    cases = list(_cases())
    print(
        f"parity after {EPOCHS} epochs, batch {BATCH}, {N} digits samples, "
        f"64-32-10 relu/softmax, cce, weight decay 2^-7, {threads} threads; "
        "worst |difference| from numpy-vec over parameters and predictions",
        file=out,
    )
    failed = False
    header = f"{'backend':<12}" + "".join(f"{d + ' ' + n:>24}" for d, n, *_ in cases)
    print(header, file=out)
    logs = tempfile.mkdtemp(prefix="mlp-bench-verify-")
    for backend in backends:
        log = os.path.join(logs, f"worker-{backend}.log")
        worker = Worker(backend, threads, log)
        cells = []
        try:
            worker.wait_ready(measure.Deadline(600))
            for dtype, name, spec, X, Y, orders in cases:
                params = init_params(MLPSpec(**spec), seed=1)
                worker.send(
                    "verify",
                    {
                        "spec": spec,
                        "params": params,
                        "X": X,
                        "Y": Y,
                        "orders": orders,
                        "batch_size": BATCH,
                    },
                )
                message = worker.receive(measure.Deadline(600))
                if message[0] != "value":
                    cells.append(f"{'error':>24}")
                    failed = True
                    print(f"{backend} {dtype} {name}: {message[1]}", file=sys.stderr)
                    continue
                placement = BACKENDS[backend].adam_epsilon_on
                ref = _reference(spec, X, Y, orders, placement)
                worst = _worst(message[1]["params"], message[1]["proba"], *ref)
                ok = worst <= parity_tolerance(backend, dtype)
                failed |= not ok
                cells.append(f"{worst:>18.1e} {'ok' if ok else 'FAIL':>5}")
        except (WorkerDied, WorkerTimeout) as exc:
            cells.append(f"  worker failed: {exc} (log: {log})")
            failed = True
        finally:
            worker.stop()
        print(f"{backend:<12}" + "".join(cells), file=out)
    for backend, reason in missing.items():
        print(f"{backend:<12}  not checked: {reason}", file=out)
    print(
        "tolerance: 1e-4 in float32, 1e-9 in float64 — "
        + ("all backends agree" if not failed else "SOME BACKENDS DISAGREE"),
        file=out,
    )
    return 1 if failed else 0
