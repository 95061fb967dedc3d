"""The speed targets of the hand-written backends, each measured as a ratio in one run, with its
spread, and reported (`bench report --pytest-benchmark`: the Targets section), never asserted:
a bound on a time fails when the machine is busy, not when the code is at fault.

- products: numpy-vec's epoch at batch 1024 against the same epoch's matrix products timed
  alone (MLPSpec.step_products on the same shapes). The ratio, products ÷ epoch, is numpy-vec's
  rate by the honest FLOP count over its own products' rate; goal ≥ 0.90 (the work between
  the products at most 10% of the epoch).
- torch: numpy-vec ÷ torch speed (torch's epoch time over numpy-vec's) at batch 8 to 1024;
  goal ≥ 1 up to batch 256 and ≥ 0.95 at 1024.
- yardstick: numpy-loop against the textbook per-sample MLP with its Jacobians
  (tests/benchmarks/yardstick.py) at batch 1 on digits; goal ≥ 2.
- numpy-vec: numpy-loop against numpy-vec at batch 1 on digits; goal ≥ 0.90 (within 10%).

Each benchmark times the first side (pytest-benchmark's own statistics) and also both sides in
alternating rounds, so both see the same machine state: the median ratio and its 10th-90th
percentiles go to `extra_info`. The thread count is the run's (MLP_BENCH_THREADS): run the
suite at 1 and at 2 threads for the two columns of the targets. As tests (the default run),
each checks that its two sides compute the same training, which makes the ratio mean something.
"""

import numpy as np
import pytest

from bench.worker import measure
from impls import MLPSpec, init_params, make_model

from .conftest import BUDGET_S, assert_same_training, require, run_benchmark
from .yardstick import Yardstick

MNIST = "mnist-784-256-128-10"
DIGITS = "digits-64-100-10"
TORCH_BATCHES = (8, 32, 128, 256, 1024)


def goal_for(target: str, batch_size: int) -> float:
    """The least ratio each target asks for (higher is better for every ratio here)."""
    if target == "torch":
        return 0.95 if batch_size >= 1024 else 1.0
    return {"products": 0.90, "yardstick": 2.0, "numpy-vec": 0.90}[target]


def alternating_ratio(first, second, budget_s=None) -> dict:
    """time(second) / time(first), measured in alternating rounds: the median of the pairs'
    ratios and its 10th-90th percentiles (above 1: `first` is faster)."""
    budget_s = BUDGET_S if budget_s is None else budget_s
    first(), second()  # warm both
    _, a = measure.timed(first)
    _, b = measure.timed(second)
    pairs = int(min(30, max(5, budget_s / (a + b))))
    ratios = []
    for i in range(pairs):
        if i % 2 == 0:
            _, a = measure.timed(first)
            _, b = measure.timed(second)
        else:
            _, b = measure.timed(second)
            _, a = measure.timed(first)
        ratios.append(b / a)
    lo, mid, hi = np.percentile(ratios, [10, 50, 90])
    return {"ratio": mid, "ratio_p10": lo, "ratio_p90": hi, "ratio_pairs": pairs}


def _spec(sizes, optimizer="sgd"):
    lr = 0.01 if optimizer == "sgd" else 1e-3
    return MLPSpec(sizes, loss="cce", optimizer=optimizer, lr=lr, dtype="float32")


def _epoch(backend, spec, X, Y, batch_size, order, model_class=None):
    """One epoch through the contract API, the data staged once (as `bench run` does)."""
    params = init_params(spec, seed=0)
    model = model_class(spec, params) if model_class else make_model(backend, spec, params)
    # the yardstick (impls.reference) has no stage: it takes the arrays each epoch
    data = (model.stage(X, Y),) if hasattr(model, "stage") else (X, Y)

    def run():
        model.train_epoch(*data, batch_size, order)

    run.weights = model.get_params
    return run


