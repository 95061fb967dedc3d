"""The quick selection of the benchmarks: a first look in about three minutes.

One model (digits 64-100-10), a few batch sizes (QUICK_BATCH_SIZES), every backend: the
train-epoch benchmarks only. Pick it with the marker or the environment variable:

    pytest tests/benchmarks --benchmark-only -m quick
    MLP_BENCH_QUICK=1 pytest tests/benchmarks --benchmark-only
"""

import os

import pytest

QUICK_ENV = "MLP_BENCH_QUICK"
QUICK_TEST = "test_train_epoch"
QUICK_MODEL = "digits-64-100-10"
QUICK_BATCH_SIZES = (32, 256, 1024)


def is_quick(item) -> bool:
    """Whether a collected benchmark belongs to the quick selection."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return (
        getattr(item, "originalname", item.name) == QUICK_TEST
        and params.get("model_name") == QUICK_MODEL
        and params.get("batch_size") in QUICK_BATCH_SIZES
    )


def quick_wanted() -> bool:
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes")


def mark_quick(item) -> None:
    if is_quick(item):
        item.add_marker(pytest.mark.quick)


def select_quick(config, items) -> None:
    """With MLP_BENCH_QUICK=1, deselect every benchmark outside the quick selection."""
    if not quick_wanted():
        return
    dropped = [i for i in items if not is_quick(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if is_quick(i)]
