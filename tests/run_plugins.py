"""Users' backends that break the protocol's promises in a run, plugged in by file path
(`tests/run_plugins.py:Class`); tests/test_plugins_run.py runs each and checks the message
points at the backend."""

import numpy as np

from impls.numpy_vec import NumpyVecMLP


class Plain:
    """numpy-vec's model behind the bare protocol (no `stage`): every call gets the harness's
    own NumPy arrays, as a hand-written class's does."""

    def __init__(self, spec, params):
        self.inner = NumpyVecMLP(spec, params)

    def train_epoch(self, X, Y, batch_size, order):
        return self.inner.train_epoch(X, Y, batch_size, order)

    def predict_proba(self, X):
        return self.inner.predict_proba(X)

    def get_params(self):
        return self.inner.get_params()


class SmoothsLabels(Plain):
    """Smooths its labels in place: the harness's read-only arrays refuse it."""

    def train_epoch(self, X, Y, batch_size, order):
        Y *= 0.9
        Y += 0.01
        return super().train_epoch(X, Y, batch_size, order)


class NoLoss(Plain):
    """Trains as numpy-vec does and leaves its loss to the harness (returns None)."""

    def train_epoch(self, X, Y, batch_size, order):
        super().train_epoch(X, Y, batch_size, order)


class NaNPredictions(Plain):
    """Trains with a finite loss; its predictions are NaN."""

    def predict_proba(self, X):
        return np.full_like(super().predict_proba(X), np.nan)


class RaisesInterrupt(Plain):
    """Raises KeyboardInterrupt itself in its first epoch."""

    def train_epoch(self, X, Y, batch_size, order):
        raise KeyboardInterrupt


class Exits(Plain):
    """Calls sys.exit(0) in its first epoch."""

    def train_epoch(self, X, Y, batch_size, order):
        raise SystemExit(0)
