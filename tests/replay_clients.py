"""A user's backend that parts from numpy-vec for a real reason, for tests/test_replay.py:
numpy-vec's maths with three times the step, in every dtype."""

from dataclasses import replace

from impls import make_model


class TripleStep:
    def __init__(self, spec, params):
        self.inner = make_model("numpy-vec", replace(spec, lr=spec.lr * 3), params)

    def train_epoch(self, X, Y, batch_size, order):
        return self.inner.train_epoch(X, Y, batch_size, order)

    def predict_proba(self, X):
        return self.inner.predict_proba(X)

    def get_params(self):
        return self.inner.get_params()
