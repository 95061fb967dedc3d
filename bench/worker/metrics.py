"""The one metric code every backend is judged by: loss and accuracy from predict_proba."""

from __future__ import annotations

import numpy as np


def _cce(P, Y):
    return -(Y * np.log(P)).sum(axis=1)


def _bce(P, Y):
    return -(Y * np.log(P) + (1 - Y) * np.log1p(-P)).mean(axis=1)


def _mse(P, Y):
    return ((P - Y) ** 2).mean(axis=1)


# Losses from the output activation P, in float64; P is clipped to [eps, 1 - eps] (eps the
# machine epsilon of P's own dtype) for the logarithms, so a confident wrong answer costs
# about -log(eps) instead of infinity.
LOSSES = {"cce": _cce, "bce": _bce, "mse": _mse}


def evaluate(P: np.ndarray, Y: np.ndarray, loss: str) -> tuple[float, float]:
    """(mean loss, accuracy) of predictions P (n, k) against one-hot targets Y (n, k).

    Accuracy compares argmax of P with argmax of Y. Non-finite P gives a NaN loss.
    """
    P = np.asarray(P)
    if P.shape != Y.shape:
        raise ValueError(f"predictions shaped {P.shape} do not match targets {Y.shape}")
    if P.shape[0] == 0:
        return float("nan"), float("nan")
    accuracy = float((P.argmax(axis=1) == Y.argmax(axis=1)).mean())
    if not np.isfinite(P).all():
        return float("nan"), accuracy
    eps = float(np.finfo(P.dtype).eps) if np.issubdtype(P.dtype, np.floating) else 1e-16
    P64 = P.astype(np.float64)
    if loss != "mse":
        P64 = np.clip(P64, eps, 1 - eps)
    value = float(LOSSES[loss](P64, Y.astype(np.float64)).mean())
    return value, accuracy
