"""Datasets for mlp-bench: loading, validation, preprocessing.

``load_dataset(name, ...)`` returns a :class:`Dataset` holding train/test features, one-hot
targets and integer labels. Dataset names are looked up in :data:`DATASETS`, preprocessing
names in :data:`PREPROCESSING`.

MNIST and Fashion-MNIST files are searched for in these roots, in order: the ``data_dir``
argument, ``$MLP_BENCH_DATA``, :func:`cache_dir`, and the folders in :data:`SYSTEM_DATA_DIRS`
(Debian's ``dataset-fashion-mnist`` package for Fashion-MNIST). Each root is searched itself
and in a subfolder named after the dataset. When nothing is found and ``download=True``, the
files listed in :data:`DOWNLOAD_SOURCES` are downloaded into ``cache_dir() / name`` and
checked against their SHA-256.

Module-level imports are the standard library and numpy only; scikit-learn is imported
inside the functions that use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import gzip
import hashlib
import http.client
import importlib
import importlib.util
import logging
import math
import os
import re
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DATASETS",
    "DOWNLOAD_SOURCES",
    "PREPROCESSING",
    "SYSTEM_DATA_DIRS",
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "DownloadSource",
    "cache_dir",
    "clear_cache",
    "data_roots",
    "dataset_names",
    "dataset_status",
    "download_dataset",
    "load_dataset",
    "parse_dataset_name",
    "read_idx",
    "search_dirs",
    "validate_arrays",
]

log = logging.getLogger(__name__)

ENV_DATA_DIR = "MLP_BENCH_DATA"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DatasetError(Exception):
    """Data missing, unreadable or inconsistent. The message's first line is a summary."""


# ---------------------------------------------------------------------------------------------
# Dataset container


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test split of one dataset after preprocessing.

    ``X_*``: C-contiguous float arrays (n, d); ``Y_*``: one-hot targets (n, n_classes) of the
    same dtype; ``y_*``: int64 labels (n,).
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
class _Raw:
    """Unpreprocessed split as produced by a loader."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str


# ---------------------------------------------------------------------------------------------
# Name handling


def _unknown_name_error(kind: str, given: str, valid: list[str]) -> ValueError:
    message = f"unknown {kind} {given!r}; valid: {', '.join(valid)}"
    close = difflib.get_close_matches(given, valid, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return ValueError(message)


_INT_RE = re.compile(r"[+-]?[0-9]+")


def parse_dataset_name(name: str) -> tuple[str, dict[str, int]]:
    """Split ``"base:key=value,..."`` into the registered base name and its integer parameters.

    Names are case-insensitive and stripped. For datasets with parameters, the dataset's
    defaults are filled in for keys not given (``seed`` has no default and is only present when
    given). Raises ValueError for an unknown dataset, an unknown key, a repeated key, a value
    that is not an integer or is below the key's minimum, or parameters on a dataset without any.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    base, sep, param_text = name.strip().partition(":")
    base = base.strip().lower()
    if base not in DATASETS:
        raise _unknown_name_error("dataset", base, sorted(DATASETS))
    spec = DATASETS[base]
    params: dict[str, int] = {}
    if sep:
        if not spec.param_keys:
            raise ValueError(f"dataset {base!r} takes no parameters (got {name!r})")
        valid = ", ".join(spec.param_keys)
        for part in param_text.split(","):
            key, eq, value = (s.strip() for s in part.partition("="))
            key = key.lower()
            if not eq or not key:
                raise ValueError(
                    f"bad parameter {part.strip()!r} in {name!r}: expected key=value "
                    f"with key one of {valid}"
                )
            if key not in spec.param_keys:
                raise ValueError(f"unknown parameter {key!r} in {name!r}; valid keys: {valid}")
            if key in params:
                raise ValueError(f"parameter {key!r} given twice in {name!r}")
            if not _INT_RE.fullmatch(value):
                raise ValueError(
                    f"bad value in {part.strip()!r} of {name!r}: {key} must be an integer "
                    f"(valid keys: {valid})"
                )
            number = int(value)
            minimum = spec.param_min.get(key, 1)
            if number < minimum:
                what = "positive" if minimum == 1 else f">= {minimum}"
                raise ValueError(
                    f"bad value in {part.strip()!r} of {name!r}: {key} must be {what} "
                    f"(valid keys: {valid})"
                )
            params[key] = number
    return base, {**spec.default_params, **params}


