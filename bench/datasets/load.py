"""Loading a dataset by name: find or make the raw split, check it, preprocess it, convert
it to the float type asked for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import download, files, locate, sources
from .base import Dataset, DatasetError
from .preprocess import PREPROCESSING, check_preprocess
from .registry import DATASETS, canonical_dataset_name, parse_dataset_name
from .validate import validate_arrays

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_SEED = 2**32 - 1  # numpy's RandomState, which scikit-learn's random_state uses


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; valid: float32, float64") from exc
    if resolved not in _DTYPES:
        raise ValueError(f"unsupported dtype {resolved}; valid: float32, float64")
    return resolved


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed}")
    return int(seed)


def applied_preprocess(name: str, preprocess: str | None = None) -> str:
    """The preprocessing load_dataset applies to dataset `name` when asked for `preprocess`:
    the dataset's default when None (not set), else the checked name; "none" is raw values.
    Raises ValueError for an unknown dataset or preprocessing."""
    base, _ = parse_dataset_name(name)
    return check_preprocess(DATASETS[base].default_preprocess if preprocess is None else preprocess)


def dataset_status(name: str, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """None when `name` can be loaded here without a download, else a short reason.

    Only checks that scikit-learn is importable or that the files exist; no data is read.
    Raises ValueError for names parse_dataset_name rejects.
    """
    base, params = parse_dataset_name(name)
    return DATASETS[base].status(params, data_dir)


def download_dataset(name: str, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download dataset `name`'s files into `dest_dir` (default: the cache's folder `name`).

    Files already there with the expected SHA-256 are kept. Returns the folder. Raises
    DatasetError when no source succeeds, ValueError for an unknown name.
    """
    base, _ = parse_dataset_name(name)
    folder = Path(dest_dir) if dest_dir is not None else locate.cache_dir() / base
    return download.download_files(base, folder)


def clear_cache() -> None:
    """Empty the in-process caches of raw arrays (files read, scikit-learn tables)."""
    files.clear_file_cache()
    sources.clear_sklearn_cache()


def load_dataset(
    name: str,
    preprocess: str | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    test_size: float = 0.2,
    dtype: Any = "float32",
    download: bool = True,
) -> Dataset:
    """Load, check and preprocess dataset `name`.

    preprocess: None (not set) uses the dataset's default; "none" keeps the raw values; the
    returned Dataset's `preprocess` says which was applied, its `name` is the canonical name
    (see canonical_dataset_name). seed: the random_state of the
    train/test split for datasets without a fixed split, and for synthetic also the
    generator's seed unless the name gives seed=. test_size is ignored for datasets with a
    fixed split. data_dir: when given, the only folder searched for files (see
    bench.datasets.locate). Arithmetic is done in float64 and the result cast once to dtype
    (float32 or float64).
    """
    base, params = parse_dataset_name(name)
    spec = DATASETS[base]
    prep = applied_preprocess(name, preprocess)
    out_dtype = _check_dtype(dtype)
    seed = _check_seed(seed)
    raw = spec.loader(params, seed=seed, test_size=test_size, data_dir=data_dir, download=download)
    label = canonical_dataset_name(name)
    validate_arrays(raw.X_train, raw.y_train, raw.X_test, raw.y_test, raw.n_classes, label)
    A, B = PREPROCESSING[prep](raw.X_train, raw.X_test)
    X_train = np.ascontiguousarray(A.astype(out_dtype, copy=False))
    X_test = np.ascontiguousarray(B.astype(out_dtype, copy=False))
    for split, X in (("train", X_train), ("test", X_test)):
        n_bad = X.size - int(np.count_nonzero(np.isfinite(X)))
        if n_bad:
            raise DatasetError(
                f"{label}: {n_bad} non-finite feature values in the {split} split after "
                f"preprocessing {prep!r} and conversion to {out_dtype}"
            )
    y_train = np.array(raw.y_train, dtype=np.int64)
    y_test = np.array(raw.y_test, dtype=np.int64)
    eye = np.eye(raw.n_classes, dtype=out_dtype)
    return Dataset(
        name=label,
        X_train=X_train,
        Y_train=eye[y_train],
        y_train=y_train,
        X_test=X_test,
        Y_test=eye[y_test],
        y_test=y_test,
        n_classes=int(raw.n_classes),
        preprocess=prep,
        source=raw.source,
    )
