"""The intervals on timing ratios (bench.report.intervals, bench.report.samples): their
coverage on synthetic timings of known ratio, paired rounds, too few samples, and that a
small cell is not called unreliable for its spread alone when its time is known precisely."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_report import ENV
from test_verdict import _epochs, _timed, _verdict

from bench.report import intervals
from bench.report.samples import CellTimes
from bench.report.summary import render_summary

SIMULATIONS = 400


def _coverage(draw, seed):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(SIMULATIONS):
        interval, truth = draw(rng)
        hits += interval.lo <= truth <= interval.hi
    return hits / SIMULATIONS


@pytest.mark.parametrize("n", [5, 9, 20])
def test_unpaired_intervals_cover_the_true_ratio_95_percent_of_the_time(n):
    def draw(rng):
        # log-normal epoch times with an occasional slow epoch, the true ratio 1.3
        a = 0.013 * np.exp(rng.normal(0, 0.1, n))
        b = 0.010 * np.exp(rng.normal(0, 0.1, n))
        return intervals.ratio_interval(a, b), 1.3

    assert 0.92 <= _coverage(draw, n) <= 0.98


@pytest.mark.parametrize("n", [6, 12, 30])
def test_paired_intervals_cover_the_true_ratio_95_percent_of_the_time(n):
    def draw(rng):
        # a load that moves both sides of each round: the ratio stays 0.8
        load = np.exp(rng.normal(0, 0.5, n))
        a = 0.008 * load * np.exp(rng.normal(0, 0.03, n))
        b = 0.010 * load * np.exp(rng.normal(0, 0.03, n))
        return intervals.paired_interval(np.log(a) - np.log(b)), 0.8

    assert 0.92 <= _coverage(draw, 100 + n) <= 0.98


def test_pairing_rounds_narrows_the_interval_under_a_moving_load():
    rng = np.random.default_rng(0)
    load = np.exp(rng.normal(0, 0.5, 12))
    a, b = 0.008 * load, 0.010 * load * np.exp(rng.normal(0, 0.02, 12))
    paired = intervals.paired_interval(np.log(a) - np.log(b))
    unpaired = intervals.ratio_interval(a, b)
    assert paired.lo <= 0.8 <= paired.hi and paired.hi / paired.lo < 1.05
    assert unpaired.hi / unpaired.lo > 1.5


def test_too_few_samples_give_no_interval_never_a_zero_width_one():
    assert not intervals.ratio_interval([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]).known  # 3 a side
    assert intervals.ratio_interval([1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3]).known
    assert not intervals.paired_interval([0.1] * 5).known  # 5 rounds cannot reach 95%
    assert intervals.paired_interval([0.1, 0.11, 0.09, 0.1, 0.12, 0.1]).known
    one = intervals.ratio_interval([1.4], [1.0])
    assert one.ratio == pytest.approx(1.4) and math.isnan(one.lo)
    assert "too few samples" in one.text()
    # bad values are no samples
    assert not intervals.ratio_interval([1.0, -0.0, float("inf"), "x"], [1.0] * 9).known


def test_exact_null_distributions_match_their_definitions():
    assert sum(intervals._mw_counts(4, 6)) == math.comb(10, 4)
    assert sum(intervals._sr_counts(7)) == 2**7
    # the exact depth and the normal approximation agree on large samples
    exact = intervals.mw_depth(60, 60)
    approx = intervals._depth(None, 3600, 0.05, math.sqrt(3600 * 121 / 12))
    assert abs(exact - approx) <= 2


def test_interleaved_rounds_are_paired_in_the_verdict():
    # both backends slowed by the same load in each round: pairing sees a steady 1.25x
    rng = np.random.default_rng(3)
    load = np.exp(rng.normal(0, 0.6, 9))
    results, curves = _timed(
        {("numpy-vec", 32): list(0.010 * load), ("torch", 32): list(0.008 * load * 1.001)}
    )
    curves["round"] = curves["epoch"]
    times = CellTimes(results, curves)
    keys = sorted(times.times)
    iv = times.speedup(keys[0], keys[1])
    assert iv.method == "rounds" and iv.known and iv.hi / iv.lo < 1.02
    line = _verdict(render_summary(results, curves, ENV))
    assert "torch fastest at batch 32 (1.25× [" in line


def test_a_small_cell_with_a_tight_interval_is_not_called_unreliable():
    # 1-2 ms epochs spreading 15% (flagged noisy), but 80 of them pin the median to within 5%
    results, curves = _timed(
        {
            ("numpy-vec", 1): _epochs(0.0015, n=80, jitter=0.15, seed=1),
            ("torch", 1): _epochs(0.0030, n=80, jitter=0.15, seed=2),
        }
    )
    results["noisy"] = pd.array([True, True], dtype="boolean")
    text = render_summary(results, curves, ENV)
    assert "unreliable" not in text
    # with 5 such epochs the medians are not pinned down, but a 2x lead is settled all the
    # same: its interval excludes 1 and lies beyond the threshold, so nothing is open
    results, curves = _timed(
        {
            ("numpy-vec", 1): _epochs(0.0015, n=5, jitter=0.15, seed=1),
            ("torch", 1): _epochs(0.0030, n=5, jitter=0.15, seed=2),
        }
    )
    results["noisy"] = pd.array([True, True], dtype="boolean")
    assert "unreliable" not in render_summary(results, curves, ENV)
    # within 10% of each other, the same 5 epochs cannot say which is faster: the warning
    # stays and names the comparison that remains open
    results, curves = _timed(
        {
            ("numpy-vec", 1): _epochs(0.0015, n=5, jitter=0.15, seed=1),
            ("torch", 1): _epochs(0.0016, n=5, jitter=0.15, seed=2),
        }
    )
    results["noisy"] = pd.array([True, True], dtype="boolean")
    text = render_summary(results, curves, ENV)
    assert "2 of 2 cells are noisy" in text
    assert "too wide to say which is faster: torch against numpy-vec at batch 1 (1.05× [" in text


def test_a_zero_width_band_never_makes_a_bold_fastest():
    # 2 epochs: one steady epoch a cell, min = max = median: no bold time in the table
    results, curves = _timed({("numpy-vec", 1): [0.014], ("torch", 1): [0.010]})
    text = render_summary(results, curves, ENV)
    table = text.split("## digits · loss cce", 1)[1].split("\n## ", 1)[0]
    assert "**10 ms**" not in table and "**14 ms**" not in table
    results, curves = _timed(
        {("numpy-vec", 1): _epochs(0.014, seed=1), ("torch", 1): _epochs(0.010, seed=2)}
    )
    table = render_summary(results, curves, ENV).split("## digits · loss cce", 1)[1]
    assert "**10" in table.split("\n## ", 1)[0]


def test_extra_timing_epochs_count_among_a_cells_samples():
    # 5 steady epochs a cell in curves.csv (too few for a precise median: noisy), and 75 extra
    # timing epochs each in results.csv: together they pin the medians down
    five = {
        ("numpy-vec", 1): _epochs(0.0015, n=5, jitter=0.15, seed=1),
        ("torch", 1): _epochs(0.0017, n=5, jitter=0.15, seed=2),
    }
    results, curves = _timed(five)
    results["noisy"] = pd.array([True, True], dtype="boolean")
    assert "2 of 2 cells are noisy" in render_summary(results, curves, ENV)
    extra = [_epochs(0.0015, n=75, jitter=0.15, seed=3), _epochs(0.0017, n=75, jitter=0.15, seed=4)]
    results["extra_epoch_s"] = [json.dumps(e) for e in extra]  # as results.csv holds them
    times = CellTimes(results, curves)
    assert sorted(len(times.samples(k)) for k in times.times) == [80, 80]
    text = render_summary(results, curves, ENV)
    assert "unreliable" not in text
    assert "numpy-vec fastest at batch 1 (1.1" in _verdict(text)
    # a damaged value is no sample, and no crash
    results["extra_epoch_s"] = ['[0.001, "x", -1]', "not json"]
    times = CellTimes(results, curves)
    assert sorted(len(times.samples(k)) for k in times.times) == [5, 6]
