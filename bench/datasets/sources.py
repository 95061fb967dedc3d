"""Datasets made by scikit-learn: its bundled tables (digits, breast cancer) and synthetic
classification data from make_classification. scikit-learn is imported only when one of
them is made; the splits are kept in the user cache (see `cached_split`)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import DatasetError, RawSplit
from .locate import cache_dir

# Splits of at most this many feature values (32 MiB as float64) are kept in the cache.
CACHE_MAX_VALUES = 2**22
# The folder of the cached splits instead of cache_dir()/sklearn; set but empty: no cache.
SPLIT_CACHE_ENV = "MLP_BENCH_SPLIT_CACHE"


def split_cache_dir() -> Path | None:
    """Where `cached_split` keeps splits: $MLP_BENCH_SPLIT_CACHE when set (None, no cache, when
    it is empty), else the user cache's sklearn/ folder."""
    folder = os.environ.get(SPLIT_CACHE_ENV)
    if folder is None:
        return cache_dir() / "sklearn"
    return Path(folder).expanduser() if folder.strip() else None


@functools.cache
def _code_version() -> str:
    """A digest of this module's source: a cached split made by other code is not read."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def import_sklearn(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DatasetError(
            f"scikit-learn is required for this dataset but cannot be imported ({exc}); "
            "install it with: pip install scikit-learn"
        ) from exc


def _split(X, y, test_size: float, seed: int):
    """(X_train, y_train, X_test, y_test) by sklearn's train_test_split."""
    model_selection = import_sklearn("sklearn.model_selection")
    X_tr, X_te, y_tr, y_te = model_selection.train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=None
    )
    return X_tr, y_tr, X_te, y_te


def _split_text(test_size: float, seed: int) -> str:
    return f"(train_test_split test_size={test_size}, random_state={seed})"


