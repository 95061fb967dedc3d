"""The types every dataset module shares: the prepared `Dataset`, the raw split a source
returns, and `DatasetError`."""

from __future__ import annotations

import dataclasses

import numpy as np


class DatasetError(Exception):
    """Data missing, unreadable or inconsistent. The message's first line is a summary."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test split of one dataset after preprocessing.

    X_train, X_test: C-contiguous float arrays (n, d). Y_train, Y_test: one-hot targets
    (n, n_classes) of the same dtype. y_train, y_test: int64 labels (n,). `preprocess` is the
    preprocessing actually applied ("none" for raw values), `source` where the data came from.
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    preprocess: str
    source: str

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])


@dataclasses.dataclass(frozen=True)
class RawSplit:
    """A train/test split as a source produces it, before validation and preprocessing."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str