def dataset_names() -> list[str]:
    """Registered dataset names in registry order; parametric ones with their default values."""
    return [spec.display_name(base) for base, spec in DATASETS.items()]


# ---------------------------------------------------------------------------------------------
# Validation


def _count_nonfinite(X: np.ndarray) -> tuple[int, int]:
    if X.dtype.kind not in "fc":
        return 0, 0
    n_nan = int(np.count_nonzero(np.isnan(X)))
    n_inf = int(np.count_nonzero(np.isinf(X)))
    return n_nan, n_inf


def validate_arrays(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    name: str,
) -> None:
    """Check a raw train/test split; raise DatasetError naming ``name`` on the first problem.

    Checks: X are 2-D numeric with at least one row and column and the same number of columns
    in both splits; y are 1-D integer-valued with one label per row of X; labels lie in
    [0, n_classes); X contain no NaN or inf.
    """
    if int(n_classes) < 1:
        raise DatasetError(f"{name}: n_classes must be >= 1, got {n_classes}")
    splits = (("train", X_train, y_train), ("test", X_test, y_test))
    for split, X, y in splits:
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
        bad = (y < 0) | (y >= n_classes)
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            raise DatasetError(
                f"{name}: {n_bad} labels in the {split} split outside [0, {n_classes}) "
                f"(min {y.min()}, max {y.max()})"
            )
        n_nan, n_inf = _count_nonfinite(X)
        if n_nan or n_inf:
            raise DatasetError(
                f"{name}: {n_nan + n_inf} non-finite feature values in the {split} split "
                f"({n_nan} NaN, {n_inf} inf)"
            )
    if np.shape(X_train)[1] != np.shape(X_test)[1]:
        raise DatasetError(
            f"{name}: train has {np.shape(X_train)[1]} features but test has {np.shape(X_test)[1]}"
        )


# ---------------------------------------------------------------------------------------------
# Preprocessing: each function takes the raw train and test features (any numeric dtype),
# computes in float64 on new arrays and returns (X_train, X_test) as float64.


def _as_float64(X: np.ndarray) -> np.ndarray:
    return np.array(X, dtype=np.float64, order="C", copy=True)


