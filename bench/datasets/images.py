"""MNIST and Fashion-MNIST: find the files (or download them), read them, and say plainly
where they were looked for when they are not there."""

from __future__ import annotations

import os
from typing import Any

from . import download, locate
from .base import DatasetError, RawSplit
from .files import expected_files_text, find_files, read_files

# Printed in the not-found error after the download URLs.
INSTALL_HINTS: dict[str, str] = {
    "fashion-mnist": "on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
    "(installs /usr/share/datasets/fashion-mnist)",
}


def _where_to_get(name: str) -> list[str]:
    lines = []
    sources = download.DOWNLOAD_SOURCES.get(name, ())
    if sources:
        lines.append("The files can be downloaded from:")
        lines += [f"  {url}" for source in sources for url in source.urls()]
    hint = INSTALL_HINTS.get(name)
    if hint:
        lines.append(f"Or {hint}.")
    return lines


def _not_in_data_dir_message(name: str, data_dir: Any, searched) -> str:
    folder = locate.resolve_data_dir(data_dir)
    notes = "; ".join(f"{path}: {note}" for path, _, note in searched)
    lines = [f"{name}: data files not found in the given data folder {folder} ({notes})"]
    lines.append(f"Expected in {folder}/{name} or {folder}: {expected_files_text(name)}.")
    lines.append(
        "A given data folder is the only place looked in (no other folder, no download). "
        f"To fix: put the files there, or leave out --data-dir to search ${locate.ENV_DATA_DIR}, "
        f"the cache {locate.cache_dir()} (downloaded into on first use) and the system folders."
    )
    return "\n".join(lines + _where_to_get(name))


def _not_found_message(name: str, searched, download_on: bool, download_error) -> str:
    outcome = "download failed" if download_on else "download disabled"
    lines = [f"{name}: data files not found in {len(searched)} searched folders; {outcome}"]
    lines.append("Searched, in order:")
    lines += [f"  {folder}  [{label}: {note}]" for folder, label, note in searched]
    lines.append(f"Expected in one of those folders: {expected_files_text(name)}.")
    if download_error is not None:
        lines.append("Download error:")
        lines += [f"  {line}" for line in download_error.splitlines()]
    else:
        lines.append("Download: not attempted (download=False).")
    lines.append(
        f"To fix: put the files in a folder DIR and pass --data-dir DIR or set "
        f"${locate.ENV_DATA_DIR}=DIR, or allow the download into {locate.cache_dir() / name}."
    )
    return "\n".join(lines + _where_to_get(name))


def _download_and_find(name: str):
    """Download into the cache and look there; (files or None, error text or None)."""
    try:
        folder = download.download_files(name, locate.cache_dir() / name)
    except DatasetError as exc:
        return None, str(exc)
    found, note = find_files(name, folder)
    return found, (None if found is not None else f"{folder}: after download: {note}")


def image_loader(name: str):
    """The loader of MNIST-format dataset `name` (10 classes, fixed split)."""

    def load(
        params: dict[str, int],
        *,
        data_dir: str | os.PathLike[str] | None,
        download: bool,
        **_: Any,
    ) -> RawSplit:
        found, searched = locate.locate(name, data_dir)
        if found is None and data_dir is not None:
            raise DatasetError(_not_in_data_dir_message(name, data_dir, searched))
        if found is None:
            download_error = None
            if download:
                found, download_error = _download_and_find(name)
            if found is None:
                raise DatasetError(_not_found_message(name, searched, download, download_error))
        X_tr, y_tr, X_te, y_te = read_files(found)
        source = f"{found.kind} files: " + ", ".join(str(p) for p in found.paths)
        return RawSplit(X_tr, y_tr, X_te, y_te, 10, source)

    return load


def image_status(name: str):
    """The status check of MNIST-format dataset `name`: None when its files are found."""

    def status(params: dict[str, int], data_dir: Any) -> str | None:
        found, searched = locate.locate(name, data_dir)
        if found is not None:
            return None
        if data_dir is not None:
            notes = [note for _, _, note in searched]
            note = next((n for n in notes if n != "does not exist"), notes[-1])
            return f"files not in --data-dir {locate.resolve_data_dir(data_dir)}: {note}"
        return (
            f"files not found in {len(searched)} folders; downloaded on first use, "
            f"or use --data-dir / ${locate.ENV_DATA_DIR}"
        )

    return status
