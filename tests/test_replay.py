"""`bench replay`: float32 rounding told from a real difference by a float64 replay of the
first epochs of the cells where backends part (bench/run/replay.py, bench/report/replayed.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import read_env, run_bench

from bench.report.replayed import parting_cause, replay_sentence
from bench.run import replay

COLUMN = {"where": {"part": "main", "dataset": "digits", "dtype": "float32"}}


def curves(losses: dict) -> pd.DataFrame:
    """Curve rows of part replay-1 from {(backend, dtype): [loss after epoch 1, 2, ...]}."""
    rows = [
        dict(part="replay-1", backend=b, dtype=d, epoch=e, train_loss=v, test_loss=v * 1.1)
        for (b, d), values in losses.items()
        for e, v in enumerate(values, 1)
    ]
    return pd.DataFrame(rows)


def judged(losses: dict, backends=("numpy-vec", "torch")) -> dict:
    return replay.compare(
        curves(losses), {**COLUMN, "backends": list(backends)}, "replay-1", "float32"
    )


def test_same_maths_rounded_differently_is_rounding():
    # the measurement on raw pixels: 5e-3 apart in float32, 4e-13 in float64
    record = judged(
        {
            ("numpy-vec", "float32"): [2.0, 1.5],
            ("torch", "float32"): [2.0, 1.5 * (1 + 5e-3)],
            ("numpy-vec", "float64"): [2.0, 1.5],
            ("torch", "float64"): [2.0, 1.5 * (1 + 4e-13)],
        }
    )
    assert record["verdict"] == "rounding" and record["reference"] == "numpy-vec"
    assert record["backends"]["torch"]["float32"] == pytest.approx(5e-3, rel=1e-2)
    assert record["backends"]["torch"]["float64"] < 1e-12
    text = replay_sentence({"replay": {"epochs": 2, "columns": [record]}})
    assert "float32 rounding grown over many steps" in text
    assert "part by up to 0.005 in the run's dtype and agree within 4e-13 in float64" in text


def test_a_difference_that_stays_in_float64_while_the_control_agrees_is_real():
    record = judged(
        {
            ("numpy-vec", "float32"): [2.0, 1.5],
            ("numpy-loop", "float32"): [2.0, 1.5 * (1 + 1e-5)],
            ("torch", "float32"): [1.8, 1.2],
            ("numpy-vec", "float64"): [2.0, 1.5],
            ("numpy-loop", "float64"): [2.0, 1.5 * (1 + 1e-14)],
            ("torch", "float64"): [1.8, 1.2],
        },
        backends=("numpy-vec", "numpy-loop", "torch"),
    )
    assert record["verdict"] == "real difference" and record["apart"] == ["torch"]
    text = replay_sentence({"replay": {"epochs": 2, "columns": [record]}})
    assert "they still part (torch from numpy-vec by 0.2)" in text
    assert "a real difference in what they compute, not rounding" in text


def test_where_even_float64_rounding_grows_no_cause_is_claimed():
    # seed003 on raw pixels, measured: after 2 epochs of 48 steps the backends part by 1e-2
    # in float64 too, numpy-loop against numpy-vec (the same maths) by 7e-3 among them
    chaotic = {
        ("numpy-vec", "float32"): [2.0, 1.5],
        ("numpy-loop", "float32"): [2.0, 1.59],
        ("torch", "float32"): [2.0, 1.64],
        ("numpy-vec", "float64"): [2.0, 1.5],
        ("numpy-loop", "float64"): [2.0, 1.51],
        ("torch", "float64"): [2.0, 1.55],
    }
    record = judged(chaotic, backends=("numpy-vec", "numpy-loop", "torch"))
    assert record["verdict"] == "apart in float64" and record["apart"] == ["torch"]
    assert record["control"] == pytest.approx(0.01 / 1.51)
    text = replay_sentence({"replay": {"epochs": 2, "columns": [record]}})
    assert "cannot tell rounding from a real difference" in text
    assert "numpy-loop from numpy-vec by 0.007" in text
    assert "real difference in what they compute" not in text
    # without the control pair in the run, a float64 gap is not called real either
    del chaotic[("numpy-loop", "float32")], chaotic[("numpy-loop", "float64")]
    assert judged(chaotic)["verdict"] == "apart in float64"


def test_backends_that_agree_in_both_dtypes_are_not_yet_apart():
    same = {(b, d): [2.0, 1.5] for b in ("numpy-vec", "torch") for d in ("float32", "float64")}
    assert judged(same)["verdict"] == "not yet apart"


def test_a_backend_without_float64_is_named_not_judged():
    record = judged(
        {
            ("numpy-vec", "float32"): [2.0, 1.5],
            ("mine", "float32"): [2.0, 1.6],
            ("numpy-vec", "float64"): [2.0, 1.5],
        },
        backends=("numpy-vec", "mine"),
    )
    assert record["verdict"] == "not replayed" and record["missing"] == ["mine"]
    assert "mine did not run in float64" in replay_sentence({"replay": {"columns": [record]}})


def test_nan_losses_are_not_compared():
    record = judged(
        {
            ("numpy-vec", "float32"): [float("nan")],
            ("torch", "float32"): [2.0],
            ("numpy-vec", "float64"): [float("nan")],
            ("torch", "float64"): [2.0],
        }
    )
    assert record["verdict"] == "not replayed"


def test_without_a_replay_the_verdict_names_the_command_not_a_cause():
    text = parting_cause({}, [], "`python -m bench verify` checks it")
    assert "measured by `python -m bench replay` on this run folder" in text
    assert "rounding grows" not in text


def test_the_replay_sweep_is_each_parted_column_in_its_dtype_and_float64():
    stored = {
        "title": "seed003",
        "timing_budget": 2.0,
        "parts": [{"name": "mse-decay", "losses": ["mse"], "lrs": [0.15], "weight_decay": 0.02,
                   "epochs": [20], "eval_every": 5, "repeats": 3, "backends": ["a", "b", "c"]}],
    }  # fmt: skip
    column = {
        "where": {"part": "mse-decay", "dataset": "digits", "batch_size": 64, "dtype": "float32",
                  "hidden": "30x30", "lr": 0.15, "threads": 1},
        "backends": ["a", "b"],
    }  # fmt: skip
    mapping = replay.replay_mapping(stored, [column], epochs=2)
    (part,) = mapping["parts"]
    assert part["backends"] == ["a", "b"] and part["dtypes"] == ["float32", "float64"]
    assert part["epochs"] == [2] and part["eval_every"] == 1 and part["repeats"] == 1
    assert part["weight_decay"] == 0.02 and part["batch_sizes"] == [64]
    assert part["hidden"] == ["30x30"] and part["datasets"] == ["digits"]
    assert mapping["timing_budget"] == 0  # no extra timing epochs: only the losses matter


def test_bench_replay_finds_a_real_difference_end_to_end(tmp_path):
    plugin = "tests/verify_clients.py:TripleStep"
    backends = f"numpy-vec,numpy-loop,{plugin}"  # numpy-loop: the control pair with numpy-vec
    args = ["--datasets", "digits", "--backends", backends, "--batch-sizes", "32"]
    args += ["--epochs", "3", "--lrs", "0.01", "--optimizers", "sgd", "--losses", "cce"]
    made = run_bench("run", *args, "--timing-budget", "0", "--quiet", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    run_dir = made.stdout.strip().splitlines()[-1]
    before = open(f"{run_dir}/summary.md").read()
    assert "measured by `python -m bench replay` on this run folder" in before
    done = run_bench("replay", run_dir, "--epochs", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "REAL DIFFERENCE" in done.stdout and "TripleStep" in done.stdout
    record = read_env(run_dir)["replay"]
    (column,) = record["columns"]
    assert column["verdict"] == "real difference" and column["reference"] == "numpy-vec"
    (apart,) = column["apart"]
    assert apart.endswith("verify_clients.py:TripleStep")
    assert column["backends"][apart]["float64"] > 1e-3
    after = open(f"{run_dir}/summary.md").read()
    assert "a real difference in what they compute, not rounding" in after
    # a run whose backends agree has nothing to replay: a usage error, said plainly
    again = run_bench("run", "--datasets", "digits", "--backends", "numpy-vec", "--batch-sizes",
                      "32", "--epochs", "1", "--timing-budget", "0", "--quiet", "--out",
                      str(tmp_path))  # fmt: skip
    lone = again.stdout.strip().splitlines()[-1]
    refused = run_bench("replay", lone)
    assert refused.returncode == 2 and "nothing to replay" in refused.stderr


def test_replay_epochs_must_be_a_whole_number_of_one_or_more(capsys):
    from bench.cli import main

    assert main(["replay", "results", "--epochs", "0"]) == 2
    assert "epochs must be a positive integer, got '0'" in capsys.readouterr().err
