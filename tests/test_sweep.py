"""Sweep building: defaults, flags over presets and files, expansion, and every usage error."""

import pytest

from bench.cli.parsing import load_config, split_list
from bench.errors import UsageError
from bench.sweep.build import build_sweep, expand
from bench.sweep.presets import DEFAULT, PRESETS, preset_mapping
from bench.sweep.values import FULL_BATCH, parse_hidden

FOUR = ["numpy-loop", "numpy-vec", "keras", "torch"]


def test_default_sweep_is_the_quick_one():
    sweep = build_sweep(DEFAULT, {"backends": FOUR, "threads": [2]})
    cells = expand(sweep)
    assert len(cells) == 4 * 3 * 3  # backends x batch sizes x losses
    assert {c.dataset for c in cells} == {"digits"}
    assert {(c.loss, c.lr) for c in cells} == {("cce", 0.1), ("bce", 1.0), ("mse", 2.0)}
    assert {c.batch_size for c in cells} == {1, 32, 256}
    assert {c.optimizer for c in cells} == {"sgd"} and {c.epochs for c in cells} == {10}
    # backends vary fastest: one configuration's backends run back to back
    assert [c.backend for c in cells[:4]] == FOUR
    assert len({c.cell_id for c in cells}) == len(cells)


def test_flags_override_every_part_and_repeats_vary_slowest():
    sweep = build_sweep(
        DEFAULT,
        {
            "backends": ["numpy-vec", "torch"],
            "epochs": ["3"],
            "repeats": "2",
            "batch_sizes": ["8", "full"],
            "threads": ["1"],
        },
    )
    cells = expand(sweep)
    assert len(cells) == 2 * 2 * 3 * 2
    assert {c.epochs for c in cells} == {3}
    assert {c.batch_size for c in cells} == {8, FULL_BATCH}
    # per part, repeat 0's cells come before repeat 1's; seeds follow the repeat
    part = [c for c in cells if c.part == "cce"]
    assert [c.repeat for c in part] == [0] * 4 + [1] * 4
    assert {(c.repeat, c.seed) for c in cells} == {(0, 0), (1, 1)}
    # a repeat is the same cell with another seed
    assert part[0].cell_id == part[4].cell_id


def test_hidden_parsing():
    assert parse_hidden("256x128") == (256, 128)
    assert parse_hidden("100") == (100,) and parse_hidden(100) == (100,)
    assert parse_hidden("none") == ()
    sweep = build_sweep({}, {"hidden": ["100", "256x128"], "backends": ["numpy-vec"]})
    assert sweep.parts[0].hidden == ((100,), (256, 128))


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"backends": ["numpy-vex"]},
            r"backends: unknown backend 'numpy-vex'.*did you mean "
            r"'numpy-vec'",
        ),
        ({"datasets": ["digitz"]}, r"unknown dataset 'digitz'.*did you mean 'digits'"),
        ({"losses": ["hinge"]}, r"unknown loss 'hinge'; valid: cce, bce, mse"),
        ({"optimizers": ["adamw"]}, r"unknown optimizer 'adamw'.*did you mean 'adam'"),
        ({"activations": ["gelu"]}, r"unknown activation 'gelu'"),
        ({"output": "softplus"}, r"unknown output activation 'softplus'"),
        ({"dtypes": ["float16"]}, r"unknown dtype 'float16'"),
        ({"batch_sizes": ["0"]}, r"batch_sizes: batch size must be a positive integer, got '0'"),
        ({"batch_sizes": ["-4"]}, r"batch size must be a positive integer"),
        ({"lrs": ["0"]}, r"lrs: lr must be a finite number > 0, got 0.0"),
        ({"lrs": ["nan"]}, r"lr must be a finite number"),
        ({"lrs": ["fast"]}, r"lr must be a number, got 'fast'"),
        ({"epochs": ["0"]}, r"epochs must be a positive integer"),
        ({"repeats": "0"}, r"repeats must be a positive integer"),
        ({"threads": ["0"]}, r"threads must be a positive integer"),
        ({"hidden": ["0"]}, r"hidden: hidden layers are written as positive widths"),
        ({"hidden": ["12xabc"]}, r"got '12xabc'"),
        ({"backends": []}, r"backends is empty"),
        ({"momentum": "1"}, r"momentum must be a finite number >= 0 and < 1"),
        (
            {"losses": ["bce"], "output": "softmax"},
            r"loss 'bce' cannot be used with output 'softmax'",
        ),
        (
            {"losses": ["cce"], "output": "sigmoid"},
            r"loss 'cce' cannot be used with output 'sigmoid'",
        ),
        ({"init": "glorot_uniform", "init_scale": "0.1"}, r"takes no init_scale"),
        ({"epoch": ["3"]}, r"unknown key 'epoch' \(did you mean 'epochs'\?\)"),
    ],
)
def test_bad_values_are_usage_errors(overrides, message):
    with pytest.raises(UsageError, match=message):
        build_sweep({}, overrides)


