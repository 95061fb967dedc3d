"""Progress lines (bench/run/progress.py): each cell's label tells it apart from the others."""

from bench.run.progress import cell_labels
from bench.sweep.build import build_sweep, expand
from bench.sweep.presets import DEFAULT


def test_progress_labels_name_every_axis_that_varies():
    """Two cells that differ only in hidden width get lines of their own."""
    cells = expand(
        build_sweep(
            {
                "datasets": ["digits"],
                "backends": ["numpy-vec"],
                "losses": ["cce"],
                "batch_sizes": [64],
                "hidden": [32, 64],
                "lrs": [0.1, 0.01],
                "threads": [1],
            }
        )
    )
    labels = cell_labels(cells)
    assert len(set(labels.values())) == len(cells) == 4
    some = labels[cells[0]]
    assert some.startswith("digits · numpy-vec") and "b64" in some
    assert "hidden 32" in some and "lr 0.1" in some and "cce" not in some


def test_progress_labels_name_a_varying_part_once():
    """The default sweep's parts differ: each line names its part once (not `part cce ·
    digits · ... · part cce · ...`)."""
    cells = expand(build_sweep(DEFAULT))
    labels = cell_labels(cells)
    assert len(set(labels.values())) == len(cells)
    assert all(label.count("part ") == 1 for label in labels.values())
