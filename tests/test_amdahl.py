"""Amdahl's law fitted per backend over the thread axis (bench.report.scaling.fit_amdahl) on
synthetic epoch times whose serial fraction is known, and its section in the summary."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import scaling, sections


def amdahl_times(t1, serial, threads):
    return [t1 * (serial + (1 - serial) / n) for n in threads]


def thread_results(fractions, threads=(1, 2, 4, 8), t1=2.0):
    rows = []
    for backend, serial in fractions.items():
        for n, t in zip(threads, amdahl_times(t1, serial, threads)):
            for repeat, noise in enumerate((0.99, 1.01)):
                rows.append(
                    {
                        "part": "threads",
                        "backend": backend,
                        "dataset": "synthetic:n=10240,d=784,k=10",
                        "batch_size": 1024,
                        "hidden": "256x128",
                        "optimizer": "sgd",
                        "dtype": "float32",
                        "device": "cpu",
                        "threads": n,
                        "repeat": repeat,
                        "status": "ok",
                        # the median of the two repeats is the law's time
                        "epoch_s": t * noise,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("serial", [0.0, 0.1, 0.41, 1.0])
def test_the_serial_fraction_is_recovered_from_two_and_from_four_thread_counts(serial):
    for threads in ((1, 2), (1, 2, 4, 8), (2, 3, 16)):
        s, t1, r2 = scaling.amdahl_fit(threads, amdahl_times(3.0, serial, threads))
        assert s == pytest.approx(serial, abs=1e-9) and t1 == pytest.approx(3.0)
        if len(threads) == 2:
            assert math.isnan(r2)  # two points determine the law: no fit to judge
        elif serial < 1:
            assert r2 == pytest.approx(1.0)


def test_an_amdahl_fit_needs_two_thread_counts():
    with pytest.raises(ValueError, match="at least 2 thread counts"):
        scaling.amdahl_fit([2, 2], [1.0, 1.1])


def test_fit_per_backend_with_medians_over_repeats_and_the_measured_speedup():
    results = thread_results({"numpy-vec": 0.27, "torch": 0.05})
    fits = scaling.fit_amdahl(results).set_index("backend")
    assert fits.loc["numpy-vec", "serial_fraction"] == pytest.approx(0.27)
    assert fits.loc["torch", "serial_fraction"] == pytest.approx(0.05)
    assert fits.loc["torch", "threads"] == "1,2,4,8"
    assert fits.loc["torch", "speedup"] == pytest.approx(1 / (0.05 + 0.95 / 8))


def test_cells_at_one_thread_count_or_on_a_gpu_give_no_fit():
    one = thread_results({"numpy-vec": 0.2}, threads=(2,))
    assert scaling.fit_amdahl(one).empty
    gpu = thread_results({"torch": 0.2})
    gpu["device"] = "cuda:0"
    assert scaling.fit_amdahl(gpu).empty
    assert sections.threads_section(one) == ""


def test_the_summary_names_the_serial_fraction_per_backend():
    text = sections.threads_section(thread_results({"numpy-vec": 0.25, "torch": 0.5}))
    assert text.startswith("## Threads") and "Amdahl" in text
    rows = [line for line in text.splitlines() if line.startswith("| numpy-vec")]
    assert len(rows) == 1 and "| 1,2,4,8 |" in rows[0] and "| 0.25 (r² 1.00) |" in rows[0]


def test_the_thread_axis_is_not_a_scaling_slope():
    """A part where only the threads vary is Amdahl's, not a log-log slope's."""
    results = thread_results({"numpy-vec": 0.3}, threads=(1, 2, 4, 8, 16))
    results["n_train"] = 8192
    for column, value in {"loss": "cce", "lr": 0.01, "activation": "relu", "epochs": 3}.items():
        results[column] = value
    assert scaling.fit_slopes(results).empty
    assert np.isfinite(scaling.fit_amdahl(results)["serial_fraction"]).all()