def test_empty_list_item_in_flags():
    assert split_list("1, 32,256") == ["1", "32", "256"]
    with pytest.raises(UsageError, match="empty item in the list '1,,32'"):
        split_list("1,,32")


def test_config_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        """
[sweep]
title = "mine"
datasets = ["digits"]
backends = ["numpy-vec"]
batch_sizes = [16, "full"]
hidden = [64, "32x16"]
epochs = 2

[[sweep.parts]]
name = "a"
losses = ["cce"]

[[sweep.parts]]
name = "b"
losses = ["mse"]
lrs = [1.0]
"""
    )
    sweep = build_sweep(load_config(str(path)), {"repeats": "2"})
    assert sweep.title == "mine"
    assert [p.name for p in sweep.parts] == ["a", "b"]
    assert sweep.parts[0].hidden == ((64,), (32, 16))
    assert sweep.parts[1].lrs == (1.0,) and sweep.parts[0].lrs == (0.1,)
    assert {p.repeats for p in sweep.parts} == {2}
    assert len(expand(sweep)) == 2 * (2 * 2 * 1 * 1 * 2)


def test_config_file_errors(tmp_path):
    with pytest.raises(UsageError, match="config file .*missing.toml: no such file"):
        load_config(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nepochs = [1,\nlosses = 3\n")
    with pytest.raises(UsageError, match=r"bad.toml is not valid TOML: .*line 3"):
        load_config(str(bad))
    other = tmp_path / "other.toml"
    other.write_text("[sweeep]\nepochs = 1\n")
    with pytest.raises(UsageError, match="unknown table"):
        load_config(str(other))
    keys = tmp_path / "keys.toml"
    keys.write_text('[sweep]\nbackend = ["torch"]\n')
    with pytest.raises(
        UsageError,
        match=r"keys.toml: unknown key 'backend' \(did you mean "
        r"'backends'\?\)",
    ):
        build_sweep(load_config(str(keys)), where=f"{keys}: ")
    types = tmp_path / "types.toml"
    types.write_text('[sweep]\nepochs = "many"\n')
    with pytest.raises(UsageError, match="epochs: epochs must be a positive integer, got 'many'"):
        build_sweep(load_config(str(types)))
    types.write_text("[sweep]\nlrs = [true]\n")
    with pytest.raises(UsageError, match="lr must be a number, got True"):
        build_sweep(load_config(str(types)))


def test_stored_sweep_round_trips():
    sweep = build_sweep(preset_mapping("seed003"), {"backends": ["numpy-vec"]})
    again = build_sweep(sweep.to_dict())
    assert again == sweep
    assert [c.cell_id for c in expand(again)] == [c.cell_id for c in expand(sweep)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name):
    cells = expand(build_sweep(preset_mapping(name), {"backends": FOUR}))
    assert cells and {c.backend for c in cells} == set(FOUR)


def test_unknown_preset():
    with pytest.raises(UsageError, match=r"unknown preset 'seed01'.*did you mean"):
        preset_mapping("seed01")


def test_the_package_docstring_gives_run_sweeps_signature():
    """`bench`'s docstring shows run_sweep's parameters as bench.run.runner defines them."""
    import inspect
    import re

    import bench
    from bench.run.runner import run_sweep

    shown = re.search(r"bench\.run_sweep\((.*?)\) ->", " ".join(bench.__doc__.split())).group(1)
    names = [p.strip().split("=")[0].lstrip("*") for p in shown.split(",")]
    params = inspect.signature(run_sweep).parameters
    assert [n for n in names if n] == list(params)
