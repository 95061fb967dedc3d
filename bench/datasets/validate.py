"""Checks on a raw train/test split before it is preprocessed."""

from __future__ import annotations

import numpy as np

from .base import DatasetError


def count_nonfinite(X: np.ndarray) -> tuple[int, int]:
    """(number of NaN, number of ±inf) in X; (0, 0) for integer arrays."""
    if X.dtype.kind not in "fc":
        return 0, 0
    return int(np.count_nonzero(np.isnan(X))), int(np.count_nonzero(np.isinf(X)))


def _check_split(split: str, X, y, n_classes: int, name: str) -> None:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DatasetError(f"{name}: X_{split} must be 2-D (n, d), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DatasetError(f"{name}: X_{split} is empty, shape {X.shape}")
    if X.dtype.kind not in "buif":
        raise DatasetError(f"{name}: X_{split} has non-numeric dtype {X.dtype}")
    if y.ndim != 1:
        raise DatasetError(f"{name}: y_{split} must be 1-D, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise DatasetError(
            f"{name}: {split} split has {X.shape[0]} samples but {y.shape[0]} labels"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DatasetError(f"{name}: y_{split} holds non-integer labels")
    elif y.dtype.kind not in "ui":
        raise DatasetError(f"{name}: y_{split} has non-integer dtype {y.dtype}")
    n_bad = int(np.count_nonzero((y < 0) | (y >= n_classes)))
    if n_bad:
        raise DatasetError(
            f"{name}: {n_bad} labels in the {split} split outside [0, {n_classes}) "
            f"(min {y.min()}, max {y.max()})"
        )
    n_nan, n_inf = count_nonfinite(X)
    if n_nan or n_inf:
        raise DatasetError(
            f"{name}: {n_nan + n_inf} non-finite feature values in the {split} split "
            f"({n_nan} NaN, {n_inf} inf)"
        )


def validate_arrays(X_train, y_train, X_test, y_test, n_classes: int, name: str) -> None:
    """Check a raw train/test split; raise DatasetError naming `name` on the first problem.

    X must be 2-D and numeric with at least one row and column, and the same number of columns
    in both splits; y must be 1-D, integer-valued, one label per row of X, each in
    [0, n_classes); X must hold no NaN or inf.
    """
    if int(n_classes) < 1:
        raise DatasetError(f"{name}: n_classes must be >= 1, got {n_classes}")
    _check_split("train", X_train, y_train, n_classes, name)
    _check_split("test", X_test, y_test, n_classes, name)
    d_train, d_test = np.shape(X_train)[1], np.shape(X_test)[1]
    if d_train != d_test:
        raise DatasetError(f"{name}: train has {d_train} features but test has {d_test}")
