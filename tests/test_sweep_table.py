"""Part, Cell, the command-line flags and the TOML keys come from one table of keys."""

import dataclasses
import pickle

from bench.cli import build_parser
from bench.store.schema import AXES, SETTINGS
from bench.sweep.build import (
    DEFAULT,
    PART_KEYS,
    RUN_KEYS,
    Cell,
    Part,
    build_sweep,
    default_base,
    expand,
)


def _run_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["run"]


def test_flags_are_derived_from_the_keys():
    actions = {a.dest: a.option_strings for a in _run_parser()._actions}
    for key in {**PART_KEYS, **RUN_KEYS}.values():
        assert actions.get(key.name, []) == list(key.cli_flags), key.name
    assert actions["title"] == ["--name"] and "name" not in actions  # a part's name: TOML only
    assert actions["losses"] == ["--losses", "--loss"]


def test_part_and_cell_fields_are_derived_from_the_keys():
    assert [f.name for f in dataclasses.fields(Part)] == list(PART_KEYS)
    cell = {f.name for f in dataclasses.fields(Cell)}
    axes = {k.cell for k in PART_KEYS.values() if k.axis}
    assert axes == set(AXES)
    settings = {k for k, v in PART_KEYS.items() if not v.axis} - {"name", "repeats"}
    assert cell == {"part", "repeat"} | axes | settings
    assert set(SETTINGS) <= cell


def test_cells_travel_to_workers_unchanged():
    cell = expand(build_sweep(None, {"backends": ["numpy-vec"]}))[0]
    again = pickle.loads(pickle.dumps(cell))
    assert again == cell and again.cell_id == cell.cell_id and type(again) is Cell


def test_the_sweep_decides_when_the_default_preset_applies():
    """Giving losses or learning rates drops the default's per-loss learning rates (this
    was decided in the command-line module)."""
    assert default_base({}) is DEFAULT
    assert default_base({"epochs": ["2"]}) is DEFAULT
    assert default_base({"losses": ["mse"]}) == {"title": "sweep"}
    assert default_base({"lrs": ["0.5"]}) == {"title": "sweep"}
