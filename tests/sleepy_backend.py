"""A backend that sleeps inside train_epoch for $MLP_BENCH_SLEEP_S seconds (0 when unset),
plugged in by file path by tests/test_compare_runs.py: the same backend, slower by a known
amount in one run, for `bench compare` to find."""

import os
import time

from impls.numpy_vec import NumpyVecMLP


class Sleepy(NumpyVecMLP):
    def train_epoch(self, *args, **kwargs):
        time.sleep(float(os.environ.get("MLP_BENCH_SLEEP_S", "0")))
        return super().train_epoch(*args, **kwargs)