def _epoch_products(spec, n, batch_size):
    """The matrix products of one epoch of n samples in `batch_size` steps, alone, on arrays of
    the step's shapes (np.dot, as the core calls it)."""
    rng = np.random.default_rng(0)
    full, last = divmod(n, batch_size)

    def operands(batch):
        pairs = []
        for _, a_shape, a_t, b_shape, b_t in spec.step_products(batch):
            a = rng.standard_normal(a_shape).astype(spec.dtype)
            b = rng.standard_normal(b_shape).astype(spec.dtype)
            pairs.append((a.T if a_t else a, b.T if b_t else b))
        return pairs

    steps = [operands(batch_size)] * full + ([operands(last)] if last else [])

    def run():
        for pairs in steps:
            for a, b in pairs:
                np.dot(a, b)

    return run


def _report(benchmark, ours, other, target, info, threads, n, spec, matmul_peak):
    """Time `ours` as the benchmark, then the alternating ratio other ÷ ours into extra_info."""
    goal = goal_for(target, info["batch_size"])
    info = {**info, "kind": "target", "target": target, "goal": goal}
    run_benchmark(benchmark, ours, n, spec.flops_per_sample, matmul_peak, info, threads)
    if not benchmark.disabled:
        benchmark.extra_info.update(alternating_ratio(ours, other))


def test_target_products(benchmark, models, matmul_peak, threads):
    """numpy-vec's epoch at batch 1024 against its products alone."""
    sizes, X, Y = models(MNIST)
    spec, batch = _spec(sizes), 1024
    order = np.random.default_rng(1).permutation(len(X))
    epoch = _epoch("numpy-vec", spec, X, Y, batch, order)
    products = _epoch_products(spec, len(X), batch)
    benchmark.group = f"target | products | {MNIST} | batch {batch}"
    info = {"backend": "numpy-vec", "model": MNIST, "batch_size": batch, "n_samples": len(X)}
    # the ratio: time(products) / time(epoch), the share of the epoch the products take
    _report(benchmark, epoch, products, "products", info, threads, len(X), spec, matmul_peak)
    if benchmark.disabled:
        products()  # the products run on the shapes the epoch uses
        assert len(spec.step_products(batch)) == 3 * (len(sizes) - 1) - 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", TORCH_BATCHES)
@pytest.mark.parametrize("framework", ["torch"])
def test_target_numpy_vec_against_torch(
    benchmark, models, matmul_peak, threads, framework, batch_size, optimizer
):
    require(framework)
    sizes, X, Y = models(MNIST)
    spec = _spec(sizes, optimizer)
    order = np.arange(len(X))  # the same batches on both sides: they end with the same weights
    ours = _epoch("numpy-vec", spec, X, Y, batch_size, order)
    theirs = _epoch(framework, spec, X, Y, batch_size, order)
    benchmark.group = f"target | torch | {MNIST} | {optimizer} | batch {batch_size}"
    info = {
        "backend": "numpy-vec",
        "against": framework,
        "model": MNIST,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "n_samples": len(X),
    }
    _report(benchmark, ours, theirs, "torch", info, threads, len(X), spec, matmul_peak)
    if benchmark.disabled:  # `ours` ran one epoch, untimed
        theirs()
        assert_same_training(ours.weights(), theirs.weights(), init_params(spec, seed=0))


@pytest.mark.parametrize("target", ["yardstick", "numpy-vec"])
def test_target_numpy_loop_at_batch_1(benchmark, models, matmul_peak, threads, target):
    sizes, X, Y = models(DIGITS)
    spec = _spec(sizes)
    order = np.random.default_rng(1).permutation(len(X))
    ours = _epoch("numpy-loop", spec, X, Y, 1, order)
    if target == "yardstick":
        other = _epoch(None, spec, X, Y, 1, order, model_class=Yardstick)
    else:
        other = _epoch("numpy-vec", spec, X, Y, 1, order)
    benchmark.group = f"target | {target} | {DIGITS} | batch 1"
    info = {"backend": "numpy-loop", "against": target, "model": DIGITS, "batch_size": 1}
    info["n_samples"] = len(X)
    _report(benchmark, ours, other, target, info, threads, len(X), spec, matmul_peak)
    if benchmark.disabled:  # `ours` ran one epoch, untimed: the same online SGD on both sides
        other()
        assert_same_training(ours.weights(), other.weights(), init_params(spec, seed=0))
