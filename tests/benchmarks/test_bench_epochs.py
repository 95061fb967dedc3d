"""One training epoch and one predict_proba call, for every installed backend x batch size x
model. Groups put the backends of one model and batch size side by side."""

import numpy as np
import pytest

from impls import BACKENDS, MLPSpec, init_params, make_model

from .conftest import BATCH_SIZES, require, run_benchmark
from .yardstick import Yardstick

MODELS = ("digits-64-100-10", "mnist-784-256-128-10")


def _model(backend, sizes):
    spec = MLPSpec(sizes, loss="cce", optimizer="sgd", lr=0.01, dtype="float32")
    return spec, make_model(backend, spec, init_params(spec, seed=0))


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("model_name", MODELS)
def test_train_epoch(benchmark, models, matmul_peak, threads, model_name, batch_size, backend):
    require(backend)
    sizes, X, Y = models(model_name)
    spec, model = _model(backend, sizes)
    order = np.random.default_rng(1).permutation(len(X))
    benchmark.group = f"train epoch | {model_name} | batch {batch_size}"
    info = {
        "backend": backend,
        "model": model_name,
        "batch_size": batch_size,
        "kind": "train",
        "n_samples": len(X),
        "order": "shuffled",
    }
    data = model.stage(X, Y)  # once, outside the timed rounds, as `bench run` does
    run = lambda: model.train_epoch(data, batch_size, order)  # noqa: E731
    run_benchmark(benchmark, run, len(X), spec.flops_per_sample, matmul_peak, info, threads)
    assert np.isfinite(model.predict_proba(X[:8])).all()


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("model_name", MODELS)
def test_predict_proba(benchmark, models, matmul_peak, threads, model_name, batch_size, backend):
    require(backend)
    sizes, X, _ = models(model_name)
    spec, model = _model(backend, sizes)
    Xb = X[:batch_size]
    benchmark.group = f"predict | {model_name} | batch {batch_size}"
    info = {
        "backend": backend,
        "model": model_name,
        "batch_size": batch_size,
        "kind": "predict",
        "n_samples": len(Xb),
    }
    predict = lambda: model.predict_proba(Xb)  # noqa: E731
    # a prediction computes the forward products only: 2 x weights per sample
    flops = 2 * spec.n_weights
    run_benchmark(benchmark, predict, len(Xb), flops, matmul_peak, info, threads)
    P = model.predict_proba(Xb)
    assert P.shape == (len(Xb), sizes[-1])


def test_jacobian_yardstick(benchmark, models, matmul_peak, threads):
    """The textbook MLP one sample at a time (Jacobians written out), in numpy-loop's batch-1
    digits group; it computes what numpy-loop computes, so the comparison is of formulations
    only."""
    sizes, X, Y = models("digits-64-100-10")
    spec, reference = _model("numpy-loop", sizes)
    model = Yardstick(spec, init_params(spec, seed=0))
    order = np.random.default_rng(1).permutation(len(X))
    check = np.arange(50)
    reference.train_epoch(X, Y, 1, check)
    model.train_epoch(X, Y, 1, check)
    for (W, b), (W2, b2) in zip(model.get_params(), reference.get_params()):
        assert W.dtype == b.dtype == np.float32  # formulations compared, not dtypes
        np.testing.assert_allclose(W, W2, atol=1e-5)
        np.testing.assert_allclose(b, b2, atol=1e-5)
    benchmark.group = "train epoch | digits-64-100-10 | batch 1"
    info = {
        "backend": model.backend,
        "model": "digits-64-100-10",
        "batch_size": 1,
        "kind": "train",
        "n_samples": len(X),
        "order": "shuffled",
    }
    run = lambda: model.train_epoch(X, Y, 1, order)  # noqa: E731
    run_benchmark(benchmark, run, len(X), spec.flops_per_sample, matmul_peak, info, threads)
