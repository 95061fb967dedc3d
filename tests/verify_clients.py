"""Classes that break the contract one way each, for the tests of `bench verify --backends`
(tests/test_verify_breakers.py). Each is numpy-vec with one fault; verify must name it."""

import os
import sys
import time

import numpy as np

from impls import make_model


class _Wrapped:
    def __init__(self, spec, params):
        self.spec = spec
        self.inner = make_model("numpy-vec", spec, params)

    def train_epoch(self, X, Y, batch_size, order):
        return self.inner.train_epoch(X, Y, batch_size, order)

    def predict_proba(self, X):
        return self.inner.predict_proba(X)

    def get_params(self):
        return self.inner.get_params()


class Right(_Wrapped):
    """numpy-vec itself, through the protocol."""


class SmoothsLabels(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        Y *= 0.9
        Y += 0.01
        return super().train_epoch(X, Y, batch_size, order)


class ShufflesOrder(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        np.random.default_rng(0).shuffle(order)
        return super().train_epoch(X, Y, batch_size, order)


class SortsOrder(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        order.sort()
        return super().train_epoch(X, Y, batch_size, order)


class ScalesWeights(_Wrapped):
    def __init__(self, spec, params):
        W = params[0][0]
        W *= 2
        super().__init__(spec, params)


class NanPredictions(_Wrapped):
    def predict_proba(self, X):
        P = super().predict_proba(X)
        P[0, 0] = np.nan
        return P


class DoubleStepInFloat32(_Wrapped):
    """Right in float64; twice the step in float32."""

    def __init__(self, spec, params):
        from dataclasses import replace

        if spec.dtype == "float32":
            spec = replace(spec, lr=spec.lr * 2)
        super().__init__(spec, params)


class TripleStep(_Wrapped):
    """numpy-vec's maths with three times the step, in every dtype: a backend that parts from
    numpy-vec for a real reason (tests/test_replay.py)."""

    def __init__(self, spec, params):
        from dataclasses import replace

        super().__init__(replace(spec, lr=spec.lr * 3), params)


class ExitsInTraining(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        os._exit(0)


class CallsSysExit(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        sys.exit(0)


class Hangs(_Wrapped):
    def train_epoch(self, X, Y, batch_size, order):
        time.sleep(600)


class RaisesInInit:
    def __init__(self, spec, params):
        raise RuntimeError("cannot find my weights file")

    def train_epoch(self, X, Y, batch_size, order): ...

    def predict_proba(self, X): ...

    def get_params(self): ...


class Staged(_Wrapped):
    """Trains only through stage(): its array path takes a wrong step, so it conforms only
    when it is checked as `bench run` uses it."""

    def stage(self, X, Y):
        return ("staged", np.array(X), np.array(Y))

    def train_epoch(self, *args):
        if isinstance(args[0], tuple) and args[0][0] == "staged":
            (_, X, Y), batch_size, order = args
            return self.inner.train_epoch(X, Y, batch_size, order)
        X, Y, batch_size, order = args
        loss = self.inner.train_epoch(X, Y, batch_size, order)
        self.inner.set_params([(W * 1.01, b) for W, b in self.inner.get_params()])
        return loss


class SigmoidOnly(_Wrapped):
    """Refuses everything but sigmoid hidden layers (learnt from each case's refusal)."""

    def __init__(self, spec, params):
        if spec.activation != "sigmoid":
            raise NotImplementedError("sigmoid hidden layers only")
        super().__init__(spec, params)


class DeclaresHalfSum(_Wrapped):
    """Declares Nielsen's cost but computes the contract's mse."""

    conventions = {"mse": "half-sum"}
