"""Hostile input gets one clear line (exit 2) before anything runs, naming the flag or the
file and key; integers are bounded at parse time; empty paths, odd files and broken stored
sweeps are refused; a report that failed is never announced."""

import json
import os
from pathlib import Path

import pytest

from bench.cli import build_parser, main
from bench.sweep.build import build_sweep, expand
from bench.sweep.values import NOT_SET

TINY = ["--datasets", "digits", "--backends", "numpy-vec", "--losses", "cce", "--epochs", "1"]
TINY += ["--threads", "1", "--batch-sizes", "256"]


def _error(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


# ---------------------------------------------------------------------------------------------
# integers are bounded where they are parsed


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--seed", "99999999999999999999999"],
            "error: seed: seed must be at most 2**32-1 = 4,294,967,295, "
            "got '99999999999999999999999'",
        ),
        (
            ["--batch-sizes", "100000000000000000000"],
            "error: batch_sizes: batch size must be at most 2**31-1 = 2,147,483,647, "
            "got '100000000000000000000'",
        ),
        (
            ["--batch-sizes", "1e20"],
            "error: batch_sizes: batch size must be a positive integer, got '1e20'",
        ),
        (["--epochs", "1e20"], "error: epochs: epochs must be a positive integer, got '1e20'"),
        (
            ["--epochs", "10000001"],
            "error: epochs: epochs must be at most 10,000,000, got '10000001'",
        ),
        (["--repeats", "10001"], "error: repeats: repeats must be at most 10,000, got '10001'"),
        (["--threads", "5000"], "error: threads: threads must be at most 4,096, got '5000'"),
        (
            ["--eval-every", "99999999999"],
            "error: eval_every: eval_every must be at most 10,000,000, got '99999999999'",
        ),
        (
            ["--split-seed", "4294967296"],
            "error: split_seed: split_seed must be at most 2**32-1 = 4,294,967,295, "
            "got '4294967296'",
        ),
        (
            ["--hidden", "64x2000000"],
            "error: hidden: hidden layers are written as positive widths like 100 or 256x128 "
            "(each at most 2**20 = 1,048,576), or 'none'; got '64x2000000'",
        ),
        (
            ["--timeout", "1e20"],
            "error: timeout: timeout must be a finite number > 0 and <= 1e+07, got 1e+20",
        ),
        (
            ["--seed", "4294967295", "--repeats", "2"],
            "error: seed: seed + repeats - 1 must be at most 2**32-1 = 4,294,967,295, "
            "got 4294967295 + 2 - 1",
        ),
    ],
)
def test_integers_are_bounded_at_parse_time(tmp_path, capsys, args, message):
    """Before: 2**63 and more passed, the cells ran and the report failed forever after."""
    code, line = _error(["run", *args, "--out", str(tmp_path)], capsys)
    assert (code, line) == (2, message)
    assert not any(tmp_path.iterdir())


def test_toml_floats_and_dates_are_not_integers(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[sweep]\nepochs = [1e20]\n")
    assert _error(["run", "--config", str(config)], capsys) == (
        2,
        f"error: {config}: epochs: epochs must be a positive integer, got 1e+20",
    )
    config.write_text("[sweep]\nseed = 2024-01-01\n")
    assert _error(["run", "--config", str(config)], capsys) == (
        2,
        f"error: {config}: seed: seed must be an integer >= 0, got datetime.date(2024, 1, 1)",
    )


@pytest.mark.parametrize("given", ["-3", "0", "x", "99999"])
def test_verify_threads_are_checked(capsys, given):
    """Before: `verify --threads -3` reached the Keras worker, which aborted (SIGABRT)."""
    code, line = _error(["verify", "--threads", given], capsys)
    assert code == 2 and line.startswith("error: argument --threads: threads must be ")


# ---------------------------------------------------------------------------------------------
# empty paths


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--out="], "argument --out: the results folder (--out) is empty: give a path"),
        (["run", "--data-dir="], "argument --data-dir: the data folder is empty: give a path"),
        (["run", "--config="], "argument --config: the config file is empty: give a path"),
        (["run", "--resume="], "argument --resume: the run folder is empty: give a path"),
        (["report", ""], "argument RUN_DIR: the run folder is empty: give a path"),
        (
            ["report", "--pytest-benchmark= "],
            "argument --pytest-benchmark: the pytest-benchmark file is empty: give a path",
        ),
        (["list", "--data-dir="], "argument --data-dir: the data folder is empty: give a path"),
        (["run", "--preset="], "argument --preset: the preset name is empty: give one"),
        (["run", "--name="], "title: title is empty"),
    ],
)
def test_empty_paths_are_usage_errors(tmp_path, capsys, monkeypatch, args, message):
    """Before: `--out=` wrote the run folder into the current directory."""
    monkeypatch.chdir(tmp_path)
    assert _error(args, capsys) == (2, "error: " + message)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# config files: every error names the file and the key


