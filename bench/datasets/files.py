"""MNIST-format files: the four IDX files (optionally gzip-compressed) or a Keras-style .npz
archive, read into (X_train, y_train, X_test, y_test) with every problem named by file."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .base import DatasetError

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
IMAGE_SHAPE = (28, 28)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# (file name without .gz, magic number): train images, train labels, test images, test labels.
IDX_FILES: tuple[tuple[str, int], ...] = (
    ("train-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    ("train-labels-idx1-ubyte", IDX_LABELS_MAGIC),
    ("t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC),
    ("t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC),
)


@dataclasses.dataclass(frozen=True)
class FileSet:
    """Files holding one dataset: kind "idx" (four paths in IDX_FILES order) or "npz" (one)."""

    kind: str
    paths: tuple[Path, ...]


def expected_files_text(name: str) -> str:
    """The files a folder must hold for dataset `name`, in words."""
    idx = ", ".join(f"{stem}[.gz]" for stem, _ in IDX_FILES)
    return f"the four IDX files {idx}, or {name}.npz with arrays {', '.join(NPZ_KEYS)}"


def find_files(name: str, folder: Path) -> tuple[FileSet | None, str]:
    """The files for `name` in `folder`: a complete IDX set (a plain file preferred over its
    .gz), else `name`.npz. Returns (files or None, why nothing was found)."""
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
        return FileSet("idx", tuple(paths)), ""
    npz = folder / f"{name}.npz"
    if npz.is_file():
        return FileSet("npz", (npz,)), ""
    if paths:
        return None, "incomplete IDX set, missing " + ", ".join(f"{m}[.gz]" for m in missing)
    return None, "no matching files"


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

    Checks the magic number against `expected_magic`, that every dimension is positive and
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


def _flat_images(path: Path, images: np.ndarray) -> np.ndarray:
    shape = images.shape
    if images.ndim == 3 and shape[1:] == IMAGE_SHAPE:
        return images.reshape(shape[0], -1)
    if images.ndim == 2 and shape[1] == math.prod(IMAGE_SHAPE):
        return images
    raise DatasetError(
        f"{path}: images have shape {shape}, expected (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]})"
        f" or (n, {math.prod(IMAGE_SHAPE)})"
    )


def _read_idx_set(paths: tuple[Path, ...]) -> tuple[np.ndarray, ...]:
    arrays = [read_idx(path, magic) for path, (_, magic) in zip(paths, IDX_FILES, strict=True)]
    out = []
    for split, (images_path, labels_path), images, labels in (
        ("train", paths[:2], arrays[0], arrays[1]),
        ("test", paths[2:], arrays[2], arrays[3]),
    ):
        images = _flat_images(images_path, images)
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{split} split: {images.shape[0]} images in {images_path} but "
                f"{labels.shape[0]} labels in {labels_path}"
            )
        out += [images, labels.astype(np.int64)]
    return tuple(out)


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
        x = _flat_images(path, x)
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


@functools.lru_cache(maxsize=4)
def _read_cached(
    kind: str, paths: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, ...]:
    arrays = _read_idx_set(paths) if kind == "idx" else _read_npz(paths[0])
    arrays = tuple(np.asarray(a) for a in arrays)
    for array in arrays:
        array.flags.writeable = False
    return arrays


def read_files(files: FileSet) -> tuple[np.ndarray, ...]:
    """(X_train, y_train, X_test, y_test), read-only. Kept in memory per resolved path and
    (size, mtime) of each file, so a changed file is read again."""
    resolved = tuple(path.resolve() for path in files.paths)
    stamps = tuple((s.st_size, s.st_mtime_ns) for s in (path.stat() for path in resolved))
    return _read_cached(files.kind, resolved, stamps)


def clear_file_cache() -> None:
    _read_cached.cache_clear()


def cached_reads() -> int:
    """How many file sets are held in memory (for tests)."""
    return _read_cached.cache_info().currsize
