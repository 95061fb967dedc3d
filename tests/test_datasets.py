"""Tests for bench.datasets: file formats, search order, downloads, validation, preprocessing."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import datasets as dsm
from bench.datasets import (
    DATASETS,
    PREPROCESSING,
    Dataset,
    DatasetError,
    DownloadSource,
    cache_dir,
    dataset_names,
    dataset_status,
    download,
    files,
    load_dataset,
    locate,
    parse_dataset_name,
    read_idx,
    validate_arrays,
)

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
REAL_SOURCES = dict(download.DOWNLOAD_SOURCES)  # taken before the fixture replaces the table


# ---------------------------------------------------------------------------------------------
# helpers


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_images(n_train: int = 6, n_test: int = 4, seed: int = 0, label_offset: int = 0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    x_train[0, 0, 0] = 255  # fixes the training maximum for the "scale" check
    y_train = (np.arange(n_train) + label_offset) % 10
    y_test = (np.arange(n_test) * 3 + label_offset) % 10
    return x_train, y_train.astype(np.uint8), x_test, y_test.astype(np.uint8)


def write_idx_set(folder: Path, gz: bool = True, **kwargs) -> tuple[np.ndarray, ...]:
    arrays = make_images(**kwargs)
    suffix = ".gz" if gz else ""
    for stem, array in zip(IDX_NAMES, arrays, strict=True):
        write_idx(folder / f"{stem}{suffix}", array)
    return arrays


def write_npz(path: Path, arrays=None, **overrides) -> tuple[np.ndarray, ...]:
    arrays = make_images() if arrays is None else arrays
    content = dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=True))
    content.update(overrides)
    content = {k: v for k, v in content.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **content)
    return arrays


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache, environment folder, system folder or network source is reachable."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MLP_BENCH_DATA", raising=False)
    monkeypatch.delenv("MLP_BENCH_SPLIT_CACHE", raising=False)  # the user cache, in tmp_path
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", {"fashion-mnist": (str(tmp_path / "system"),)})
    missing = (tmp_path / "no-such-server").as_uri() + "/"
    monkeypatch.setattr(
        download,
        "DOWNLOAD_SOURCES",
        {
            "mnist": (DownloadSource(missing, (("mnist.npz", "0" * 64),)),),
            "fashion-mnist": (DownloadSource(missing, (("x.gz", "0" * 64),)),),
        },
    )
    dsm.clear_cache()
    yield
    dsm.clear_cache()


# ---------------------------------------------------------------------------------------------
# IDX / npz round trips


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    x_train, y_train, x_test, y_test = write_idx_set(tmp_path / "d", gz=gz)
    ds = load_dataset("mnist", preprocess="none", data_dir=tmp_path / "d", download=False)
    assert isinstance(ds, Dataset)
    assert (ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (6, 4, 784, 10)
    assert ds.X_train.dtype == np.float32
    assert ds.X_train.flags.c_contiguous
    np.testing.assert_array_equal(ds.X_train, x_train.reshape(6, 784).astype(np.float32))
    np.testing.assert_array_equal(ds.X_test, x_test.reshape(4, 784).astype(np.float32))
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.Y_train.shape == (6, 10)
    assert ds.Y_train.dtype == np.float32
    np.testing.assert_array_equal(ds.Y_train.argmax(1), y_train)
    np.testing.assert_array_equal(ds.Y_train.sum(1), np.ones(6))
    suffix = ".gz" if gz else ""
    assert str(tmp_path / "d" / f"train-images-idx3-ubyte{suffix}") in ds.source
    assert ds.name == "mnist"
    assert ds.preprocess == "none"


def test_plain_idx_preferred_over_gz_in_same_folder(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder, gz=True, label_offset=0)
    write_idx_set(folder, gz=False, label_offset=5)
    ds = load_dataset("mnist", preprocess="none", data_dir=folder, download=False)
    assert ds.y_train[0] == 5
    assert "train-images-idx3-ubyte.gz" not in ds.source


def test_read_idx_returns_values_and_shape(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / "a.gz", array), 0x803)
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("image_shape", [(28, 28), (784,)])
def test_npz_round_trip(tmp_path, image_shape):
    x_train, y_train, x_test, y_test = make_images(n_train=5, n_test=3)
    arrays = (
        x_train.reshape(5, *image_shape),
        y_train.astype(np.int64),
        x_test.reshape(3, *image_shape),
        y_test,
    )
    write_npz(tmp_path / "mnist.npz", arrays)
    ds = load_dataset("mnist", preprocess="none", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.X_train, x_train.reshape(5, 784))
    np.testing.assert_array_equal(ds.X_test, x_test.reshape(3, 784))
    np.testing.assert_array_equal(ds.y_train, y_train)
    assert str(tmp_path / "mnist.npz") in ds.source


def test_fashion_npz_name(tmp_path):
    write_npz(tmp_path / "fashion-mnist" / "fashion-mnist.npz")
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert ds.n_train == 6
    # mnist.npz is not a Fashion-MNIST file
    write_npz(tmp_path / "other" / "mnist.npz")
    with pytest.raises(DatasetError, match=r"fashion-mnist\.npz"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "other", download=False)


# ---------------------------------------------------------------------------------------------
# search order


def test_data_dir_subfolder(tmp_path):
    write_idx_set(tmp_path / "root" / "mnist", label_offset=3)
    ds = load_dataset("mnist", data_dir=tmp_path / "root", download=False)
    assert ds.y_train[0] == 3
    assert str(tmp_path / "root" / "mnist") in ds.source


def test_env_variable(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "env", label_offset=4)
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))
    ds = load_dataset("mnist", download=False)
    assert ds.y_train[0] == 4


def test_cache_folder_from_xdg(tmp_path):
    assert cache_dir() == tmp_path / "xdg-cache" / "mlp-bench"
    write_idx_set(cache_dir() / "mnist", label_offset=6)
    ds = load_dataset("mnist", download=False)
    assert ds.y_train[0] == 6


def test_cache_folder_default_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlp-bench"
    # a relative XDG_CACHE_HOME is ignored, as the XDG spec says (it made the cache follow
    # the working directory)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlp-bench"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlp-bench"


def test_search_order_precedence(tmp_path, monkeypatch):
    system = tmp_path / "system"
    write_idx_set(system, label_offset=1)
    write_idx_set(cache_dir(), label_offset=2)
    write_idx_set(tmp_path / "env" / "fashion-mnist", label_offset=3)
    write_idx_set(tmp_path / "arg", label_offset=4)
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))

    def first_label(**kwargs) -> int:
        dsm.clear_cache()
        return int(load_dataset("fashion-mnist", download=False, **kwargs).y_train[0])

    assert first_label(data_dir=tmp_path / "arg") == 4
    assert first_label() == 3
    monkeypatch.delenv("MLP_BENCH_DATA")
    assert first_label() == 2
    for path in cache_dir().iterdir():
        path.unlink()
    assert first_label() == 1


def test_system_folder_only_for_fashion_mnist(tmp_path):
    write_idx_set(tmp_path / "system")
    assert dataset_status("fashion-mnist") is None
    assert dataset_status("mnist") is not None
    with pytest.raises(DatasetError):
        load_dataset("mnist", download=False)
    assert load_dataset("fashion-mnist", download=False).n_train == 6


def test_search_dirs_lists_subfolder_then_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))
    folders = [p for p, _ in dsm.search_dirs("fashion-mnist")]
    cache = cache_dir()
    assert folders == [
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "env",
        cache / "fashion-mnist",
        cache,
        tmp_path / "system" / "fashion-mnist",
        tmp_path / "system",
    ]
    # an explicit data folder is the only root
    given = [p for p, _ in dsm.search_dirs("fashion-mnist", tmp_path / "arg")]
    assert given == [tmp_path / "arg" / "fashion-mnist", tmp_path / "arg"]


def test_named_subfolder_wins_over_loose_files_of_another_dataset(tmp_path):
    # MNIST and Fashion-MNIST share file names: loose MNIST files in the root must not be
    # taken for Fashion-MNIST when the root has a fashion-mnist subfolder (they were).
    write_idx_set(tmp_path / "root", label_offset=1)
    write_idx_set(tmp_path / "root" / "fashion-mnist", label_offset=7)
    fashion = load_dataset("fashion-mnist", data_dir=tmp_path / "root", download=False)
    assert fashion.y_train[0] == 7
    assert load_dataset("mnist", data_dir=tmp_path / "root", download=False).y_train[0] == 1


@pytest.mark.parametrize("content", ["empty", "partial", "missing"])
def test_given_data_dir_without_the_files_is_an_error(tmp_path, monkeypatch, content):
    # The files are in $MLP_BENCH_DATA, the cache and the system folder: a --data-dir
    # without them used to fall back to those silently.
    for folder in (tmp_path / "env", cache_dir(), tmp_path / "system"):
        write_idx_set(folder)
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))
    given = tmp_path / "given"
    if content == "empty":
        given.mkdir()
    elif content == "partial":
        write_idx(given / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28)))
        write_idx(given / "t10k-labels-idx1-ubyte", np.zeros(1))
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", data_dir=given, download=True)
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith(f"fashion-mnist: data files not found in the given data folder {given}")
    assert str(tmp_path / "env") not in message
    if content == "partial":
        assert "missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in first
    elif content == "empty":
        assert f"{given}: no matching files" in first
    else:
        assert f"{given}: does not exist" in first
    assert "fashion-mnist.npz" in message
    assert not (cache_dir() / "fashion-mnist").exists()  # nothing was downloaded
    status = dataset_status("fashion-mnist", data_dir=given)
    assert status.startswith(f"files not in --data-dir {given}: ") and "\n" not in status


def test_relative_data_dir_is_resolved(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "data" / "mnist", label_offset=2)
    monkeypatch.chdir(tmp_path)
    assert dsm.resolve_data_dir("data") == str(tmp_path / "data")
    assert dsm.resolve_data_dir("./x/../data") == str(tmp_path / "data")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dsm.resolve_data_dir("~/data") == str(tmp_path / "data")
    for bad in ("", "  ", None, 12):
        with pytest.raises(ValueError, match="non-empty path"):
            dsm.resolve_data_dir(bad)
    ds = load_dataset("mnist", data_dir="data", download=False)
    assert ds.y_train[0] == 2
    assert str(tmp_path / "data" / "mnist") in ds.source


def test_not_found_error_lists_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))
    write_idx(tmp_path / "env" / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28)))
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", download=False)
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith("fashion-mnist: data files not found in 6 searched folders")
    assert "download disabled" in first
    for folder, _ in dsm.search_dirs("fashion-mnist"):
        assert f"  {folder}  [" in message
    for stem in IDX_NAMES:
        assert stem in message
    assert "fashion-mnist.npz" in message
    assert "missing train-labels-idx1-ubyte[.gz]" in message  # the incomplete folder
    assert "--data-dir DIR" in message
    assert "$MLP_BENCH_DATA" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "not attempted" in message
    for source in download.DOWNLOAD_SOURCES["fashion-mnist"]:
        for url in source.urls():
            assert url in message


def test_not_found_error_includes_download_error(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", download=True)
    message = str(info.value)
    assert "download failed" in message.splitlines()[0]
    assert "no-such-server/mnist.npz: download failed" in message
    assert "apt-get" not in message  # only for Fashion-MNIST
    assert not (cache_dir() / "mnist").exists()


# The download table's constants are checked against sources that do not come from this
# project: Keras's own MNIST loader (installed with TensorFlow/Keras) for mnist.npz, and the
# files Debian's dataset-fashion-mnist package installs for Fashion-MNIST. The four MNIST IDX
# hashes (tensorflow/datasets' url_checksums) have no copy on this machine and no download is
# allowed in tests, so no test restates them.


def _keras_mnist_source() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("keras")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "src" / "datasets" / "mnist.py"
    return path.read_text() if path.is_file() else None


@pytest.mark.skipif(_keras_mnist_source() is None, reason="Keras is not installed")
def test_mnist_npz_url_and_hash_match_keras():
    text = _keras_mnist_source()
    ((file_name, digest),) = REAL_SOURCES["mnist"][0].files
    keras_hash = re.search(r'file_hash=\(?\s*(?:#[^\n]*\n)?\s*"([0-9a-f]{64})"', text)
    keras_base = re.search(r'origin_folder = \(?\s*"([^"]+)"', text)
    assert keras_hash and keras_base
    assert digest == keras_hash.group(1)
    assert REAL_SOURCES["mnist"][0].urls() == [keras_base.group(1) + file_name]


# Debian's dataset-fashion-mnist rewrote each file's 10-byte gzip header (stored file name
# dropped, mtime set to its 2020 build) and kept the compressed stream: its files are 23-24
# bytes shorter than the published ones and hash differently. Putting back the published
# header (file name, mtime 2017-08-31 10:50:06 or 10:50:27 UTC, XFL 0, OS 3 = Unix) gives the
# published files byte for byte, so their SHA-256 checks the table's against real data.
FASHION_UPSTREAM_MTIME = {
    "train-images-idx3-ubyte.gz": 1504176606,
    "train-labels-idx1-ubyte.gz": 1504176606,
    "t10k-images-idx3-ubyte.gz": 1504176627,
    "t10k-labels-idx1-ubyte.gz": 1504176627,
}


def _with_upstream_gzip_header(path: Path, mtime: int) -> bytes:
    data = path.read_bytes()
    assert data[:4] == b"\x1f\x8b\x08\x00"  # deflate, no optional fields
    name = path.name.removesuffix(".gz").encode() + b"\0"
    header = b"\x1f\x8b\x08\x08" + mtime.to_bytes(4, "little") + b"\x00\x03"  # FLG.FNAME
    return header + name + data[10:]


@pytest.mark.skipif(
    not all((DEBIAN_FASHION / f"{stem}.gz").is_file() for stem in IDX_NAMES),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_mnist_hashes_match_debian_files():
    (source,) = REAL_SOURCES["fashion-mnist"]
    assert [f for f, _ in source.files] == [f"{stem}.gz" for stem in IDX_NAMES]
    for file_name, digest in source.files:
        path = DEBIAN_FASHION / file_name
        restored = _with_upstream_gzip_header(path, FASHION_UPSTREAM_MTIME[file_name])
        assert hashlib.sha256(restored).hexdigest() == digest, file_name


# ---------------------------------------------------------------------------------------------
# corrupt files


def test_truncated_idx_names_file_and_sizes(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=folder, download=False)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message
    assert "expected 4704 bytes" in message
    assert "found 4694" in message


def test_oversized_idx(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder, gz=True)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(4, dtype=np.uint8)) + b"\0\0"))
    with pytest.raises(DatasetError, match=r"trailing data.*expected 4 bytes.*found 6") as info:
        load_dataset("mnist", data_dir=folder, download=False)
    assert str(path) in str(info.value)


def test_bad_magic(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(6), magic=0x00000803)
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=folder, download=False)
    assert str(path) in str(info.value)
    assert "0x00000803" in str(info.value)
    assert "expected 0x00000801" in str(info.value)


def test_wrong_image_dimensions(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder)
    path = folder / "t10k-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 27, 29)))
    with pytest.raises(DatasetError, match=r"shape \(4, 27, 29\)") as info:
        load_dataset("mnist", data_dir=folder, download=False)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_gzip(tmp_path, kind):
    folder = tmp_path / "d"
    write_idx_set(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(b"not a gzip stream" if kind == "garbage" else data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupt gzip") as info:
        load_dataset("mnist", data_dir=folder, download=False)
    assert str(path) in str(info.value)


def test_image_label_count_mismatch(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(DatasetError, match=r"6 images .* but 5 labels"):
        load_dataset("mnist", data_dir=folder, download=False)


def test_npz_missing_key(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path, y_test=None)
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)
    assert "missing arrays y_test" in str(info.value)


def test_npz_wrong_shape(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path, x_test=np.zeros((4, 10, 10), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"shape \(4, 10, 10\)") as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"hello")
    with pytest.raises(DatasetError, match=r"not an \.npz"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_labels_out_of_range(tmp_path):
    folder = tmp_path / "d"
    write_idx_set(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 12]))
    with pytest.raises(DatasetError, match=r"2 labels in the test split outside \[0, 10\)"):
        load_dataset("mnist", data_dir=folder, download=False)


def test_nan_features_in_npz(tmp_path):
    x_train, y_train, x_test, y_test = make_images()
    x_train = x_train.astype(np.float64)
    x_train[1, 2, 3] = np.nan
    x_train[2, 2, 3] = np.nan
    x_train[3, 0, 0] = np.inf
    write_npz(tmp_path / "mnist.npz", (x_train, y_train, x_test, y_test))
    with pytest.raises(DatasetError, match=r"3 non-finite .* train split \(2 NaN, 1 inf\)"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_validate_arrays():
    X = np.zeros((3, 2))
    y = np.array([0, 1, 2])
    assert validate_arrays(X, y, X, y, 3, "ok") is None
    X_bad = X.copy()
    X_bad[0, 0] = -np.inf
    with pytest.raises(DatasetError, match=r"^toy: 1 non-finite .* test split \(0 NaN, 1 inf\)"):
        validate_arrays(X, y, X_bad, y, 3, "toy")
    with pytest.raises(DatasetError, match=r"1 labels in the train split outside \[0, 2\)"):
        validate_arrays(X, y, X, y, 2, "toy")
    with pytest.raises(DatasetError, match="3 samples but 2 labels"):
        validate_arrays(X, y[:2], X, y, 3, "toy")
    with pytest.raises(DatasetError, match="train has 2 features but test has 1"):
        validate_arrays(X, y, X[:, :1], y, 3, "toy")
    with pytest.raises(DatasetError, match="non-integer labels"):
        validate_arrays(X, y + 0.5, X, y, 3, "toy")
    with pytest.raises(DatasetError, match="must be 2-D"):
        validate_arrays(X.ravel(), y, X, y, 3, "toy")


# ---------------------------------------------------------------------------------------------
# downloads from file:// URLs


def serve(tmp_path: Path, name: str, data: bytes) -> str:
    server = tmp_path / "server"
    server.mkdir(exist_ok=True)
    (server / name).write_bytes(data)
    return server.as_uri() + "/"


def test_download_succeeds_into_cache(tmp_path, monkeypatch):
    arrays = write_npz(tmp_path / "build" / "mnist.npz")
    data = (tmp_path / "build" / "mnist.npz").read_bytes()
    url = serve(tmp_path, "mnist.npz", data)
    digest = hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(
        download.DOWNLOAD_SOURCES, "mnist", (DownloadSource(url, (("mnist.npz", digest),)),)
    )
    ds = load_dataset("mnist", preprocess="none", download=True)
    target = cache_dir() / "mnist" / "mnist.npz"
    assert target.is_file()
    assert sha256(target) == digest
    assert sorted(p.name for p in target.parent.iterdir()) == ["mnist.npz"]
    np.testing.assert_array_equal(ds.X_train, arrays[0].reshape(6, 784))
    assert str(target) in ds.source
    assert dataset_status("mnist") is None


def test_download_wrong_hash_removes_file(tmp_path, monkeypatch):
    data = b"pretend archive"
    url = serve(tmp_path, "mnist.npz", data)
    expected = "ab" * 32
    monkeypatch.setitem(
        download.DOWNLOAD_SOURCES, "mnist", (DownloadSource(url, (("mnist.npz", expected),)),)
    )
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", download=True)
    message = str(info.value)
    target = cache_dir() / "mnist" / "mnist.npz"
    assert f"{target}: SHA-256 mismatch" in message
    assert expected in message
    assert hashlib.sha256(data).hexdigest() in message
    assert list(target.parent.iterdir()) == []  # neither the file nor a temporary file


def test_download_falls_back_to_second_source(tmp_path, monkeypatch):
    folder = tmp_path / "build"
    arrays = write_idx_set(folder, gz=True)
    files = []
    for stem in IDX_NAMES:
        file_name = f"{stem}.gz"
        url = serve(tmp_path, file_name, (folder / file_name).read_bytes())
        files.append((file_name, sha256(folder / file_name)))
    broken = (tmp_path / "nowhere").as_uri() + "/"
    monkeypatch.setitem(
        download.DOWNLOAD_SOURCES,
        "fashion-mnist",
        (
            DownloadSource(broken, (("fashion-mnist.npz", "0" * 64),)),
            DownloadSource(url, tuple(files)),
        ),
    )
    ds = load_dataset("fashion-mnist", preprocess="none", download=True)
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert sorted(p.name for p in (cache_dir() / "fashion-mnist").iterdir()) == sorted(
        f for f, _ in files
    )


def test_download_dataset_keeps_verified_files(tmp_path, monkeypatch):
    url = serve(tmp_path, "mnist.npz", b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    monkeypatch.setitem(
        download.DOWNLOAD_SOURCES, "mnist", (DownloadSource(url, (("mnist.npz", digest),)),)
    )
    folder = dsm.download_dataset("mnist", tmp_path / "dest")
    assert (folder / "mnist.npz").read_bytes() == b"abc"
    (tmp_path / "server" / "mnist.npz").unlink()  # a second call needs no server
    assert dsm.download_dataset("mnist", tmp_path / "dest") == folder


# ---------------------------------------------------------------------------------------------
# preprocessing


def test_preprocessing_registry():
    assert set(PREPROCESSING) == {"scale", "minmax", "standardize", "none"}


def test_scale_divides_by_training_max():
    A, B = PREPROCESSING["scale"](np.array([[0, 8], [16, 4]]), np.array([[32, 2]]))
    np.testing.assert_array_equal(A, [[0.0, 0.5], [1.0, 0.25]])
    np.testing.assert_array_equal(B, [[2.0, 0.125]])
    assert A.dtype == np.float64


def test_minmax_per_sample_and_constant_row():
    X = np.array([[2.0, 4.0, 6.0], [5.0, 5.0, 5.0]])
    with np.errstate(all="raise"):
        A, B = PREPROCESSING["minmax"](X, np.array([[-1.0, 0.0, 3.0]]))
    np.testing.assert_array_equal(A, [[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(B, [[0.0, 0.25, 1.0]])
    np.testing.assert_array_equal(X, [[2.0, 4.0, 6.0], [5.0, 5.0, 5.0]])  # input untouched


def test_standardize_fits_on_train_only():
    train = np.array([[1.0, 7.0], [3.0, 7.0]])
    test = np.array([[5.0, 9.0]])
    A, B = PREPROCESSING["standardize"](train, test)
    np.testing.assert_array_equal(A, [[-1.0, 0.0], [1.0, 0.0]])  # mean (2, 7), std (1, 1)
    np.testing.assert_array_equal(B, [[3.0, 2.0]])


def test_standardize_constant_column_is_exactly_zero():
    # the float64 mean of three 0.1 values is not exactly 0.1
    train = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 6.0]])
    with np.errstate(all="raise"):
        A, B = PREPROCESSING["standardize"](train, np.array([[1.1, 3.0]]))
    np.testing.assert_array_equal(A[:, 0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(B[0, 0], 1.0)
    np.testing.assert_allclose(A[:, 1], (train[:, 1] - 3.0) / np.std([1.0, 2.0, 6.0]))


def test_none_is_raw_float():
    A, B = PREPROCESSING["none"](np.array([[3, 250]], dtype=np.uint8), np.array([[1, 2]]))
    np.testing.assert_array_equal(A, [[3.0, 250.0]])
    assert A.dtype == np.float64
    assert B.dtype == np.float64


def test_scale_and_minmax_on_loaded_images(tmp_path):
    x_train, _, x_test, _ = write_idx_set(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert ds.preprocess == "scale"
    np.testing.assert_allclose(ds.X_train, x_train.reshape(6, 784) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.X_test, x_test.reshape(4, 784) / 255.0, rtol=1e-6)
    mm = load_dataset("mnist", preprocess="minmax", data_dir=tmp_path, download=False)
    assert mm.X_train.min(axis=1).tolist() == [0.0] * 6
    assert mm.X_train.max(axis=1).tolist() == [1.0] * 6


def test_unknown_preprocess_suggests_closest(tmp_path):
    with pytest.raises(ValueError, match=r"did you mean 'standardize'") as info:
        load_dataset("digits", preprocess="standardise")
    assert "scale, minmax, standardize, none" in str(info.value)


# ---------------------------------------------------------------------------------------------
# sklearn datasets


def test_digits_split_deterministic_per_seed():
    a = load_dataset("digits", seed=42)
    b = load_dataset("digits", seed=42)
    c = load_dataset("digits", seed=1)
    assert (a.n_train, a.n_test, a.n_features, a.n_classes) == (1437, 360, 64, 10)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    assert a.preprocess == "scale"
    assert a.X_train.min() == 0.0
    assert a.X_train.max() == 1.0
    assert "sklearn.datasets.load_digits" in a.source
    assert "random_state=42" in a.source


def test_digits_matches_train_test_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    _, X_te, _, y_te = train_test_split(X, y, test_size=0.25, random_state=42)
    ds = load_dataset("digits", preprocess="none", seed=42, test_size=0.25, dtype="float64")
    np.testing.assert_array_equal(ds.X_test, X_te)
    np.testing.assert_array_equal(ds.y_test, y_te)


def _sklearn_cache():
    return sorted((cache_dir() / "sklearn").glob("*.npz"))


@pytest.mark.parametrize("name", ["digits", "synthetic:n=300,d=7,k=3"])
def test_sklearn_splits_are_cached_and_the_same_from_the_cache(name, monkeypatch):
    """The first load makes the split with scikit-learn and keeps it in the user cache; later
    loads read it from there, without scikit-learn, and give the same arrays and source."""
    from bench.datasets import sources

    made = load_dataset(name, seed=3, test_size=0.3, dtype="float64")
    (kept,) = _sklearn_cache()
    assert "test_size=0.3-seed=3" in kept.name and "scikit-learn-" in kept.name

    def no_sklearn(module):
        raise AssertionError(f"{module} imported although the split is cached")

    monkeypatch.setattr(sources, "import_sklearn", no_sklearn)
    again = load_dataset(name, seed=3, test_size=0.3, dtype="float64")
    for field in ("X_train", "y_train", "X_test", "y_test", "Y_train"):
        np.testing.assert_array_equal(getattr(again, field), getattr(made, field))
        assert getattr(again, field).dtype == getattr(made, field).dtype
    assert again.source == made.source and again.n_classes == made.n_classes


def test_a_damaged_cached_split_is_made_again(tmp_path):
    made = load_dataset("digits", seed=0)
    (kept,) = _sklearn_cache()
    kept.write_bytes(kept.read_bytes()[:100])  # cut short
    again = load_dataset("digits", seed=0)
    np.testing.assert_array_equal(again.X_test, made.X_test)
    assert kept.stat().st_size > 100_000  # written again, whole


def test_an_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be made
    assert load_dataset("digits", seed=0).n_train == 1437


def test_a_cached_split_that_cannot_be_finished_leaves_nothing(monkeypatch):
    from bench.datasets import sources

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sources.os, "replace", full_disk)
    assert load_dataset("digits", seed=0).n_train == 1437
    assert list((cache_dir() / "sklearn").iterdir()) == []  # no file, whole or partial


def test_the_split_cache_folder_can_be_moved_or_turned_off(tmp_path, monkeypatch):
    from bench.datasets import sources

    monkeypatch.setenv("MLP_BENCH_SPLIT_CACHE", str(tmp_path / "splits"))
    load_dataset("digits", seed=0)
    (kept,) = (tmp_path / "splits").iterdir()
    assert kept.name.endswith(f"-code-{sources._code_version()}.npz")  # made by this code
    monkeypatch.setenv("MLP_BENCH_SPLIT_CACHE", "")
    load_dataset("digits", seed=1)
    assert list((tmp_path / "splits").iterdir()) == [kept] and _sklearn_cache() == []


def test_large_synthetic_splits_are_not_cached(monkeypatch):
    from bench.datasets import sources

    monkeypatch.setattr(sources, "CACHE_MAX_VALUES", 100)
    load_dataset("synthetic:n=300,d=7,k=3", seed=0)
    assert _sklearn_cache() == []


def test_breast_cancer_binary_one_hot_standardized():
    ds = load_dataset("breast-cancer", seed=0, dtype="float64")
    assert ds.n_classes == 2
    assert ds.Y_train.shape == (ds.n_train, 2)
    np.testing.assert_array_equal(ds.Y_train[:, 1], ds.y_train)
    assert ds.preprocess == "standardize"
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, rtol=1e-12)
    assert abs(ds.X_test.mean()) > 1e-6  # test split uses the training statistics


def test_dtype_honoured():
    f32 = load_dataset("digits", seed=0, dtype="float32")
    f64 = load_dataset("digits", seed=0, dtype="float64")
    assert f32.X_train.dtype == np.float32
    assert f32.Y_test.dtype == np.float32
    assert f64.X_train.dtype == np.float64
    assert f64.Y_test.dtype == np.float64
    assert f32.y_train.dtype == np.int64
    np.testing.assert_array_equal(f32.X_train, f64.X_train.astype(np.float32))
    with pytest.raises(ValueError, match="float32, float64"):
        load_dataset("digits", dtype="float16")


def test_results_do_not_share_memory_with_cache():
    a = load_dataset("digits", seed=3, preprocess="none")
    a.X_train[:] = -1
    a.y_train[:] = 0
    b = load_dataset("digits", seed=3, preprocess="none")
    assert b.X_train.min() == 0.0
    assert b.y_train.max() == 9


def test_raw_cache_is_read_only(tmp_path):
    write_idx_set(tmp_path)
    found, _ = locate.locate("mnist", tmp_path)
    raw = files.read_files(found)
    assert raw is files.read_files(found)
    assert not any(a.flags.writeable for a in raw)


# ---------------------------------------------------------------------------------------------
# names, synthetic data, status


def test_parse_dataset_name():
    assert parse_dataset_name("synthetic:n=100,d=4,k=3") == (
        "synthetic",
        {"n": 100, "d": 4, "k": 3},
    )
    assert parse_dataset_name("synthetic") == ("synthetic", {"n": 10000, "d": 784, "k": 10})
    assert parse_dataset_name(" Synthetic:k=5, seed=0") == (
        "synthetic",
        {"n": 10000, "d": 784, "k": 5, "seed": 0},
    )
    assert parse_dataset_name("digits") == ("digits", {})


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("synthetic:n=100,x=3", r"unknown parameter 'x'.*valid keys: n, d, k, seed"),
        ("synthetic:n=abc", r"'n=abc'.*must be an integer.*valid keys: n, d, k, seed"),
        ("synthetic:n=1.5", r"'n=1.5'.*must be an integer"),
        ("synthetic:d=0", r"'d=0'.*d must be an integer from 1 to 100000"),
        ("synthetic:k=-2", r"'k=-2'.*k must be an integer from 2 to 10000"),
        ("synthetic:n=1", r"n must be an integer from 2 to 10000000"),
        ("synthetic:n=10000001", r"n must be an integer from 2 to 10000000"),
        ("synthetic:n=99999999999999999999999", r"n must be an integer from 2 to 10000000"),
        ("synthetic:n=" + "9" * 5000, r"n must be an integer from 2 to 10000000"),
        ("synthetic:d=100001", r"d must be an integer from 1 to 100000"),
        ("synthetic:k=1", r"k must be an integer from 2 to 10000"),
        ("synthetic:seed=-1", r"seed must be an integer from 0 to 4294967295"),
        ("synthetic:seed=4294967296", r"seed must be an integer from 0 to 4294967295"),
        ("synthetic:n=5,k=6,d=10", r"k=6 classes need at least as many samples, got n=5"),
        ("synthetic:n=1000000,d=1000", r"n\*d = 1000000000 values .* limit of 268435456"),
        ("synthetic:n=40,d=2,k=5", r"d=2 allows at most k=4"),
        ("synthetic:n", r"bad parameter 'n'.*key=value"),
        ("synthetic:n=5,n=6", r"'n' given twice"),
        ("digits:n=5", r"takes no parameters"),
    ],
)
def test_parse_dataset_name_errors(name, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_dataset_name(name)


@pytest.mark.parametrize(
    ("given", "suggested"), [("mnsit", "mnist"), ("fashion_mnist", "fashion-mnist")]
)
def test_unknown_dataset_suggests_closest(given, suggested):
    with pytest.raises(ValueError, match=f"did you mean '{suggested}'") as info:
        load_dataset(given)
    assert "breast-cancer, digits, fashion-mnist, mnist, synthetic" in str(info.value)


def test_synthetic_shapes_and_seed():
    ds = load_dataset("synthetic:n=200,d=6,k=3", seed=5)
    assert (ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (160, 40, 6, 3)
    assert ds.Y_train.shape == (160, 3)
    assert set(np.unique(ds.y_train)) <= {0, 1, 2}
    assert ds.preprocess == "standardize"
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-5)
    again = load_dataset("synthetic:n=200,d=6,k=3", seed=5)
    np.testing.assert_array_equal(ds.X_train, again.X_train)
    other = load_dataset("synthetic:n=200,d=6,k=3", seed=6)
    assert not np.array_equal(ds.X_train, other.X_train)
    # seed= in the name fixes the generated data; the argument still picks the split
    s1 = load_dataset("synthetic:n=50,d=3,k=2,seed=9", seed=1, preprocess="none")
    s2 = load_dataset("synthetic:n=50,d=3,k=2,seed=9", seed=2, preprocess="none")
    all1 = np.sort(np.concatenate([s1.X_train, s1.X_test]), axis=0)
    all2 = np.sort(np.concatenate([s2.X_train, s2.X_test]), axis=0)
    np.testing.assert_array_equal(all1, all2)
    assert not np.array_equal(s1.X_test, s2.X_test)
    assert ds.name == "synthetic:n=200,d=6,k=3"


def test_synthetic_small_d_limits():
    ds = load_dataset("synthetic:n=40,d=2,k=4")
    assert ds.n_features == 2
    assert ds.n_classes == 4
    assert load_dataset("synthetic:n=20,d=1,k=2").n_features == 1
    # parameters that do not fit together are a usage error before anything is generated
    with pytest.raises(ValueError, match="d=2 allows at most k=4"):
        dataset_status("synthetic:n=40,d=2,k=5")


def test_dataset_names_and_registry():
    assert dataset_names() == [
        "digits",
        "breast-cancer",
        "mnist",
        "fashion-mnist",
        "synthetic:n=10000,d=784,k=10",
    ]
    assert {name: spec.fixed_split for name, spec in DATASETS.items()} == {
        "digits": False,
        "breast-cancer": False,
        "mnist": True,
        "fashion-mnist": True,
        "synthetic": False,
    }
    assert all(spec.description for spec in DATASETS.values())


def test_dataset_status(tmp_path):
    assert dataset_status("digits") is None
    assert dataset_status("synthetic:n=10,d=2,k=2") is None
    reason = dataset_status("mnist")
    assert "not found" in reason
    assert "\n" not in reason
    write_idx_set(tmp_path / "mnist")
    assert dataset_status("mnist", data_dir=tmp_path) is None
    assert files.cached_reads() == 0  # nothing was read
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        dataset_status("nope")


def test_import_needs_numpy_only():
    code = "import sys, bench, bench.datasets; print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Debian's packaged Fashion-MNIST (dataset-fashion-mnist), when installed


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", {"fashion-mnist": (str(DEBIAN_FASHION),)})
    assert dataset_status("fashion-mnist") is None
    start = time.perf_counter()
    found, _ = locate.locate("fashion-mnist", None)
    x_train, y_train, x_test, y_test = files.read_files(found)
    elapsed = time.perf_counter() - start
    assert x_train.shape == (60000, 784)
    assert x_test.shape == (10000, 784)
    assert x_train.dtype == np.uint8
    assert x_train.max() == 255
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert elapsed < 10


# ---------------------------------------------------------------------------------------------
# canonical names, bounds, what preprocessing was applied


@pytest.mark.parametrize(
    "spelling",
    [
        "synthetic:n=500",
        "synthetic:n=0500",
        "synthetic:N=500",
        " Synthetic : k=10 , n=+500 ",
        "synthetic:d=784,n=500",
        "synthetic:n=500,d=784,k=10",
    ],
)
def test_canonical_dataset_name(spelling):
    assert dsm.canonical_dataset_name(spelling) == "synthetic:n=500,d=784,k=10"


def test_canonical_dataset_name_keeps_what_differs():
    canon = dsm.canonical_dataset_name
    assert canon("synthetic:seed=07,n=500") == "synthetic:n=500,d=784,k=10,seed=7"
    assert canon("synthetic") == "synthetic:n=10000,d=784,k=10"
    assert canon(" Digits ") == "digits"
    assert canon("FASHION-MNIST") == "fashion-mnist"
    assert canon("synthetic:n=501") != canon("synthetic:n=500")
    with pytest.raises(ValueError, match="given twice"):
        canon("synthetic:n=500,N=500")


def test_sweep_merges_spellings_of_one_dataset_and_stores_data_dir_absolute(tmp_path, monkeypatch):
    from bench.sweep.build import build_sweep, expand

    monkeypatch.chdir(tmp_path)
    sweep = build_sweep(
        {
            "datasets": ["synthetic:n=500", "synthetic:n=0500", "synthetic:N=500", "Digits"],
            "backends": ["numpy-vec"],
            "losses": ["cce"],
            "batch_sizes": [32],
            "threads": [1],
            "data_dir": "data",
        }
    )
    (part,) = sweep.parts
    assert part.datasets == ("synthetic:n=500,d=784,k=10", "digits")
    assert len({cell.dataset for cell in expand(sweep)}) == 2
    assert sweep.data_dir == str(tmp_path / "data")
    assert sweep.to_dict()["data_dir"] == str(tmp_path / "data")


def test_load_dataset_bounds_the_split_seed():
    assert load_dataset("digits", seed=2**32 - 1).n_train == 1437
    for seed in (-1, 2**32, 10**30):
        with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 4294967295"):
            load_dataset("digits", seed=seed)
    with pytest.raises(ValueError, match="seed must be an integer"):
        load_dataset("digits", seed=1.5)


def test_none_preprocessing_keeps_raw_values_and_is_reported():
    raw = load_dataset("digits", preprocess="none", seed=0)
    assert raw.preprocess == "none"
    assert raw.X_train.max() == 16.0  # digits' pixels run 0..16: not scaled
    assert load_dataset("digits", preprocess=None, seed=0).preprocess == "scale"
    assert dsm.applied_preprocess("digits") == "scale"
    assert dsm.applied_preprocess("digits", None) == "scale"
    assert dsm.applied_preprocess("digits", "none") == "none"
    assert dsm.applied_preprocess("digits", " None ") == "none"
    assert dsm.applied_preprocess("synthetic:n=100") == "standardize"
    assert dsm.applied_preprocess("breast-cancer", "minmax") == "minmax"
    with pytest.raises(ValueError, match="unknown preprocessing 'raw'"):
        dsm.applied_preprocess("digits", "raw")


def test_download_removes_parts_left_by_killed_downloads(tmp_path, monkeypatch):
    # A download killed mid-way (SIGKILL) left its .part file in the cache for good.
    url = serve(tmp_path, "mnist.npz", b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    monkeypatch.setitem(
        download.DOWNLOAD_SOURCES, "mnist", (DownloadSource(url, (("mnist.npz", digest),)),)
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    old = dest / ".mnist.npz.abc123.part"
    fresh = dest / ".mnist.npz.def456.part"  # another process downloading right now
    other = dest / ".other.npz.abc123.part"
    for path in (old, fresh, other):
        path.write_bytes(b"half")
    stale = time.time() - download.STALE_PART_S - 5
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    dsm.download_dataset("mnist", dest)
    assert (dest / "mnist.npz").read_bytes() == b"abc"
    assert not old.exists()
    assert fresh.exists() and other.exists()


def test_dataset_name_is_canonical():
    ds = load_dataset(" Synthetic:N=0100,d=4,k=3 ", seed=0)
    assert ds.name == "synthetic:n=100,d=4,k=3"
    assert load_dataset("DIGITS").name == "digits"


def test_download_table_is_well_formed():
    # Structure only (the values are checked against outside sources above): every source
    # offers a whole file set the readers accept, each with a full lower-case SHA-256.
    for name, sources in REAL_SOURCES.items():
        for source in sources:
            names = [f for f, _ in source.files]
            assert names in ([f"{stem}.gz" for stem in IDX_NAMES], ["mnist.npz"]), name
            assert source.base_url.endswith("/")
            for _, digest in source.files:
                assert re.fullmatch("[0-9a-f]{64}", digest)