def _config_error(tmp_path, capsys, text: str | bytes):
    config = tmp_path / "c.toml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)
    code, line = _error(["run", "--config", str(config), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    return line.replace(str(config), "FILE")


@pytest.mark.parametrize(
    "text,message",
    [
        (b"[sweep]\ntitle = '\xff\xfe'\n", "FILE is not a TOML file: byte 17 is not UTF-8 text"),
        ("[sweep]\ntitle = {a = 1}\n", "FILE: title: title must be a string, got {'a': 1}"),
        (
            "[sweep]\ndata_dir = 12\n",
            "FILE: data_dir: data_dir must be a folder path (a string), got 12",
        ),
        (
            "[sweep]\n[[sweep.parts]]\nname = 2024-01-01\n",
            "FILE: parts[0].name: part name must be a string, got datetime.date(2024, 1, 1)",
        ),
        ("[sweep]\nparts = []\n", "FILE: parts is empty: give at least one [[sweep.parts]] table"),
        ("sweep = 3\n", "FILE: sweep must be a table ([sweep]), got 3"),
        ("[sweep]\ntitle = '   '\n", "FILE: title: title is empty"),
        (
            "[sweep]\nlosses = ['bce']\noutput = 'softmax'\n",
            "FILE: loss 'bce' cannot be used with output 'softmax'; it needs output 'sigmoid'",
        ),
    ],
)
def test_config_values_name_the_file_and_key(tmp_path, capsys, text, message):
    """Before: a binary file gave `UnicodeDecodeError` without its name; the rest ran."""
    assert _config_error(tmp_path, capsys, text) == "error: " + message


def test_deeply_nested_toml_is_a_clear_error(tmp_path, capsys):
    """Before: RecursionError."""
    text = "[sweep]\nx = " + "[" * 200_000 + "]" * 200_000 + "\n"
    assert _config_error(tmp_path, capsys, text) == (
        "error: FILE is not usable: its tables or arrays nest too deep"
    )


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_config_must_be_a_regular_file(tmp_path, capsys, kind):
    """Before: a FIFO blocked forever."""
    if kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
        message = f"config file {path} is not a regular file (a pipe, device or socket)"
    elif kind == "device":
        path = Path("/dev/null")
        message = "config file /dev/null is not a regular file (a pipe, device or socket)"
    else:
        path = tmp_path
        message = f"config file {path} is a folder"
    code, line = _error(["run", "--config", str(path)], capsys)
    assert (code, line) == (2, "error: " + message)


# ---------------------------------------------------------------------------------------------
# names


def test_long_and_multi_line_names(tmp_path, capsys):
    """Before: a 300-character --name failed with `OSError: File name too long`; a newline
    broke summary.md's heading."""
    sweep = build_sweep(None, {"title": "a\nb\u2028c\td  e\x00f"})
    assert sweep.title == "a b c d ef"
    name = "n" * 300
    args = ["run", *TINY, "--name", name, "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    assert run_dir.name.endswith("-" + "n" * 60)
    assert json.loads((run_dir / "env.json").read_text())["name"] == name


# ---------------------------------------------------------------------------------------------
# "not set" cannot collide with a value: preprocess "none" is raw values


def test_preprocess_none_means_raw_values():
    """Before: "none" was read as not set and the dataset's default (scale) was applied."""
    raw = expand(build_sweep(None, {"preprocess": "none", "backends": ["numpy-vec"]}))
    assert {c.preprocess for c in raw} == {"none"}
    default = expand(build_sweep({"datasets": ["digits", "synthetic:n=50,d=3,k=2"]}))
    assert {(c.dataset, c.preprocess) for c in default} == {
        ("digits", "scale"),
        ("synthetic:n=50,d=3,k=2", "standardize"),
    }
    assert build_sweep({"preprocess": "none"}).parts[0].preprocess == "none"
    assert build_sweep({}).parts[0].preprocess is NOT_SET
    assert NOT_SET != "none" and NOT_SET is not None and not NOT_SET
    assert "preprocess" not in build_sweep({}).to_dict()["parts"][0]  # absent = not set
    assert build_sweep({"data_dir": "none"}).data_dir.endswith(os.sep + "none")  # a folder


def test_presets_that_say_raw_pixels_run_raw_pixels():
    from bench.sweep.presets import preset_mapping

    for name in ("seed001", "seed003"):
        cells = expand(build_sweep(preset_mapping(name), {"backends": ["numpy-vec"]}))
        assert {c.preprocess for c in cells} == {"none"}, name


def test_rows_record_the_preprocessing_applied(tmp_path, capsys):
    assert main(["run", *TINY, "--preprocess", "none", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "data: digits (none, float32)" in captured.err
    run_dir = Path(captured.out.strip())
    import pandas as pd

    rows = pd.read_csv(run_dir / "results.csv")
    assert list(rows["preprocess"]) == ["none"]
    assert rows["status"].tolist() == ["ok"]


# ---------------------------------------------------------------------------------------------
# dataset lists with parameters; values that become the same run once


def test_dataset_parameters_in_comma_lists():
    """Before: `--datasets synthetic:n=4096,d=784,k=10` was split at every comma."""
    args = build_parser().parse_args(
        ["run", "--datasets", "synthetic:n=4096,d=784,k=10,digits,synthetic:n=60"]
    )
    from bench.cli.parsing import sweep_overrides

    assert sweep_overrides(args)["datasets"] == [
        "synthetic:n=4096,d=784,k=10",
        "digits",
        "synthetic:n=60",
    ]
    sweep = build_sweep(None, sweep_overrides(args))
    assert sweep.parts[0].datasets[0] == "synthetic:n=4096,d=784,k=10"


def test_equal_values_run_once():
    sweep = build_sweep(
        None, {"batch_sizes": ["32", "032", "+32", "full", "FULL"], "epochs": ["1", "01"]}
    )
    assert sweep.parts[0].batch_sizes == (32, 0) and sweep.parts[0].epochs == (1,)


def test_full_batch_equal_to_a_given_size_runs_once(tmp_path, capsys):
    """Before: `--batch-sizes full,1437` on digits made two rows with one (cell_id, repeat)."""
    args = ["run", *TINY[:-2], "--batch-sizes", "full,1437", "--out", str(tmp_path)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert (
        "note: digits · numpy-vec · cce · sgd · b1437 is given twice in part 'main' ('full' is "
        "digits's 1437 training samples); it runs once"
    ) in captured.err
    import pandas as pd

    rows = pd.read_csv(Path(captured.out.strip()) / "results.csv")
    assert len(rows) == 1 and rows["batch_size"].tolist() == [1437]


# ---------------------------------------------------------------------------------------------
# a run folder's stored sweep is never replaced


@pytest.mark.parametrize(
    "stored,message",
    [
        (None, "holds no sweep to resume (sweep = null)"),
        ({"parts": [{"epochs": [0]}]}, "epochs must be a positive integer, got 0"),
        ({"parts": []}, "parts is empty"),
        ("quick", 'holds no sweep to resume (sweep = "quick")'),
    ],
)
def test_a_broken_stored_sweep_is_an_error_not_the_default(tmp_path, capsys, stored, message):
    """Before: `"sweep": null` ran the default 36-cell sweep into the folder and stored it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {"run_id": "run", "status": "interrupted", "sweep": stored}
    (run_dir / "env.json").write_text(json.dumps(env))
    code, line = _error(["run", "--resume", str(run_dir)], capsys)
    assert code == 2
    assert line.startswith(f"error: {run_dir}/env.json: ") and message in line
    assert line.endswith("a run folder's sweep is never replaced: start a new run instead")
    assert json.loads((run_dir / "env.json").read_text()) == env
    assert not (run_dir / "results.csv").exists()


def test_resume_keeps_the_stored_sweep_as_it_was(tmp_path, capsys):
    assert main(["run", *TINY, "--out", str(tmp_path), "--quiet"]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    env = json.loads((run_dir / "env.json").read_text())
    env["sweep"]["custom_note_kept"] = True  # stands for any form an older release stored
    stored = env["sweep"]
    (run_dir / "env.json").write_text(json.dumps(env))
    code = main(["run", "--resume", str(run_dir), "--quiet"])
    # an unknown key is an error (never a silent default), and nothing is rewritten
    assert code == 2
    assert json.loads((run_dir / "env.json").read_text())["sweep"] == stored
    del env["sweep"]["custom_note_kept"]
    (run_dir / "env.json").write_text(json.dumps(env))
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    assert json.loads((run_dir / "env.json").read_text())["sweep"] == env["sweep"]


# ---------------------------------------------------------------------------------------------
# a report that failed is never announced


def test_a_failed_report_is_not_announced(tmp_path, capsys, monkeypatch):
    """Before: the run printed `summary: RUN_DIR/summary.md` though no summary was written."""
    import bench.report.write

    def broken(run_dir, **kwargs):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(bench.report.write, "write_report", broken)
    assert main(["run", *TINY, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    run_dir = Path(captured.out.strip())
    assert "warning: the report could not be written (OverflowError" in captured.err
    assert f"retry with: python -m bench report {run_dir}" in captured.err
    assert "summary:" not in captured.err
    assert not (run_dir / "summary.md").exists()


def test_resume_of_a_file_says_it_is_a_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    assert _error(["run", "--resume", str(path)], capsys) == (
        2,
        f"error: {path} is not a run folder: it is a file",
    )
