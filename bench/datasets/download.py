"""Downloading dataset files: where from, and the SHA-256 each file must have."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.request
from pathlib import Path

from .base import DatasetError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0
# A download writes its .part file at least once per DOWNLOAD_TIMEOUT_S or fails; one left
# untouched for this long belongs to a process that was killed.
STALE_PART_S = 10 * DOWNLOAD_TIMEOUT_S
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class DownloadSource:
    """Files fetched from `base_url + file_name`, each checked against its SHA-256."""

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


def sha256_of(path: Path) -> str:
    """Lower-case hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: Path, sha256: str) -> None:
    """Download `url` to a temporary file beside `dest`, check its SHA-256, then rename it to
    `dest`. The folder and the temporary file are created only once the URL has opened. On a
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


def remove_stale_parts(folder: Path, file_name: str, now: float | None = None) -> list[Path]:
    """Delete the temporary files of earlier downloads of `file_name` into `folder` that were
    not written to for STALE_PART_S (their process was killed); returns those deleted. A
    download running in another process keeps writing to its file, so it is left alone."""
    now = time.time() if now is None else now
    removed = []
    for part in folder.glob(f".{glob.escape(file_name)}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
                removed.append(part)
        except FileNotFoundError:
            continue  # another process removed or renamed it meanwhile
    return removed


def _fetch_source(source: DownloadSource, dest_dir: Path) -> None:
    for file_name, sha256 in source.files:
        if dest_dir.is_dir():
            for part in remove_stale_parts(dest_dir, file_name):
                log.info("removed %s, left by an interrupted download", part)
        dest = dest_dir / file_name
        if dest.is_file() and sha256_of(dest) == sha256.lower():
            continue
        url = source.base_url + file_name
        log.info("downloading %s -> %s", url, dest)
        try:
            fetch(url, dest, sha256)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise DatasetError(f"{url}: download failed ({exc})") from exc


def download_files(name: str, folder: Path) -> Path:
    """Download dataset `name`'s files into `folder`, trying each of DOWNLOAD_SOURCES[name] in
    order; files already there with the expected SHA-256 are kept. Returns the folder. Raises
    DatasetError listing each source's error when none succeeds."""
    sources = DOWNLOAD_SOURCES.get(name, ())
    if not sources:
        raise DatasetError(f"{name}: no download source configured")
    errors: list[str] = []
    for source in sources:
        try:
            _fetch_source(source, folder)
        except DatasetError as exc:
            errors.append(str(exc))
            continue
        return folder
    raise DatasetError(
        f"{name}: download failed from all {len(sources)} source(s)\n" + "\n".join(errors)
    )
