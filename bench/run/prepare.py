"""A run's data, prepared once before anything trains: each dataset the cells use is loaded
and checked, and its arrays saved for the workers (inside the run folder); full-batch cells
get the training set's size."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path

from bench.errors import BenchError, DiskFullError, UsageError
from bench.sweep.build import Cell
from bench.sweep.values import FULL_BATCH
from bench.worker.process import DataRef, save_arrays


def data_key(cell: Cell) -> tuple:
    """What identifies a cell's prepared data: cells that share it share one folder."""
    return (cell.dataset, cell.preprocess, cell.split_seed, cell.test_size, cell.dtype)


def prepare_data(cells, data_dir, folder: Path, note) -> dict[tuple, DataRef]:
    """Load and check every dataset the cells use, once, before anything trains.

    The prepared arrays are saved as .npy files under `folder` for the workers to load.
    """
    from bench.datasets import DatasetError, load_dataset

    refs = {}
    for key in dict.fromkeys(data_key(c) for c in cells):
        name, preprocess, split_seed, test_size, dtype = key
        try:
            ds = load_dataset(
                name,
                preprocess=preprocess,
                seed=split_seed,
                data_dir=data_dir,
                test_size=test_size,
                dtype=dtype,
            )
        except DatasetError as exc:
            raise BenchError(str(exc)) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        sub = folder / f"data-{len(refs)}"
        try:
            save_arrays(sub, ds.X_train, ds.Y_train, ds.X_test, ds.Y_test)
        except OSError as exc:
            raise _disk_full(exc, sub) from None
        refs[key] = DataRef(str(sub), ds.n_train, ds.n_test, ds.n_features, ds.n_classes)
        note(
            f"data: {name} ({ds.preprocess}, {dtype}): {ds.n_train} train, {ds.n_test} test, "
            f"{ds.n_features} features, {ds.n_classes} classes — {ds.source}"
        )
    return refs


def _disk_full(exc: OSError, sub: Path) -> OSError:
    """A full disk while the prepared arrays are written, said as such: NumPy reports a short
    write as "N requested and M written", without an errno."""
    short_write = exc.errno is None and "requested and" in str(exc)
    if not short_write and exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return exc
    what = (
        "the disk is full"
        if exc.errno == errno.ENOSPC
        else "the disk is full or a file size limit was reached"
    )
    return DiskFullError(
        f"{what} while writing the prepared data into {sub} ({exc}); free space, then run the "
        "same command again"
    )


def resolve_batches(cells, refs, note) -> list[Cell]:
    """Full-batch cells get the training set's size; oversize batches are said once."""
    resolved, oversize = [], {}
    for cell in cells:
        n = refs[data_key(cell)].n_train
        if cell.batch_size == FULL_BATCH:
            cell = dataclasses.replace(cell, batch_size=n)
        elif cell.batch_size > n:
            oversize.setdefault((cell.dataset, n), set()).add(cell.batch_size)
        resolved.append(cell)
    for (dataset, n), sizes in oversize.items():
        many = len(sizes) > 1
        note(
            f"note: batch size{'s' if many else ''} {', '.join(map(str, sorted(sizes)))} "
            f"{'are' if many else 'is'} larger than {dataset}'s {n} training samples; "
            "those cells run one batch per epoch"
        )
    return resolved
