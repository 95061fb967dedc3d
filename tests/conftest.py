"""Shared fixtures. Frameworks are never imported here: tests ask for a backend and are
skipped, with the install command as the reason, when its framework is missing."""

import os

# Quiet TensorFlow's C++ logging; must be set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Runs write summary.md without figures (about a second each, in every `bench run` a test
# starts); the tests that look at figures ask for them (plots=True, or MLP_BENCH_NO_PLOTS="").
os.environ.setdefault("MLP_BENCH_NO_PLOTS", "1")
# scikit-learn's splits are cached (bench/datasets/sources.py) in a folder of this test run, not
# the user's: made fresh by the run's first test that needs each, then shared by the others,
# its pytest-xdist workers and the runs they start (which inherit the variable).
if "MLP_BENCH_SPLIT_CACHE" not in os.environ:
    import atexit  # noqa: E402
    import shutil  # noqa: E402
    import tempfile  # noqa: E402

    os.environ["MLP_BENCH_SPLIT_CACHE"] = tempfile.mkdtemp(prefix="mlp-bench-test-splits-")
    atexit.register(shutil.rmtree, os.environ["MLP_BENCH_SPLIT_CACHE"], ignore_errors=True)
# A pytest-xdist worker shares the cores with the others (one worker per core): BLAS, OpenMP,
# PyTorch and TensorFlow get one thread each, as the variables below say before they load,
# instead of each taking every core and all of them spinning against each other. (XLA's CPU
# pool, JAX's, has no thread-count setting.)
if os.environ.get("PYTEST_XDIST_WORKER") is not None:
    from bench.worker.threads import thread_env  # noqa: E402

    for _name, _value in thread_env(1).items():
        os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from impls import BACKENDS, available_backends  # noqa: E402

# The contract tests run every backend in this process but two kinds, tested in
# tests/test_peers*.py: sklearn refuses some specs by design (NotImplementedError), and the
# Keras peers (keras-jax, keras-torch) need a process where Keras is not loaded on TensorFlow.
ALL_BACKENDS = [b for b in BACKENDS if b != "sklearn" and not BACKENDS[b].process_env]
_AVAILABLE = available_backends()


def require_backend(name: str) -> None:
    """Skip the calling test when backend `name` cannot be used here, saying why."""
    reason = _AVAILABLE[name]
    if reason is not None:
        pytest.skip(f"backend {name}: {reason}")
    if BACKENDS[name].process_env:
        pytest.skip(f"backend {name}: needs a process of its own (see tests/test_peers_keras.py)")


@pytest.fixture(params=ALL_BACKENDS)
def backend(request, monkeypatch):
    require_backend(request.param)
    if "cpu" not in BACKENDS[request.param].devices:
        _build_on_own_device(monkeypatch, request.param)
    return request.param


def _build_on_own_device(monkeypatch, name):
    """A backend that computes only on a GPU (cupy) runs the shared tests on its device: a
    spec that leaves the device at its default ("cpu") is built for "cuda" (device 0)."""
    import dataclasses

    from impls import registry

    real = registry.backend_class
    device = BACKENDS[name].devices[0]

    def backend_class(wanted):
        cls = real(wanted)
        if wanted != name:
            return cls

        class OnItsDevice(cls):
            def __init__(self, spec, params, **options):
                if spec.device == "cpu":
                    spec = dataclasses.replace(spec, device=device)
                super().__init__(spec, params, **options)

        return OnItsDevice

    monkeypatch.setattr(registry, "backend_class", backend_class)


@pytest.fixture(scope="session")
def digits():
    """sklearn's digits scaled to [0, 1], split 80/20 with random_state 42, float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X = (data.data / 16.0).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[data.target]
    X_tr, X_te, Y_tr, Y_te = train_test_split(X, Y, test_size=0.2, random_state=42)
    return X_tr, Y_tr, X_te, Y_te


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (left out by default)",
    )


def pytest_collection_modifyitems(config, items):
    """Leave out the tests marked slow, unless asked for (--run-slow, or -m naming markers),
    or when the benchmarks measure (every benchmark is then wanted)."""
    option = config.option
    if option.run_slow or option.markexpr or getattr(option, "benchmark_only", False):
        return
    if getattr(option, "benchmark_enable", False):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def _measuring(option) -> bool:
    return bool(
        getattr(option, "benchmark_only", False) or getattr(option, "benchmark_enable", False)
    )


# The tests run in parallel where pytest-xdist is installed (the dev extra): one worker per core,
# at most 4 (each may load TensorFlow, PyTorch and JAX); worksteal, as their times vary
# 1000-fold. Not while benchmarks measure, nor in a benchmark group's own process: a
# measurement needs the machine to itself. `-n N` chooses; `-n 0` or `-p no:xdist`: one process.
WORKERS = {"numprocesses": "auto", "maxprocesses": 4, "dist": "worksteal"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns "auto" into workers
def pytest_cmdline_main(config):
    option = config.option
    if (
        config.pluginmanager.hasplugin("xdist")
        and option.numprocesses is None  # no -n given
        and not _measuring(option)
        and os.environ.get("MLP_BENCH_BENCHMARK_GROUP") is None
        and os.environ.get("PYTEST_XDIST_WORKER") is None  # a worker starts no workers
    ):
        for name, value in WORKERS.items():
            setattr(option, name, value)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Benchmarks measure only when asked (`--benchmark-only` or `--benchmark-enable`); in the
    default run each benchmark executes once, as a test, so every one stays exercised. A
    measuring run has no xdist workers, even when -n asks for them (pytest-benchmark would
    switch itself off): this runs before xdist's own pytest_configure (trylast)."""
    option = config.option
    measuring = _measuring(option)
    if hasattr(option, "benchmark_disable") and not measuring:
        option.benchmark_disable = True
    if measuring and getattr(option, "dist", "no") != "no":
        option.dist, option.numprocesses, option.tx = "no", 0, []
