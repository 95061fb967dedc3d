"""The datasets by name, and dataset names with parameters: "synthetic:n=500,d=20,k=3".

Names are case-insensitive and ignore surrounding spaces. A name has one canonical form
(`canonical_dataset_name`), so that names meaning the same data are one dataset in a sweep.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from impls.spec import unknown_name_message

from .base import RawSplit
from .images import image_loader, image_status
from .sources import (
    SYNTHETIC_BOUNDS,
    SYNTHETIC_DEFAULTS,
    load_synthetic,
    sklearn_loader,
    sklearn_status,
    synthetic_kwargs,
)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    loader(params, *, seed, test_size, data_dir, download) returns the raw split.
    status(params, data_dir) returns None when the data is available without a download,
    else a short reason. Datasets with parameters list their keys in `param_bounds` (key ->
    (smallest, largest) integer), their defaults in `default_params`, and may check the
    parameters together with `check_params` (raises ValueError).
    """

    loader: Callable[..., RawSplit]
    description: str
    fixed_split: bool
    default_preprocess: str
    status: Callable[[dict[str, int], Any], str | None]
    default_params: Mapping[str, int] = dataclasses.field(default_factory=dict)
    param_bounds: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    check_params: Callable[[Mapping[str, int]], Any] | None = None

    @property
    def param_keys(self) -> tuple[str, ...]:
        return tuple(self.param_bounds)

    def display_name(self, base: str) -> str:
        """The name with the default parameters written out, e.g. synthetic:n=10000,d=784,k=10."""
        return _join(base, self.default_params)


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        loader=sklearn_loader("load_digits", 10),
        description="sklearn 8x8 digits, 1797 samples, 64 features, 10 classes",
        fixed_split=False,
        default_preprocess="scale",
        status=sklearn_status,
    ),
    "breast-cancer": DatasetSpec(
        loader=sklearn_loader("load_breast_cancer", 2),
        description="sklearn Wisconsin breast cancer, 569 samples, 30 features, 2 classes",
        fixed_split=False,
        default_preprocess="standardize",
        status=sklearn_status,
    ),
    "mnist": DatasetSpec(
        loader=image_loader("mnist"),
        description="MNIST handwritten digits, 60000/10000, 784 features, 10 classes",
        fixed_split=True,
        default_preprocess="scale",
        status=image_status("mnist"),
    ),
    "fashion-mnist": DatasetSpec(
        loader=image_loader("fashion-mnist"),
        description="Fashion-MNIST clothing images, 60000/10000, 784 features, 10 classes",
        fixed_split=True,
        default_preprocess="scale",
        status=image_status("fashion-mnist"),
    ),
    "synthetic": DatasetSpec(
        loader=load_synthetic,
        description="sklearn make_classification with n samples, d features, k classes "
        "(name synthetic:n=N,d=D,k=K[,seed=S])",
        fixed_split=False,
        default_preprocess="standardize",
        status=sklearn_status,
        default_params=SYNTHETIC_DEFAULTS,
        param_bounds=SYNTHETIC_BOUNDS,
        check_params=synthetic_kwargs,
    ),
}

_INT_RE = re.compile(r"[+-]?[0-9]+")


def _join(base: str, params: Mapping[str, int]) -> str:
    if not params:
        return base
    return base + ":" + ",".join(f"{k}={v}" for k, v in params.items())


def _parse_value(key: str, value: str, part: str, name: str, spec: DatasetSpec) -> int:
    lo, hi = spec.param_bounds[key]
    rule = f"{key} must be an integer from {lo} to {hi}"
    where = f"bad value in {part!r} of {name!r}"
    valid = ", ".join(spec.param_keys)
    if not _INT_RE.fullmatch(value):
        raise ValueError(f"{where}: {rule} (valid keys: {valid})")
    digits = value.lstrip("+-").lstrip("0")
    if len(digits) > len(str(hi)) or not lo <= int(value) <= hi:
        raise ValueError(f"{where}: {rule}")
    return int(value)


def parse_dataset_name(name: str) -> tuple[str, dict[str, int]]:
    """Split "base:key=value,..." into the registered base name and its integer parameters.

    For datasets with parameters, the defaults are filled in for keys not given (synthetic's
    seed has no default and is present only when given); the result lists the keys in the
    registry's order. Raises ValueError for an unknown dataset, an unknown or repeated key, a
    value that is not an integer within the key's bounds, parameters that do not fit
    together, or parameters on a dataset that takes none.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    base, sep, param_text = name.strip().partition(":")
    base = base.strip().lower()
    if base not in DATASETS:
        raise ValueError(unknown_name_message("dataset", base, sorted(DATASETS)))
    spec = DATASETS[base]
    given: dict[str, int] = {}
    if sep:
        if not spec.param_keys:
            raise ValueError(f"dataset {base!r} takes no parameters (got {name!r})")
        valid = ", ".join(spec.param_keys)
        for raw_part in param_text.split(","):
            part = raw_part.strip()
            key, eq, value = (s.strip() for s in part.partition("="))
            key = key.lower()
            if not eq or not key:
                raise ValueError(
                    f"bad parameter {part!r} in {name!r}: expected key=value "
                    f"with key one of {valid}"
                )
            if key not in spec.param_bounds:
                raise ValueError(f"unknown parameter {key!r} in {name!r}; valid keys: {valid}")
            if key in given:
                raise ValueError(f"parameter {key!r} given twice in {name!r}")
            given[key] = _parse_value(key, value, part, name, spec)
    merged = {**spec.default_params, **given}
    params = {key: merged[key] for key in spec.param_keys if key in merged}
    if spec.check_params is not None:
        spec.check_params(params)
    return base, params


def canonical_dataset_name(name: str) -> str:
    """The one spelling of a dataset name: lower case, no spaces, parameters in the registry's
    order (n, d, k, seed for synthetic) with the defaults written out and integers without
    signs or leading zeros. Two names mean the same data exactly when their canonical names
    are equal: " Synthetic:N=0500 ", "synthetic:k=10,n=500" and "synthetic:n=500,d=784,k=10"
    are all "synthetic:n=500,d=784,k=10". Raises ValueError as parse_dataset_name does."""
    return _join(*parse_dataset_name(name))


def dataset_names() -> list[str]:
    """Registered dataset names in registry order; those with parameters show their defaults."""
    return [spec.display_name(base) for base, spec in DATASETS.items()]
