"""Benchmark fixtures: threads pinned once for every library, the matmul peak, the data.

`pytest tests/benchmarks --benchmark-only` measures; in the default test run the benchmarks
are disabled by tests/conftest.py and each one executes once, as a test.
"""

import os

import numpy as np
import pytest

from bench import measure
from bench.threads import pin_threads
from impls import available_backends

THREADS = int(os.environ.get("MLP_BENCH_THREADS", "0")) or len(os.sched_getaffinity(0))
BATCH_SIZES = (1, 32, 256, 1024)
BUDGET_S = float(os.environ.get("MLP_BENCH_BUDGET_S", "2.0"))  # timed seconds per benchmark


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    """Pin every installed framework to THREADS threads before it runs anything."""
    usable = [b for b, reason in available_backends().items() if reason is None]
    effective = {}
    for backend in ("torch", "keras"):
        if backend in usable:
            effective.update(pin_threads(THREADS, backend))
    effective.update(pin_threads(THREADS))
    return effective


@pytest.fixture(scope="session")
def matmul_peak(pinned_threads):
    """float32 GFLOP/s of NumPy's matmul with the same threads."""
    return measure.matmul_gflops("float32")


@pytest.fixture(scope="session")
def models():
    """name -> (layer sizes, X, Y) for the two benchmark models."""
    from bench.datasets import load_dataset

    digits = load_dataset("digits", seed=42)
    rng = np.random.default_rng(0)
    n = 2048
    X = rng.standard_normal((n, 784)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return {
        "digits-64-100-10": ((64, 100, 10), digits.X_train, digits.Y_train),
        "mnist-784-256-128-10": ((784, 256, 128, 10), X, Y),
    }


def run_benchmark(benchmark, fn, n_samples, n_weights, peak, info):
    """Time `fn` with pytest-benchmark: one warm-up round, then as many rounds as fit the
    budget (3..50); attach throughput, GFLOP/s and its share of the matmul peak."""
    if benchmark.disabled:
        benchmark(fn)  # runs `fn` once, untimed
        return
    _, first = measure.timed(fn)
    _, second = measure.timed(fn)
    rounds = int(min(50, max(3, BUDGET_S / max(second, 1e-6))))
    benchmark.extra_info.update(info, first_call_s=first, threads=THREADS)
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
    median = benchmark.stats.stats.median
    gflops = 6.0 * n_weights * n_samples / median / 1e9
    benchmark.extra_info.update(
        samples_per_s=n_samples / median, gflops=gflops, matmul_peak_gflops=peak,
        roofline=gflops / peak,
    )
