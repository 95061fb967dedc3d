"""Backends with one outcome each, plugged in by file path (`tests/outcome_backends.py:Class`)
so that a Dask worker loads them as this machine's workers do. tests/test_executors.py runs
them on both executors and compares the rows."""

import os
import time

from impls.numpy_vec import NumpyVecMLP


class Ok(NumpyVecMLP):
    """Trains as numpy-vec does."""


class NotSupported(NumpyVecMLP):
    """Cannot express the cell's setting: skipped, "not supported: ..."."""

    def __init__(self, spec, params):
        raise NotImplementedError(f"no {spec.optimizer} here")


class Raises(NumpyVecMLP):
    """Raises in its first epoch: an error with its traceback in logs/."""

    def train_epoch(self, *args, **kwargs):
        raise ValueError("the outcome backend raises")


class Crashes(NumpyVecMLP):
    """Its process ends in the first epoch: the worker died."""

    def train_epoch(self, *args, **kwargs):
        os._exit(3)


class Hangs(NumpyVecMLP):
    """Sleeps past any test's --timeout."""

    def train_epoch(self, *args, **kwargs):
        time.sleep(120)
        return super().train_epoch(*args, **kwargs)


class Diverges(NumpyVecMLP):
    """Its loss is NaN from the first epoch: diverged."""

    def train_epoch(self, *args, **kwargs):
        super().train_epoch(*args, **kwargs)
        return float("nan")
