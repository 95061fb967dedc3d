"""What a first-time user meets: a summary that opens with its answer, output that survives a
closed pipe, and a preset shortened with --epochs that keeps its learning curve."""

import os
import subprocess
import sys

import pytest
from helpers import ROOT, bench_env
from test_report import ENV, make_tables

from bench.report.summary import render_summary
from bench.sweep.build import build_sweep
from bench.sweep.curves import MIN_CURVE_POINTS, curve_eval_every
from bench.sweep.presets import preset_mapping


def test_the_summary_opens_with_the_verdict_and_the_environment_follows():
    results, curves = make_tables()
    text = render_summary(results, curves, ENV)
    blocks = text.split("\n\n")
    assert blocks[0].startswith("# mlp-bench: ") and blocks[1] == "## Verdict"
    verdict, machine = text.index("## Verdict"), text.index("Run on ")
    assert verdict < machine < text.index("Command: ") < text.index("**How to read this.**")


@pytest.mark.parametrize("command", [["list"], ["--help"]])
def test_a_closed_pipe_ends_the_command_quietly(command):
    """`python -m bench list | head -1`: the reader goes before the output is written."""
    read, write = os.pipe()
    os.close(read)  # no reader at all: every write meets a closed pipe, every time
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=bench_env(),
            timeout=300,
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "BrokenPipe" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.stderr == ""


def test_a_shortened_preset_keeps_its_learning_curve():
    told = []
    base = preset_mapping("seed004")
    (part,) = build_sweep(base).parts
    assert part.eval_every == 1000 and min(part.epochs) // part.eval_every >= MIN_CURVE_POINTS
    (short,) = build_sweep(base, {"epochs": "50"}, note=told.append).parts
    assert short.epochs == (50,) and short.eval_every == 5  # 10 points, not 1
    assert len(told) == 1 and "eval_every 1000 leaves 0 curve point(s) in 50 epochs" in told[0]
    assert "every 5 epoch(s) instead" in told[0] and "--eval-every" in told[0]
    # an --eval-every given with --epochs is the person's choice
    told.clear()
    (chosen,) = build_sweep(base, {"epochs": "50", "eval_every": "25"}, note=told.append).parts
    assert chosen.eval_every == 25 and told == []


def test_the_curve_rule():
    quiet = []
    assert curve_eval_every(1, (3,), "main", quiet.append) == 1  # nothing shorter to give
    assert curve_eval_every(10, (2000,), "main", quiet.append) == 10  # 200 points already
    assert quiet == []
    assert curve_eval_every(50, (100,), "main", quiet.append) == 10 and len(quiet) == 1