def _prep_none(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw values as float64."""
    return _as_float64(X_train), _as_float64(X_test)


def _prep_scale(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _prep_minmax(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (row): (x - min) / (max - min); rows with max == min become zeros."""
    return _minmax_rows(X_train), _minmax_rows(X_test)


def _prep_standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

PREPROCESSING: dict[str, PreprocessFn] = {
    "scale": _prep_scale,
    "minmax": _prep_minmax,
    "standardize": _prep_standardize,
    "none": _prep_none,
}


def _resolve_preprocess(preprocess: str) -> str:
    key = str(preprocess).strip().lower()
    if key not in PREPROCESSING:
        raise _unknown_name_error("preprocessing", key, list(PREPROCESSING))
    return key


_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _resolve_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; valid: float32, float64") from exc
    if resolved not in _DTYPES:
        raise ValueError(f"unsupported dtype {resolved}; valid: float32, float64")
    return resolved


# ---------------------------------------------------------------------------------------------
# scikit-learn based datasets


def _import_sklearn(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DatasetError(
            f"scikit-learn is required for this dataset but cannot be imported ({exc}); "
            "install it with: pip install scikit-learn"
        ) from exc


def _split(
    X: np.ndarray, y: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    model_selection = _import_sklearn("sklearn.model_selection")
    X_tr, X_te, y_tr, y_te = model_selection.train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=None
    )
    return X_tr, y_tr, X_te, y_te


@functools.lru_cache(maxsize=4)
def _sklearn_arrays(func_name: str) -> tuple[np.ndarray, np.ndarray]:
    datasets = _import_sklearn("sklearn.datasets")
    X, y = getattr(datasets, func_name)(return_X_y=True)
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _sklearn_loader(func_name: str, n_classes: int) -> Callable[..., _Raw]:
    def load(params: dict[str, int], *, seed: int, test_size: float, **_: Any) -> _Raw:
        X, y = _sklearn_arrays(func_name)
        X_tr, y_tr, X_te, y_te = _split(X, y, test_size, seed)
        source = (
            f"sklearn.datasets.{func_name} "
            f"(train_test_split test_size={test_size}, random_state={seed})"
        )
        return _Raw(X_tr, y_tr, X_te, y_te, n_classes, source)

    return load


def _sklearn_status(params: dict[str, int], data_dir: Any) -> str | None:
    if importlib.util.find_spec("sklearn") is None:
        return "scikit-learn is not installed (pip install scikit-learn)"
    return None


# ---------------------------------------------------------------------------------------------
# Synthetic data

SYNTHETIC_DEFAULTS: dict[str, int] = {"n": 10000, "d": 784, "k": 10}


def _synthetic_kwargs(params: Mapping[str, int]) -> dict[str, int]:
    """make_classification arguments for n samples, d features, k classes.

    n_informative = min(d, max(2, ceil(log2(2k)), d // 2)); two clusters per class when
    2**n_informative >= 2k, else one; up to 2 redundant features when d leaves room.
    """
    n, d, k = params["n"], params["d"], params["k"]
    if k < 2:
        raise DatasetError(f"synthetic: k={k}; at least 2 classes are needed")
    if n < 2:
        raise DatasetError(f"synthetic: n={n}; at least 2 samples are needed for a split")
    n_informative = min(d, max(2, (2 * k - 1).bit_length(), d // 2))
    if 2**n_informative >= 2 * k:
        clusters = 2
    elif 2**n_informative >= k:
        clusters = 1
    else:
        max_k = 2**n_informative
        raise DatasetError(
            f"synthetic: k={k} classes with d={d} features is not possible: "
            f"make_classification needs 2**n_informative >= k * n_clusters_per_class and "
            f"n_informative <= d, so d={d} allows at most k={max_k}"
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


def _load_synthetic(params: dict[str, int], *, seed: int, test_size: float, **_: Any) -> _Raw:
    kwargs = _synthetic_kwargs(params)
    gen_seed = params.get("seed", seed)
    datasets = _import_sklearn("sklearn.datasets")
    X, y = datasets.make_classification(**kwargs, random_state=gen_seed)
    X_tr, y_tr, X_te, y_te = _split(X, y.astype(np.int64), test_size, seed)
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    source = (
        f"sklearn.datasets.make_classification({args}, random_state={gen_seed}) "
        f"(train_test_split test_size={test_size}, random_state={seed})"
    )
    return _Raw(X_tr, y_tr, X_te, y_te, params["k"], source)


def _synthetic_status(params: dict[str, int], data_dir: Any) -> str | None:
    reason = _sklearn_status(params, data_dir)
    if reason is not None:
        return reason
    try:
        _synthetic_kwargs(params)
    except DatasetError as exc:
        return str(exc).splitlines()[0]
    return None


# ---------------------------------------------------------------------------------------------
# MNIST-format files (IDX or Keras-style npz)

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
IMAGE_SHAPE = (28, 28)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# (file name without .gz, magic number), in the order train images, train labels,
# test images, test labels.
IDX_FILES: tuple[tuple[str, int], ...] = (
    ("train-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    ("train-labels-idx1-ubyte", IDX_LABELS_MAGIC),
    ("t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    ("t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC),
)

# Extra roots searched after the cache, per dataset. Debian's dataset-fashion-mnist package
# installs the four .gz files into /usr/share/datasets/fashion-mnist/.
SYSTEM_DATA_DIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}

# Printed in the not-found error after the download URLs.
INSTALL_HINTS: dict[str, str] = {
    "fashion-mnist": "on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
    "(installs /usr/share/datasets/fashion-mnist)",
}


@dataclasses.dataclass(frozen=True)
class DownloadSource:
    """Files fetched from ``base_url + file_name``, each checked against its SHA-256."""

    base_url: str
    files: tuple[tuple[str, str], ...]  # (file name, lower-case hex SHA-256)

    def urls(self) -> list[str]:
        return [self.base_url + file_name for file_name, _ in self.files]


# Sources are tried in order until one yields all its files with the expected hashes.
DOWNLOAD_SOURCES: dict[str, tuple[DownloadSource, ...]] = {
    "mnist": (
        # URL and SHA-256 from Keras: keras/src/datasets/mnist.py (load_data, file_hash).
        DownloadSource(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            (("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),),
        ),
        # URLs and SHA-256 from tensorflow/datasets:
        # tensorflow_datasets/url_checksums/mnist.txt (URL, size, sha256, file name).
        DownloadSource(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            (
                (
                    "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
            ),
        ),
    ),
    "fashion-mnist": (
        # URLs and SHA-256 from tensorflow/datasets:
        # tensorflow_datasets/url_checksums/fashion_mnist.txt (URL, size, sha256, file name).
        DownloadSource(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            (
                (
                    "train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ),
            ),
        ),
    ),
}


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mlp-bench`` if XDG_CACHE_HOME is set and non-empty, else
    ``~/.cache/mlp-bench``. The folder is not created."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mlp-bench"


def data_roots(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """Roots searched for ``name``'s files, in order, each with a label saying where it comes
    from: ``data_dir``, ``$MLP_BENCH_DATA`` (when set and non-empty), :func:`cache_dir`, then
    ``SYSTEM_DATA_DIRS[name]``."""
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir).expanduser(), "data_dir / --data-dir"))
    env = os.environ.get(ENV_DATA_DIR, "")
    if env:
        roots.append((Path(env).expanduser(), f"${ENV_DATA_DIR}"))
    roots.append((cache_dir(), "user cache"))
    for folder in SYSTEM_DATA_DIRS.get(name, ()):
        roots.append((Path(folder), "system data folder"))
    return roots


def search_dirs(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> list[tuple[Path, str]]:
    """Folders searched for ``name``'s files, in order: each root of :func:`data_roots`
    followed by its subfolder ``name``; repeated folders are listed once."""
    seen: set[Path] = set()
    folders: list[tuple[Path, str]] = []
    for root, label in data_roots(name, data_dir):
        for folder in (root, root / name):
            key = folder.absolute()
            if key not in seen:
                seen.add(key)
                folders.append((folder, label))
    return folders


@dataclasses.dataclass(frozen=True)
class _Found:
    kind: str  # "idx" (paths in IDX_FILES order) or "npz" (one path)
    paths: tuple[Path, ...]


def _expected_files_text(name: str) -> str:
    idx = ", ".join(f"{stem}[.gz]" for stem, _ in IDX_FILES)
    return f"the four IDX files {idx}, or {name}.npz with arrays {', '.join(NPZ_KEYS)}"


def _find_in_dir(name: str, folder: Path) -> tuple[_Found | None, str]:
    """Files for ``name`` in ``folder``: a complete IDX set (plain file preferred over .gz),
    else ``name.npz``. Returns (found or None, note for the error message)."""
    if not folder.exists():
        return None, "does not exist"
    if not folder.is_dir():
        return None, "not a folder"
    paths: list[Path] = []
    missing: list[str] = []
    for stem, _ in IDX_FILES:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                paths.append(candidate)
                break
        else:
            missing.append(stem)
    if not missing:
        return _Found("idx", tuple(paths)), ""
    npz = folder / f"{name}.npz"
    if npz.is_file():
        return _Found("npz", (npz,)), ""
    if paths:
        return None, "incomplete IDX set, missing " + ", ".join(f"{m}[.gz]" for m in missing)
    return None, "no matching files"


def _locate(
    name: str, data_dir: str | os.PathLike[str] | None
) -> tuple[_Found | None, list[tuple[Path, str, str]]]:
    searched: list[tuple[Path, str, str]] = []
    for folder, label in search_dirs(name, data_dir):
        found, note = _find_in_dir(name, folder)
        if found is not None:
            return found, searched
        searched.append((folder, label, note))
    return None, searched


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from exc
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt gzip file ({exc})") from exc
    return data


def read_idx(path: str | os.PathLike[str], expected_magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed when the name ends in .gz).

    Checks the magic number against ``expected_magic``, that every dimension is positive and
    that the payload holds exactly prod(dims) bytes. Returns a read-only uint8 array of shape
    dims. Raises DatasetError naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{path}: IDX header truncated: {len(data)} bytes, expected {header_size}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(dim == 0 for dim in dims):
        raise DatasetError(f"{path}: IDX dimensions {dims} contain 0")
    expected = math.prod(dims)
    actual = len(data) - header_size
    if actual != expected:
        what = "truncated" if actual < expected else "trailing data"
        raise DatasetError(
            f"{path}: IDX payload size mismatch ({what}): expected {expected} bytes "
            f"for dimensions {dims}, found {actual}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _check_images(path: Path, images: np.ndarray) -> np.ndarray:
    shape = images.shape
    if images.ndim == 3 and shape[1:] == IMAGE_SHAPE:
        return images.reshape(shape[0], -1)
    if images.ndim == 2 and shape[1] == math.prod(IMAGE_SHAPE):
        return images
    raise DatasetError(
        f"{path}: images have shape {shape}, expected (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]})"
        f" or (n, {math.prod(IMAGE_SHAPE)})"
    )


def _check_pair(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path, what: str
) -> None:
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{what}: {images.shape[0]} images in {images_path} but {labels.shape[0]} labels "
            f"in {labels_path}"
        )


def _read_idx_set(paths: tuple[Path, ...]) -> tuple[np.ndarray, ...]:
    arrays = [read_idx(path, magic) for path, (_, magic) in zip(paths, IDX_FILES, strict=True)]
    x_train = _check_images(paths[0], arrays[0])
    x_test = _check_images(paths[2], arrays[2])
    _check_pair(x_train, arrays[1], paths[0], paths[1], "train split")
    _check_pair(x_test, arrays[3], paths[2], paths[3], "test split")
    return x_train, arrays[1].astype(np.int64), x_test, arrays[3].astype(np.int64)


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not an .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: missing arrays {', '.join(missing)} "
                    f"(has: {', '.join(archive.files) or 'nothing'}; "
                    f"expected {', '.join(NPZ_KEYS)})"
                )
            x_train, y_train, x_test, y_test = (archive[key] for key in NPZ_KEYS)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read .npz archive ({exc})") from exc
    out = []
    for key, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype.kind not in "uif":
            raise DatasetError(f"{path}: x_{key} has non-numeric dtype {x.dtype}")
        x = _check_images(path, x)
        if y.ndim != 1:
            raise DatasetError(f"{path}: y_{key} has shape {y.shape}, expected (n,)")
        if y.dtype.kind not in "uif":
            raise DatasetError(f"{path}: y_{key} has non-numeric dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DatasetError(f"{path}: y_{key} holds non-integer labels")
        if x.shape[0] != y.shape[0]:
            raise DatasetError(
                f"{path}: x_{key} has {x.shape[0]} images but y_{key} has {y.shape[0]} labels"
            )
        out += [x, y.astype(np.int64)]
    return tuple(out)


_READERS: dict[str, Callable[[tuple[Path, ...]], tuple[np.ndarray, ...]]] = {
    "idx": _read_idx_set,
    "npz": lambda paths: _read_npz(paths[0]),
}


@functools.lru_cache(maxsize=4)
def _read_found_cached(
    name: str, kind: str, paths: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(a) for a in _READERS[kind](paths))
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _read_found(name: str, found: _Found) -> tuple[np.ndarray, ...]:
    """Raw (X_train, y_train, X_test, y_test), read-only, cached by name, resolved paths and
    (size, mtime) of each file."""
    resolved = tuple(path.resolve() for path in found.paths)
    stamps = []
    for path in resolved:
        stat = path.stat()
        stamps.append((stat.st_size, stat.st_mtime_ns))
    return _read_found_cached(name, found.kind, resolved, tuple(stamps))


def clear_cache() -> None:
    """Empty the in-process caches of raw arrays."""
    _read_found_cached.cache_clear()
    _sklearn_arrays.cache_clear()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to a temporary file beside ``dest``, check its SHA-256, then rename it
    to ``dest``. The folder and temporary file are created only once the URL has opened. On a
    mismatch the temporary file is deleted and DatasetError is raised."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    actual = digest.hexdigest()
    if actual != sha256.lower():
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"{dest}: SHA-256 mismatch for download from {url}: expected {sha256.lower()}, "
            f"actual {actual}; the file was deleted"
        )
    os.replace(tmp, dest)


def _fetch_source(source: DownloadSource, dest_dir: Path) -> None:
    for file_name, sha256 in source.files:
        dest = dest_dir / file_name
        if dest.is_file() and _sha256(dest) == sha256.lower():
            continue
        url = source.base_url + file_name
        log.info("downloading %s -> %s", url, dest)
        try:
            _fetch(url, dest, sha256)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise DatasetError(f"{url}: download failed ({exc})") from exc


def download_dataset(name: str, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download ``name``'s files into ``dest_dir`` (default ``cache_dir() / name``).

    Tries each entry of ``DOWNLOAD_SOURCES[name]`` in order; files already present with the
    expected SHA-256 are kept. Returns the folder. Raises DatasetError listing each source's
    error when none succeeds.
    """
    base, _ = parse_dataset_name(name)
    sources = DOWNLOAD_SOURCES.get(base, ())
    if not sources:
        raise DatasetError(f"{base}: no download source configured")
    folder = Path(dest_dir) if dest_dir is not None else cache_dir() / base
    errors: list[str] = []
    for source in sources:
        try:
            _fetch_source(source, folder)
        except DatasetError as exc:
            errors.append(str(exc))
            continue
        return folder
    raise DatasetError(
        f"{base}: download failed from all {len(sources)} source(s)\n" + "\n".join(errors)
    )


def _not_found_message(
    name: str,
    searched: list[tuple[Path, str, str]],
    download: bool,
    download_error: str | None,
) -> str:
    outcome = "download failed" if download else "download disabled"
    lines = [f"{name}: data files not found in {len(searched)} searched folders; {outcome}"]
    lines.append("Searched, in order:")
    lines += [f"  {folder}  [{label}: {note}]" for folder, label, note in searched]
    lines.append(f"Expected in one of those folders: {_expected_files_text(name)}.")
    if download_error is not None:
        lines.append("Download error:")
        lines += [f"  {line}" for line in download_error.splitlines()]
    else:
        lines.append("Download: not attempted (download=False).")
    lines.append(
        f"To fix: put the files in a folder DIR and pass --data-dir DIR or set "
        f"${ENV_DATA_DIR}=DIR, or allow the download into {cache_dir() / name}."
    )
    sources = DOWNLOAD_SOURCES.get(name, ())
    if sources:
        lines.append("The files can be downloaded from:")
        lines += [f"  {url}" for source in sources for url in source.urls()]
    hint = INSTALL_HINTS.get(name)
    if hint:
        lines.append(f"Or {hint}.")
    return "\n".join(lines)


def _image_loader(name: str) -> Callable[..., _Raw]:
    def load(
        params: dict[str, int],
        *,
        data_dir: str | os.PathLike[str] | None,
        download: bool,
        **_: Any,
    ) -> _Raw:
        found, searched = _locate(name, data_dir)
        if found is None:
            download_error = None
            if download:
                try:
                    folder = download_dataset(name)
                except DatasetError as exc:
                    download_error = str(exc)
                else:
                    found, note = _find_in_dir(name, folder)
                    if found is None:
                        download_error = f"{folder}: after download: {note}"
            if found is None:
                raise DatasetError(_not_found_message(name, searched, download, download_error))
        X_tr, y_tr, X_te, y_te = _read_found(name, found)
        source = f"{found.kind} files: " + ", ".join(str(p) for p in found.paths)
        return _Raw(X_tr, y_tr, X_te, y_te, 10, source)

    return load


def _image_status(name: str) -> Callable[[dict[str, int], Any], str | None]:
    def status(params: dict[str, int], data_dir: Any) -> str | None:
        found, searched = _locate(name, data_dir)
        if found is not None:
            return None
        return (
            f"files not found in {len(searched)} folders; downloaded on first use, "
            f"or use --data-dir / ${ENV_DATA_DIR}"
        )

    return status


# ---------------------------------------------------------------------------------------------
# Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Registry entry.

    ``loader(params, *, seed, test_size, data_dir, download)`` returns the raw split;
    ``status(params, data_dir)`` returns None when the data is available without download,
    else a short reason.
    """

    loader: Callable[..., _Raw]
    description: str
    fixed_split: bool
    default_preprocess: str
    status: Callable[[dict[str, int], Any], str | None]
    default_params: Mapping[str, int] = dataclasses.field(default_factory=dict)
    param_keys: tuple[str, ...] = ()
    param_min: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def display_name(self, base: str) -> str:
        if not self.default_params:
            return base
        return base + ":" + ",".join(f"{k}={v}" for k, v in self.default_params.items())


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        loader=_sklearn_loader("load_digits", 10),
        description="sklearn 8x8 digits, 1797 samples, 64 features, 10 classes",
        fixed_split=False,
        default_preprocess="scale",
        status=_sklearn_status,
    ),
    "breast-cancer": DatasetSpec(
        loader=_sklearn_loader("load_breast_cancer", 2),
        description="sklearn Wisconsin breast cancer, 569 samples, 30 features, 2 classes",
        fixed_split=False,
        default_preprocess="standardize",
        status=_sklearn_status,
    ),
    "mnist": DatasetSpec(
        loader=_image_loader("mnist"),
        description="MNIST handwritten digits, 60000/10000, 784 features, 10 classes",
        fixed_split=True,
        default_preprocess="scale",
        status=_image_status("mnist"),
    ),
    "fashion-mnist": DatasetSpec(
        loader=_image_loader("fashion-mnist"),
        description="Fashion-MNIST clothing images, 60000/10000, 784 features, 10 classes",
        fixed_split=True,
        default_preprocess="scale",
        status=_image_status("fashion-mnist"),
    ),
    "synthetic": DatasetSpec(
        loader=_load_synthetic,
        description="sklearn make_classification with n samples, d features, k classes "
        "(name synthetic:n=N,d=D,k=K[,seed=S])",
        fixed_split=False,
        default_preprocess="standardize",
        status=_synthetic_status,
        default_params=SYNTHETIC_DEFAULTS,
        param_keys=("n", "d", "k", "seed"),
        param_min={"seed": 0},
    ),
}


def dataset_status(name: str, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """None when ``name`` can be loaded here without a download, else a short reason.

    Only checks that scikit-learn is importable or that the files exist; no data is read.
    Raises ValueError for names :func:`parse_dataset_name` rejects.
    """
    base, params = parse_dataset_name(name)
    return DATASETS[base].status(params, data_dir)


def load_dataset(
    name: str,
    preprocess: str | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    test_size: float = 0.2,
    dtype: Any = "float32",
    download: bool = True,
) -> Dataset:
    """Load, validate and preprocess dataset ``name``.

    ``preprocess=None`` uses the dataset's default. ``seed`` is the ``random_state`` of the
    train/test split for datasets without a fixed split, and for ``synthetic`` also the
    generator seed unless the name gives ``seed=``. ``test_size`` is ignored for datasets with
    a fixed split. Arithmetic is done in float64 and the result cast once to ``dtype``
    (float32 or float64).
    """
    base, params = parse_dataset_name(name)
    spec = DATASETS[base]
    prep = _resolve_preprocess(spec.default_preprocess if preprocess is None else preprocess)
    out_dtype = _resolve_dtype(dtype)
    raw = spec.loader(params, seed=seed, test_size=test_size, data_dir=data_dir, download=download)
    label = name.strip()
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
