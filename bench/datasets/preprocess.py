"""Preprocessing: each function takes the raw train and test features (any numeric dtype),
computes in float64 on new arrays and returns (X_train, X_test) as float64. Statistics come
from the training split only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from impls.spec import unknown_name_message


def _as_float64(X: np.ndarray) -> np.ndarray:
    return np.array(X, dtype=np.float64, order="C", copy=True)


def raw(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw values as float64."""
    return _as_float64(X_train), _as_float64(X_test)


def scale(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide both splits by the largest absolute training value (unchanged when it is 0)."""
    A, B = _as_float64(X_train), _as_float64(X_test)
    m = max(abs(float(A.min())), abs(float(A.max()))) if A.size else 0.0
    if m > 0:
        A /= m
        B /= m
    return A, B


def _minmax_rows(X: np.ndarray) -> np.ndarray:
    X = _as_float64(X)
    if X.size == 0:
        return X
    lo = X.min(axis=1, keepdims=True)
    span = X.max(axis=1, keepdims=True) - lo
    X -= lo  # rows with span 0 are now exactly 0 and are left out of the division
    np.divide(X, span, out=X, where=span > 0)
    return X


def minmax(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (row): (x - min) / (max - min); rows with max == min become zeros."""
    return _minmax_rows(X_train), _minmax_rows(X_test)


def standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: subtract the training mean, divide by the training std.

    Columns that are constant on the training split are centred on that constant and divided
    by 1, so they are exactly 0 on the training split.
    """
    A, B = _as_float64(X_train), _as_float64(X_test)
    mean = A.mean(axis=0)
    std = A.std(axis=0)
    constant = (A.max(axis=0) == A.min(axis=0)) | (std == 0)
    mean[constant] = A[0, constant]
    std[constant] = 1.0
    A -= mean
    A /= std
    B -= mean
    B /= std
    return A, B


PreprocessFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# "none" is a real choice (raw values), never "not set": not set is None in load_dataset.
PREPROCESSING: dict[str, PreprocessFn] = {
    "scale": scale,
    "minmax": minmax,
    "standardize": standardize,
    "none": raw,
}


def check_preprocess(preprocess: str) -> str:
    """The registered name for `preprocess` (case and surrounding spaces ignored), else
    ValueError naming the valid ones."""
    if not isinstance(preprocess, str):
        raise ValueError(unknown_name_message("preprocessing", preprocess, PREPROCESSING))
    key = preprocess.strip().lower()
    if key not in PREPROCESSING:
        raise ValueError(unknown_name_message("preprocessing", key, PREPROCESSING))
    return key