@functools.lru_cache(maxsize=4)
def _sklearn_arrays(func_name: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = getattr(import_sklearn("sklearn.datasets"), func_name)(return_X_y=True)
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def clear_sklearn_cache() -> None:
    _sklearn_arrays.cache_clear()


_FIELDS = [field.name for field in dataclasses.fields(RawSplit)]  # what a cached file holds


def cached_split(key: str, make: Callable[[], RawSplit]) -> RawSplit:
    """`make()`, kept in `split_cache_dir()` under `key`, scikit-learn's version and this
    module's code (`_code_version`). Importing scikit-learn took 1.0 s of a 2.2 s run of one
    tiny cell on digits, while the split it makes is the same every time for one version. A
    cached file that cannot be read is made again; a cache that cannot be written is left
    alone."""
    folder = split_cache_dir()
    try:
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return make()  # import_sklearn says what to install
    if folder is None:
        return make()
    path = folder / f"{key}-scikit-learn-{version}-code-{_code_version()}.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            fields = {name: saved[name] for name in _FIELDS}
        fields["n_classes"], fields["source"] = int(fields["n_classes"]), str(fields["source"])
        return RawSplit(**fields)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # not made yet, or unreadable
    split = make()
    if split.X_train.size + split.X_test.size <= CACHE_MAX_VALUES:
        _save(path, split)
    return split


def _save(path, split: RawSplit) -> None:
    """Write `split` whole or not at all: into a temporary file, then renamed over `path`."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            np.savez(f, **{name: getattr(split, name) for name in _FIELDS})
        os.replace(tmp, path)
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def sklearn_loader(func_name: str, n_classes: int):
    """The loader of the bundled scikit-learn table `sklearn.datasets.<func_name>`."""

    def make(seed: int, test_size: float) -> RawSplit:
        X, y = _sklearn_arrays(func_name)
        X_tr, y_tr, X_te, y_te = _split(X, y, test_size, seed)
        source = f"sklearn.datasets.{func_name} {_split_text(test_size, seed)}"
        return RawSplit(X_tr, y_tr, X_te, y_te, n_classes, source)

    def load(params: dict[str, int], *, seed: int, test_size: float, **_: Any) -> RawSplit:
        key = f"{func_name}-test_size={test_size}-seed={seed}"
        return cached_split(key, lambda: make(seed, test_size))

    return load


def sklearn_status(params: dict[str, int], data_dir: Any) -> str | None:
    if importlib.util.find_spec("sklearn") is None:
        return "scikit-learn is not installed (pip install scikit-learn)"
    return None


# Synthetic data: name synthetic:n=N,d=D,k=K[,seed=S].
SYNTHETIC_DEFAULTS: dict[str, int] = {"n": 10000, "d": 784, "k": 10}
# key -> (smallest, largest). seed is numpy's RandomState range.
SYNTHETIC_BOUNDS: dict[str, tuple[int, int]] = {
    "n": (2, 10_000_000),
    "d": (1, 100_000),
    "k": (2, 10_000),
    "seed": (0, 2**32 - 1),
}
# n * d values are generated in float64 and copied a few times while splitting and
# preprocessing: 2**28 values are 2 GiB each time.
SYNTHETIC_MAX_VALUES = 2**28


def synthetic_kwargs(params: Mapping[str, int]) -> dict[str, int]:
    """make_classification's arguments for n samples, d features and k classes.

    n_informative = min(d, max(2, ceil(log2(2k)), d // 2)); two clusters per class when
    2**n_informative >= 2k, else one; up to 2 redundant features when d leaves room. Raises
    ValueError when the parameters do not fit together.
    """
    n, d, k = params["n"], params["d"], params["k"]
    if k > n:
        raise ValueError(f"synthetic: k={k} classes need at least as many samples, got n={n}")
    if n * d > SYNTHETIC_MAX_VALUES:
        raise ValueError(
            f"synthetic: n*d = {n * d} values is more than the limit of "
            f"{SYNTHETIC_MAX_VALUES} (2 GiB as float64); make n or d smaller"
        )
    n_informative = min(d, max(2, (2 * k - 1).bit_length(), d // 2))
    if 2**n_informative >= 2 * k:
        clusters = 2
    elif 2**n_informative >= k:
        clusters = 1
    else:
        raise ValueError(
            f"synthetic: k={k} classes with d={d} features is not possible: "
            f"make_classification needs 2**n_informative >= k * n_clusters_per_class and "
            f"n_informative <= d, so d={d} allows at most k={2**n_informative}"
        )
    return {
        "n_samples": n,
        "n_features": d,
        "n_informative": n_informative,
        "n_redundant": min(2, d - n_informative),
        "n_repeated": 0,
        "n_classes": k,
        "n_clusters_per_class": clusters,
    }


def load_synthetic(params: dict[str, int], *, seed: int, test_size: float, **_: Any) -> RawSplit:
    """make_classification data; the generator's seed is the name's seed= if given, else
    `seed` (which is also the split's random_state)."""
    kwargs = synthetic_kwargs(params)
    gen_seed = params.get("seed", seed)
    key = "synthetic-" + "-".join(f"{k}={v}" for k, v in kwargs.items())
    return cached_split(
        f"{key}-random_state={gen_seed}-test_size={test_size}-seed={seed}",
        lambda: _make_synthetic(kwargs, params["k"], gen_seed, seed, test_size),
    )


def _make_synthetic(kwargs, n_classes, gen_seed, seed, test_size) -> RawSplit:
    datasets = import_sklearn("sklearn.datasets")
    X, y = datasets.make_classification(**kwargs, random_state=gen_seed)
    X_tr, y_tr, X_te, y_te = _split(X, y.astype(np.int64), test_size, seed)
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    source = (
        f"sklearn.datasets.make_classification({args}, random_state={gen_seed}) "
        f"{_split_text(test_size, seed)}"
    )
    return RawSplit(X_tr, y_tr, X_te, y_te, n_classes, source)
