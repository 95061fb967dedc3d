"""Datasets for mlp-bench: names, sources, files, preprocessing.

load_dataset(name, ...) returns a Dataset holding the train/test features, one-hot targets and
integer labels. The package's modules, each with one job:

- registry: the datasets by name (DATASETS), names with parameters and their canonical form
- sources: scikit-learn's tables and synthetic make_classification data
- images: MNIST and Fashion-MNIST (find the files, download them, say where they were looked for)
- files: reading IDX and .npz files
- locate: where files are looked for (an explicit data folder, $MLP_BENCH_DATA, the cache,
  system folders)
- download: download sources and their SHA-256
- validate: checks on a raw split
- preprocess: the preprocessing functions (PREPROCESSING)
- load: load_dataset, dataset_status, applied_preprocess

Importing it needs NumPy only; scikit-learn is imported when a dataset made by it is loaded.
"""

from __future__ import annotations

from .base import Dataset, DatasetError, RawSplit
from .download import DOWNLOAD_SOURCES, DownloadSource
from .files import read_idx
from .load import (
    applied_preprocess,
    clear_cache,
    dataset_status,
    download_dataset,
    load_dataset,
)
from .locate import SYSTEM_DATA_DIRS, cache_dir, data_roots, resolve_data_dir, search_dirs
from .preprocess import PREPROCESSING
from .registry import (
    DATASETS,
    DatasetSpec,
    canonical_dataset_name,
    dataset_names,
    parse_dataset_name,
)
from .validate import validate_arrays

__all__ = [
    "DATASETS",
    "DOWNLOAD_SOURCES",
    "PREPROCESSING",
    "SYSTEM_DATA_DIRS",
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "DownloadSource",
    "RawSplit",
    "applied_preprocess",
    "cache_dir",
    "canonical_dataset_name",
    "clear_cache",
    "data_roots",
    "dataset_names",
    "dataset_status",
    "download_dataset",
    "load_dataset",
    "parse_dataset_name",
    "read_idx",
    "resolve_data_dir",
    "search_dirs",
    "validate_arrays",
]
