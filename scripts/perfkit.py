"""What scripts/perf-table, scripts/perf-model and scripts/blas-check measure, in one place:
the matrix products of one training step timed alone (NumPy and torch), whole epochs through
the contract API, and the per-operation profile (the share of an epoch outside the products).

Run from a checkout: the scripts put the repository root on sys.path. Every timing is the
best of a few repeats in this process; run on a quiet machine (the scripts print the load).
PERF_TINY=1 (or --tiny) shrinks every size to a smoke test of a few seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.worker.envinfo import blas, cpu_model  # noqa: E402
from bench.worker.threads import pin_threads  # noqa: E402
from impls import MLPSpec, init_params, make_model  # noqa: E402

FULL = {
    "sizes": (784, 256, 128, 10),
    "n": 8192,
    "batches": (8, 32, 128, 1024),
    "epochs": 3,
    "repeats": 7,
    "runs": 3,
    "tiny": False,
}
TINY = {
    "sizes": (32, 16, 8, 4),
    "n": 256,
    "batches": (4, 16),
    "epochs": 2,
    "repeats": 2,
    "runs": 1,
    "tiny": True,
}


def settings(tiny: bool = False) -> dict:
    """The sizes of a full measurement, or of a smoke test (tiny, or PERF_TINY=1)."""
    return dict(TINY if tiny or os.environ.get("PERF_TINY") == "1" else FULL)


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{cpu_model()}; NumPy {np.__version__} with {blas()}; load average {load}"


def products(sizes, batch: int):
    """The products of one training step (MLPSpec.step_products)."""
    return MLPSpec(sizes).step_products(batch)


def _best(fn, repeats: int) -> float:
    fn()  # warm: first-touch pages, BLAS buffers
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def numpy_products_s(sizes, batch: int, repeats: int, dtype="float32") -> dict[str, float]:
    """Best time of each product of one step in NumPy (np.dot, as the core calls it)."""
    rng = np.random.default_rng(0)
    times = {}
    for name, a_shape, a_t, b_shape, b_t in products(sizes, batch):
        a = rng.standard_normal(a_shape).astype(dtype)
        b = rng.standard_normal(b_shape).astype(dtype)
        a, b = (a.T if a_t else a), (b.T if b_t else b)
        times[name] = _best(lambda a=a, b=b: np.dot(a, b), repeats)
    return times


def torch_products_s(sizes, batch: int, repeats: int, dtype="float32") -> dict[str, float] | None:
    """The same products in torch (torch.mm), or None where torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    times = {}
    with torch.no_grad():
        for name, a_shape, a_t, b_shape, b_t in products(sizes, batch):
            a = torch.from_numpy(rng.standard_normal(a_shape).astype(dtype))
            b = torch.from_numpy(rng.standard_normal(b_shape).astype(dtype))
            a, b = (a.t() if a_t else a), (b.t() if b_t else b)
            times[name] = _best(lambda a=a, b=b: torch.mm(a, b), repeats)
    return times


def data(sizes, n: int, dtype="float32"):
    """n synthetic samples: standard normal features, one-hot labels of random classes."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    return X, Y


def best_epoch_s(backend: str, sizes, X, Y, batch: int, optimizer: str, epochs: int) -> float:
    """The best of `epochs` timed epochs (after one untimed) through the contract API: the
    model stages the data once, each epoch gets a new shuffled order."""
    spec = MLPSpec(sizes, loss="cce", optimizer=optimizer, lr=0.01 if optimizer == "sgd" else 1e-3)
    model = make_model(backend, spec, init_params(spec, seed=0))
    staged = model.stage(X, Y)
    rng = np.random.default_rng(1)
    model.train_epoch(staged, batch, rng.permutation(len(X)))
    best = float("inf")
    for _ in range(epochs):
        order = rng.permutation(len(X))
        start = time.perf_counter()
        model.train_epoch(staged, batch, order)
        best = min(best, time.perf_counter() - start)
    return best


def use_threads(n: int, backend: str | None = "torch") -> dict:
    """Pin this process to n threads: BLAS, the hand-written backends' element-wise work and
    (if installed) torch, as a bench worker does."""
    try:
        return pin_threads(n, backend)
    except ImportError:
        return pin_threads(n, None)


def profile(sizes, X, Y, batch: int, threads: int, cfg: dict) -> dict:
    """The per-operation profile of one backend pair at `threads`: for numpy-vec and torch,
    the best epoch, the step's products timed alone times the steps per epoch, and the share
    of the epoch outside the products (element-wise work, the batch gather, Python)."""
    use_threads(threads)
    steps = -(-len(X) // batch)
    full_steps, last = divmod(len(X), batch)
    out = {}
    for backend, timer in (("numpy-vec", numpy_products_s), ("torch", torch_products_s)):
        per_step = timer(sizes, batch, cfg["repeats"])
        if per_step is None:
            continue
        products_s = sum(per_step.values()) * full_steps
        if last:
            products_s += sum(timer(sizes, last, cfg["repeats"]).values())
        epoch_s = best_epoch_s(backend, sizes, X, Y, batch, "sgd", cfg["epochs"])
        out[backend] = {
            "epoch_s": epoch_s,
            "products_s": products_s,
            "other_s": max(epoch_s - products_s, 0.0),
            "other_share": max(1.0 - products_s / epoch_s, 0.0),
            "steps": steps,
        }
    return out


def spread(values) -> str:
    """median (min–max) of a list of ratios or seconds."""
    v = sorted(values)
    med = float(np.median(v))
    return f"{med:.2f}" if len(v) == 1 else f"{med:.2f} ({v[0]:.2f}–{v[-1]:.2f})"
