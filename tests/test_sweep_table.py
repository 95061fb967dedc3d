"""Part, Cell, the command-line flags and the TOML keys follow one table of keys."""

import dataclasses
import pickle

import pytest

from bench.cli import build_parser
from bench.store.schema import AXES, SETTINGS
from bench.sweep.build import Cell, Part, build_sweep, expand
from bench.sweep.keys import PART_KEYS, RUN_KEYS
from bench.sweep.presets import DEFAULT, default_base

# The command line's flags, written out: a key whose flags change (or a key added without
# flags, or one lost) shows here.
FLAGS = {
    "datasets": ["--datasets", "--dataset"],
    "backends": ["--backends", "--backend"],
    "batch_sizes": ["--batch-sizes", "--batch-size"],
    "losses": ["--losses", "--loss"],
    "optimizers": ["--optimizers", "--optimizer"],
    "lrs": ["--lrs", "--lr"],
    "hidden": ["--hidden"],
    "activations": ["--activations", "--activation"],
    "epochs": ["--epochs"],
    "dtypes": ["--dtypes", "--dtype"],
    "threads": ["--threads"],
    "devices": ["--devices", "--device"],
    "repeats": ["--repeats"],
    "output": ["--output"],
    "momentum": ["--momentum"],
    "weight_decay": ["--weight-decay"],
    "preprocess": ["--preprocess"],
    "init": ["--init"],
    "init_scale": ["--init-scale"],
    "init_bias": ["--init-bias"],
    "order": ["--order"],
    "eval_every": ["--eval-every"],
    "seed": ["--seed"],
    "split_seed": ["--split-seed"],
    "test_size": ["--test-size"],
    "tf32": ["--tf32", "--no-tf32"],
    "target_acc": ["--target-acc"],
    "timeout": ["--timeout"],
    "interleave": ["--interleave", "--no-interleave"],
    "timing_budget": ["--timing-budget"],
    "data_dir": ["--data-dir"],
    "title": ["--name"],
}


def _run_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["run"]


def test_the_command_line_flags_come_from_the_keys():
    actions = {a.dest: a.option_strings for a in _run_parser()._actions}
    keys = {**PART_KEYS, **RUN_KEYS}
    flagged = {name: actions[name] for name in keys if name in actions}
    assert flagged == FLAGS
    assert "name" not in actions and not keys["name"].cli_flags  # a part's name: TOML only
    for name, flags in FLAGS.items():
        assert list(keys[name].cli_flags) == flags, name


def test_part_and_cell_fields_follow_the_key_table():
    """Part has one field per key of PART_KEYS, in its order; Cell one field per axis (its
    `cell` name, as results.csv's AXES), the part's settings but name, repeats and seed, and
    the part's name, repeat and seed. A key added without a field, or a field without a key,
    fails here."""
    part_fields = [f.name for f in dataclasses.fields(Part)]
    assert part_fields == list(PART_KEYS)
    axes = [k.cell for k in PART_KEYS.values() if k.axis]
    assert set(axes) == set(AXES)  # AXES: the order of results.csv's columns
    settings = [
        k for k, v in PART_KEYS.items() if not v.axis and k not in ("name", "repeats", "seed")
    ]
    cell_fields = [f.name for f in dataclasses.fields(Cell)]
    assert cell_fields == ["part", *axes, *settings, "repeat", "seed"]
    assert set(SETTINGS) <= set(cell_fields)
    assert not set(RUN_KEYS) & set(part_fields + cell_fields)  # run keys live on the Sweep
    for cls in (Part, Cell):  # every field is declared with a type, for readers and checkers
        assert all(f.type not in ("object", object) for f in dataclasses.fields(cls)), cls


def test_the_field_test_sees_a_key_without_a_field(monkeypatch):
    """The check above is not a tautology: a key added to the table alone breaks it."""
    from bench.sweep.keys import Key

    extra = Key("extra", False, int, 0, "a setting with no Part field")
    monkeypatch.setitem(PART_KEYS, "extra", extra)
    assert [f.name for f in dataclasses.fields(Part)] != list(PART_KEYS)
    with pytest.raises(TypeError, match="extra"):  # nor can such a key reach a sweep
        build_sweep(None, {"backends": ["numpy-vec"], "extra": 1})


def test_cells_travel_to_workers_unchanged():
    cell = expand(build_sweep(None, {"backends": ["numpy-vec"]}))[0]
    again = pickle.loads(pickle.dumps(cell))
    assert again == cell and again.cell_id == cell.cell_id and type(again) is Cell


def test_the_sweep_decides_when_the_default_preset_applies():
    """Giving losses or learning rates drops the default's per-loss learning rates; the
    sweep package decides it, not the command line."""
    assert default_base({}) is DEFAULT
    assert default_base({"epochs": ["2"]}) is DEFAULT
    assert default_base({"losses": ["mse"]}) == {"title": "sweep"}
    assert default_base({"lrs": ["0.5"]}) == {"title": "sweep"}
