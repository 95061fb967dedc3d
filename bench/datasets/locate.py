"""Where dataset files are looked for.

With an explicit data folder (`data_dir`, the command line's --data-dir) only that folder is
searched: files missing there are an error naming what is missing, never a silent fallback to
another folder or a download. Without one, these roots are searched in order:
$MLP_BENCH_DATA (when set and non-empty), the user cache (`cache_dir()`), then the dataset's
system folders in SYSTEM_DATA_DIRS (Debian's dataset-fashion-mnist package for Fashion-MNIST).

Within each root the subfolder named after the dataset is searched before the root itself:
MNIST and Fashion-MNIST use the same IDX file names, so a root holding one of them loose and
the other in its own subfolder must not hand out the loose files for both.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import FileSet, find_files

ENV_DATA_DIR = "MLP_BENCH_DATA"
DATA_DIR_LABEL = "data_dir (--data-dir)"

# Extra roots searched after the cache, per dataset. Debian's dataset-fashion-mnist package
# installs the four .gz files into /usr/share/datasets/fashion-mnist/.
SYSTEM_DATA_DIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/mlp-bench if XDG_CACHE_HOME is an absolute path, else
    ~/.cache/mlp-bench (the XDG spec says to ignore a relative one, which would otherwise
    put the cache in whatever the working directory is). The folder is not created."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME", "")).expanduser()
    base = xdg if xdg.is_absolute() else Path.home() / ".cache"
    return base / "mlp-bench"


def resolve_data_dir(data_dir: str | os.PathLike[str]) -> str:
    """An explicit data folder as an absolute path (user folder expanded, '..' removed), so a
    run resumed from another working directory finds the same folder. ValueError when empty."""
    text = os.fspath(data_dir) if isinstance(data_dir, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"the data folder must be a non-empty path, got {data_dir!r}")
    return os.path.abspath(os.path.expanduser(text))


def data_roots(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """Roots searched for dataset `name`, in order, each with a label saying where it comes
    from: only `data_dir` when given; else $MLP_BENCH_DATA, the cache and SYSTEM_DATA_DIRS."""
    if data_dir is not None:
        return [(Path(resolve_data_dir(data_dir)), DATA_DIR_LABEL)]
    roots: list[tuple[Path, str]] = []
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
    """Folders searched for `name`'s files, in order: for each root of `data_roots`, its
    subfolder `name`, then the root; a folder already listed is not listed again."""
    seen: set[Path] = set()
    folders: list[tuple[Path, str]] = []
    for root, label in data_roots(name, data_dir):
        for folder in (root / name, root):
            key = folder.absolute()
            if key not in seen:
                seen.add(key)
                folders.append((folder, label))
    return folders


def locate(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[FileSet | None, list[tuple[Path, str, str]]]:
    """The first complete file set for `name` in `search_dirs` order, and the folders searched
    before it as (folder, label, why nothing was found there)."""
    searched: list[tuple[Path, str, str]] = []
    for folder, label in search_dirs(name, data_dir):
        found, note = find_files(name, folder)
        if found is not None:
            return found, searched
        searched.append((folder, label, note))
    return None, searched
