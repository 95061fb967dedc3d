"""Noise made visible: per-cell spread, the noisy flag, the probe's spread, and assess()."""

import math

import pandas as pd
import pytest
from test_measure import FakeClock, ScriptedModel, _data

from bench.report import noise
from bench.store import records
from bench.worker import measure


def test_spread_is_iqr_over_median_exactly():
    assert measure.spread([1, 2, 3, 4, 5]) == pytest.approx((4 - 2) / 3)
    assert measure.spread([5, 1, 4, 2, 3]) == pytest.approx((4 - 2) / 3)  # order does not matter
    assert measure.spread([2.0, 2.0, 2.0]) == 0.0
    assert math.isnan(measure.spread([1.0, 2.0]))  # under 3 values: unknown, not zero
    # the steady state leaves out the first (warm-up) epoch, however slow it was
    assert measure.steady_spread([100.0, 1, 2, 3, 4, 5]) == pytest.approx(2 / 3)


def _measure(durations):
    clock = FakeClock()
    model = ScriptedModel(clock, durations, [0.5] * len(durations), [0.5] * len(durations))
    return measure.train_and_measure(
        model,
        _data(),
        epochs=len(durations),
        batch_size=4,
        seed=0,
        loss="cce",
        flops_per_sample=60,
        clock=clock,
    ).row


def test_cells_are_flagged_noisy_above_the_threshold():
    # the busy-machine case of the issue: steady epochs from 1.6 ms to 159 ms
    busy = _measure([0.5, 0.0016, 0.002, 0.159, 0.0017, 0.08])
    assert busy.epoch_s_spread > 1 and busy.noisy
    assert busy.noisy is True
    quiet = _measure([0.5, 1.00, 1.01, 1.02, 1.00, 1.03])
    # quartiles of 1.00, 1.00, 1.01, 1.02, 1.03: 1.00 and 1.02 around the median 1.01
    assert quiet.epoch_s_spread == pytest.approx(0.02 / 1.01)
    assert not quiet.noisy
    edge = _measure([0.5, 1.0, 1.0 + 2 * records.NOISY_SPREAD, 1.0 + records.NOISY_SPREAD])
    # quartiles of 1, 1+t, 1+2t: 1+t/2 and 1+3t/2 around 1+t -> spread t/(1+t), under t
    assert not edge.noisy
    few = _measure([0.5, 1.0, 9.0])  # two steady epochs: spread unknown, not flagged
    assert math.isnan(few.epoch_s_spread) and not few.noisy


def _results(noisy_flags, threads=1):
    return pd.DataFrame(
        {
            "cell_id": [f"c{i}" for i in range(len(noisy_flags))],
            "repeat": [0] * len(noisy_flags),
            "status": ["ok"] * len(noisy_flags),
            "threads": [threads] * len(noisy_flags),
            "noisy": noisy_flags,
        }
    )


def _env(busy=False, probe_spread=0.01, loadavg=0.2):
    return {
        "sessions": [
            {
                "index": 0,
                "load": {
                    "start": {"loadavg": [loadavg, 0.1, 0.1], "cpu_count": 2},
                    "end": {"loadavg": [1.0, 0.5, 0.2], "cpu_count": 2},
                    "other_cpu_s": 3.0 if busy else 0.1,
                    "other_cores": 1.5 if busy else 0.01,
                    "busy": busy,
                },
                "matmul": {
                    "1": {
                        "float32": {
                            "median": 100.0,
                            "min": 60.0,
                            "max": 101.0,
                            "spread": probe_spread,
                            "reps": [100.0] * 5,
                            "noisy": probe_spread > records.PROBE_NOISY_SPREAD,
                        }
                    }
                },
            }
        ]
    }


def test_a_quiet_run_shows_no_warning():
    a = noise.assess(_env(), _results([False, False, False]))
    assert a.reliable and a.reasons == [] and a.lines() == [] and a.noisy_cells == set()


def test_a_busy_run_says_why_and_what_to_do():
    a = noise.assess(
        _env(busy=True, probe_spread=0.32, loadavg=3.1), _results([True, False, "True"], threads=2)
    )
    assert not a.reliable
    text = "\n".join(a.reasons)
    assert "the machine was busy: load average 3.1 on 2 cores at the start" in text
    assert "other processes used 1.5 cores on average" in text
    assert "2 of 3 cells are noisy" in text
    assert "the matmul probe (float32, 1 thread) varied 32% between repetitions" in text
    assert "--repeats" in a.advice and "--threads 1" in a.advice and "quiet machine" in a.advice
    assert a.noisy_cells == {("c0", 0), ("c2", 0)}
    assert a.lines()[0].startswith("warning: ")


def test_short_noisy_cells_on_a_quiet_machine_are_not_blamed_on_the_machine():
    """A quiet machine and a steady probe, but 2 ms epochs spreading 38%: the advice is to give
    those cells more work, not to find a quieter machine."""
    results = _results([False, True, True])
    results["epoch_s"] = [0.046, 0.0018, 0.0044]
    a = noise.assess(_env(), results)
    assert not a.reliable
    assert a.reasons == [
        "2 of 3 cells are noisy (their epoch times spread more than 10% around the median; "
        "their steady epochs take 1.8 ms to 4.4 ms)"
    ]
    assert "more work per epoch" in a.advice and "quiet machine" not in a.advice.split(":")[0]
    assert "--repeats" in a.advice


def test_load_busy_rules():
    start = {"loadavg": [0.3, 0.2, 0.1], "cpu_count": 2}
    assert noise.load_busy({"start": start, "other_cpu_s": 0.5}, wall_s=10.0) is False
    assert noise.load_busy({"start": start, "other_cpu_s": 6.0}, wall_s=10.0) is True
    busy_start = {"loadavg": [1.2, 0.2, 0.1], "cpu_count": 2}
    assert noise.load_busy({"start": busy_start, "other_cpu_s": None}, wall_s=10.0) is True
    assert noise.load_busy(None, wall_s=1.0) is None
    # Before: a load average of 1.2 left by a job that had just ended made a run "busy" whose
    # neighbours took 0.31 CPU-seconds in 52 s; the CPU time measured during the run decides.
    assert noise.load_busy({"start": busy_start, "other_cpu_s": 0.31}, wall_s=52.25) is False


def test_cells_too_short_to_measure_their_noise_are_said_to_be():
    """Before: a 3-epoch run (2 steady epochs, no spread) got a confident speed verdict with
    no word that its noise was never measured."""
    results = _results([False, False, False])
    results["epoch_s_spread"] = [float("nan"), 0.02, float("nan")]
    a = noise.assess(_env(), results)
    assert not a.reliable
    assert "2 of 3 cells ran fewer than 3 steady epochs" in " ".join(a.reasons)
    assert "un 4 epochs or more" in a.advice
    results["epoch_s_spread"] = [0.01, 0.02, 0.03]
    assert noise.assess(_env(), results).reliable
