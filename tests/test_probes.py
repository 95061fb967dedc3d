"""The matmul probes: every reading kept, and repetitions until the figure is settled."""

from __future__ import annotations

import itertools

import pytest

from bench.store.records import PROBE_NOISY_SPREAD
from bench.worker import probes


def test_matmul_probe_keeps_every_repetition():
    # the probe's own stopwatch reads the clock first; then two reads per product
    times = iter([0.0, 0.0, 2.0, 10.0, 11.0, 20.0, 24.0])  # products of 2 s, 1 s, 4 s
    probe = probes.matmul_probe("float32", n=8, repeats=3, max_repeats=3, clock=lambda: next(times))
    flop = 2 * 8**3 / 1e9
    assert probe["reps"] == pytest.approx([flop / 2, flop / 1, flop / 4])
    assert probe["median"] == pytest.approx(flop / 2)
    assert (probe["min"], probe["max"]) == pytest.approx((flop / 4, flop))
    # quartiles of (f/4, f/2, f): f*3/8 and f*3/4, over the median f/2
    assert probe["spread"] == pytest.approx((0.75 - 0.375) / 0.5)
    assert probe["noisy"] is True
    times = iter([0.0, 0.0, 2.0, 10.0, 12.0, 20.0, 22.1])  # 2 s, 2 s, 2.1 s: a steady machine
    steady = probes.matmul_probe(
        "float32", n=8, repeats=3, max_repeats=3, clock=lambda: next(times)
    )
    assert not steady["noisy"]


def test_a_hiccup_among_the_first_readings_is_outvoted_not_published():
    # 7 readings, two of them a hiccup (the case that made a 28-minute run unpublishable),
    # then a steady machine: more readings are taken until the median is settled
    readings = itertools.chain([100, 100, 60, 100, 100, 55, 100], itertools.repeat(100.0))
    rates = probes.repeat_until_settled(lambda: next(readings), repeats=7, clock=lambda: 0.0)
    assert 7 < len(rates) < probes.PROBE_MAX_REPEATS
    assert probes.settled(rates)
    assert not probes.probe_summary(rates)["noisy"]
    assert probes.probe_summary(rates[:7])["noisy"]  # what 7 readings alone would have said


def test_a_machine_that_stays_noisy_stays_flagged():
    readings = itertools.cycle([100.0, 60.0, 140.0, 80.0])
    rates = probes.repeat_until_settled(lambda: next(readings), repeats=7, clock=lambda: 0.0)
    assert len(rates) == probes.PROBE_MAX_REPEATS
    summary = probes.probe_summary(rates)
    assert summary["noisy"] and summary["spread"] > PROBE_NOISY_SPREAD


def test_repetitions_stop_at_the_time_budget():
    ticks = itertools.count(0.0, 1.0)  # every clock read is one second later
    readings = itertools.cycle([100.0, 60.0, 140.0])
    rates = probes.repeat_until_settled(
        lambda: next(readings), repeats=3, clock=lambda: next(ticks), budget_s=4.0
    )
    assert 3 < len(rates) < probes.PROBE_MAX_REPEATS


def test_a_steady_machine_takes_only_the_minimum():
    rates = probes.repeat_until_settled(lambda: 100.0, repeats=7, clock=lambda: 0.0)
    assert rates == [100.0] * 7
