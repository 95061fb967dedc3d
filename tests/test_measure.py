"""Measurement with a fake clock and a scripted model: the statistics are exact."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.store.schema import CURVE_COLUMNS, MEASURED_COLUMNS
from bench.worker import measure
from bench.worker.metrics import evaluate


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ScriptedModel:
    """train_epoch advances the clock by the next duration and returns the next loss;
    predict_proba is right on the first `correct[e]` samples after epoch e."""

    def __init__(self, clock, durations, losses, correct, predict_s=0.5):
        self.clock, self.durations, self.losses = clock, list(durations), list(losses)
        self.correct = list(correct)
        self.predict_s = predict_s
        self.epoch = 0
        self.orders = []
        self.predict_calls = 0

    def train_epoch(self, X, Y, batch_size, order):
        self.orders.append(np.array(order))
        self.clock.now += self.durations[self.epoch]
        loss = self.losses[self.epoch]
        self.epoch += 1
        return loss

    def predict_proba(self, X):
        self.predict_calls += 1
        self.clock.now += self.predict_s  # off the training clock
        n = X.shape[0]
        k = int(self.correct[self.epoch - 1] * n)
        P = np.full((n, 2), 0.25)
        P[:, 0] = 0.75  # predicts class 0 everywhere...
        P[:k] = [0.25, 0.75]  # ...but class 1 on the first k samples
        return P


def _data(n=10):
    Y = np.tile([0.0, 1.0], (n, 1))  # every sample is class 1
    return SimpleNamespace(X_train=np.zeros((n, 3)), Y_train=Y, X_test=np.zeros((n, 3)), Y_test=Y)


def test_epoch_statistics_and_rates_are_exact():
    clock = FakeClock()
    model = ScriptedModel(
        clock, [5.0, 1.0, 3.0, 2.0], [0.9, 0.7, 0.5, 0.4], correct=[0.2, 0.5, 0.8, 0.9]
    )
    records = []
    m = measure.train_and_measure(
        model,
        _data(),
        epochs=4,
        batch_size=2,
        seed=1,
        loss="cce",
        flops_per_sample=6000,
        target_acc=0.75,
        clock=clock,
        on_epoch=records.append,
    )
    assert m.row.status == "ok" and m.row.diverged_epoch is None
    assert m.row.first_epoch_s == 5.0
    assert m.row.epoch_s == 2.0 and (m.row.epoch_s_min, m.row.epoch_s_max) == (1.0, 3.0)
    assert m.row.train_s == 11.0  # evaluation time (0.5 s per predict) is off the clock
    assert m.row.samples_per_s == 10 / 2.0
    assert m.row.gflops == pytest.approx(6000 * 5.0 / 1e9)
    assert m.row.flops_per_sample == 6000
    assert m.row.predict_s == 0.5
    assert [r.elapsed_s for r in records] == [5.0, 6.0, 9.0, 11.0]
    assert [r.epoch_loss for r in records] == [0.9, 0.7, 0.5, 0.4]
    assert [r.test_acc for r in records] == [0.2, 0.5, 0.8, 0.9]
    assert m.row.test_acc == 0.9 and m.row.best_test_acc == 0.9 and m.row.train_acc == 0.9
    assert m.row.time_to_target_s == 9.0  # first epoch reaching 0.75: the third
    assert m.row.test_loss == pytest.approx(0.9 * -math.log(0.75) + 0.1 * -math.log(0.25))


def test_eval_every_and_single_epoch():
    clock = FakeClock()
    model = ScriptedModel(clock, [1.0, 2.0, 4.0], [1.0, 0.8, 0.6], correct=[0.1, 0.6, 0.7])
    m = measure.train_and_measure(
        model,
        _data(),
        epochs=3,
        batch_size=4,
        seed=0,
        loss="mse",
        flops_per_sample=60,
        eval_every=2,
        clock=clock,
    )
    rows = m.epochs
    assert math.isnan(rows[0].test_acc) and rows[1].test_acc == 0.6 and rows[2].test_acc == 0.7
    assert model.predict_calls == 2 * 2 + 1  # epochs 2 and 3 (train+test), then predict_s
    one = measure.train_and_measure(
        ScriptedModel(FakeClock(), [3.0], [1.0], [0.5]),
        _data(),
        epochs=1,
        batch_size=4,
        seed=0,
        loss="cce",
        flops_per_sample=60,
        clock=FakeClock(),
    )
    assert one.row.first_epoch_s == one.row.epoch_s  # one epoch: the steady state is that epoch


def test_divergence_stops_the_cell():
    clock = FakeClock()
    model = ScriptedModel(
        clock, [1.0, 1.0, 1.0, 1.0], [0.5, float("nan"), 0.1, 0.1], correct=[0.5] * 4
    )
    m = measure.train_and_measure(
        model, _data(), epochs=4, batch_size=4, seed=0, loss="cce", flops_per_sample=60, clock=clock
    )
    assert m.row.status == "diverged" and m.row.diverged_epoch == 2 and m.row.epochs_run == 2
    assert model.epoch == 2 and math.isnan(m.row.predict_s)


def test_orders_are_shared_and_reproducible():
    runs = []
    for _ in range(2):
        model = ScriptedModel(FakeClock(), [1.0] * 3, [1.0] * 3, [0.5] * 3)
        measure.train_and_measure(
            model,
            _data(7),
            epochs=3,
            batch_size=2,
            seed=42,
            loss="cce",
            flops_per_sample=6,
            clock=FakeClock(),
        )
        runs.append(model.orders)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert sorted(runs[0][0]) == list(range(7)) and not np.array_equal(runs[0][0], runs[0][1])
    fixed = list(measure.sample_orders(3, 5, "fixed").__next__() for _ in range(1))
    np.testing.assert_array_equal(fixed[0], np.arange(5))


def test_epoch_statistics_edge_cases():
    assert measure.epoch_statistics([4.0, 1.0, 2.0, 9.0]) == (4.0, 2.0, 1.0, 9.0)
    assert all(math.isnan(v) for v in measure.epoch_statistics([]))


def test_deadline_with_fake_clock():
    clock = FakeClock()
    deadline = measure.Deadline(10.0, clock=clock)
    assert deadline.remaining() == 10.0 and not deadline.expired()
    clock.now += 12
    assert deadline.remaining() == 0.0 and deadline.expired()
    assert measure.Deadline(None, clock=clock).remaining() is None


def test_metrics():
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    P = np.array([[0.8, 0.2], [0.4, 0.6]])
    loss, acc = evaluate(P, Y, "cce")
    assert acc == 1.0 and loss == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    loss, _ = evaluate(P, Y, "mse")
    assert loss == pytest.approx((0.04 + 0.04 + 0.16 + 0.16) / 4)
    loss, _ = evaluate(P, Y, "bce")
    assert loss == pytest.approx(-(2 * np.log(0.8) + 2 * np.log(0.6)) / 4)
    # a confident wrong answer costs -log(eps) of the dtype, not infinity
    loss, acc = evaluate(np.array([[0.0, 1.0]], dtype=np.float32), Y[:1], "cce")
    assert acc == 0.0 and loss == pytest.approx(-np.log(np.finfo(np.float32).eps), rel=1e-6)
    assert math.isnan(evaluate(np.full((2, 2), np.nan), Y, "cce")[0])


# -- the only clock --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CLOCKS = ("perf_counter", "perf_clock()", "monotonic()", "process_time")  # timing clocks


def clock_reads(text: str) -> list[str]:
    return [c for c in CLOCKS if c in text]


def test_only_measure_reads_a_clock():
    """Every other module of bench/ times things with measure.Stopwatch / measure.timed."""
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / "bench").rglob("*.py"))
        if path != Path(measure.__file__).resolve()
        and (hits := clock_reads(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_clock_rule_finds_a_clock():
    assert clock_reads("start = time.perf_counter()") == ["perf_counter"]
    assert clock_reads("deadline = time.monotonic() + 5") == ["monotonic()"]
    assert clock_reads("with measure.Stopwatch() as watch:") == []


def test_stopwatch_with_a_fake_clock():
    now = [10.0]
    watch = measure.Stopwatch(lambda: now[0])
    now[0] = 12.5
    assert watch.elapsed() == 2.5
    with measure.Stopwatch(lambda: now[0]) as w:
        now[0] = 13.0
    assert w.seconds == 0.5


def test_a_measurement_fills_exactly_the_measured_columns_of_a_row():
    """The measured part of a row is declared once (bench.store.records.ResultRow, marked
    measured): the worker fills those columns and no other."""
    m = measure.train_and_measure(
        ScriptedModel(FakeClock(), [1.0] * 4, [1.0] * 4, [0.5] * 4),
        _data(),
        epochs=4,
        batch_size=4,
        seed=0,
        loss="cce",
        flops_per_sample=60,
        clock=FakeClock(),
    )
    filled = {c for c, v in m.row.as_row().items() if v is not None}
    assert filled == set(MEASURED_COLUMNS) - {"diverged_epoch"}  # None: it did not diverge
    assert tuple(m.as_row()) == MEASURED_COLUMNS and m.as_row()["epochs_run"] == 4
    assert [tuple(r.as_row()) for r in m.epochs[:1]] == [CURVE_COLUMNS[-8:]]


# -- extra timing epochs ----------------------------------------------------------------------


def _timed_cell(durations, *, epochs, budget, losses=None):
    clock = FakeClock()
    n = len(durations)
    model = ScriptedModel(clock, durations, losses or [0.5] * n, correct=[0.5] * n)
    training = measure.Training(
        model, _data(), epochs=epochs, batch_size=2, seed=0, loss="cce",
        flops_per_sample=60, timing_budget=budget, clock=clock,
    )  # fmt: skip
    while not training.done:
        training.epoch()
    calls = model.predict_calls
    return training.measurement(), model, calls


def test_extra_timing_epochs_run_until_the_median_is_precise():
    # steady epochs 1.0, 1.3, 0.8: the median's 95% interval spans 0.8-1.3 until 9 samples,
    # where it is the 2nd smallest to the 2nd largest: 1.0-1.0
    durations = [5.0, 1.0, 1.3, 0.8] + [1.0] * 20
    m, model, calls = _timed_cell(durations, epochs=4, budget=100.0)
    assert m.row.extra_epoch_s == [1.0] * 6
    assert model.epoch == 4 + 6  # they trained, on the next sample orders
    assert len({tuple(o) for o in model.orders}) > 1
    assert m.row.epoch_s == 1.0 and m.row.epochs_run == 4 and len(m.epochs) == 4
    assert m.row.train_s == pytest.approx(8.1)  # the configured epochs only
    assert model.predict_calls == calls + 1  # nothing evaluated after them: one timed predict


def test_extra_timing_epochs_stop_before_the_budget():
    durations = [5.0] + [1.0, 2.0] * 40  # never precise: the budget decides
    m, _, _ = _timed_cell(durations, epochs=3, budget=6.0)
    assert sum(m.row.extra_epoch_s) <= 6.0
    # the next would have taken the spent time past 6 s at the median's pace
    assert sum(m.row.extra_epoch_s) + 1.5 > 6.0


def test_no_extra_timing_without_a_budget_or_after_divergence():
    m, _, _ = _timed_cell([5.0, 1.0, 1.3, 0.8] + [1.0] * 20, epochs=4, budget=0.0)
    assert m.row.extra_epoch_s == [] and m.row.epoch_s == 1.0
    diverged, _, _ = _timed_cell(
        [1.0] * 10, epochs=4, budget=100.0, losses=[0.5, float("nan")] + [0.5] * 8
    )
    assert diverged.row.status == "diverged" and diverged.row.extra_epoch_s == []


def test_a_one_epoch_cell_gets_a_steady_time_from_its_extra_epochs():
    m, _, _ = _timed_cell([9.0] + [1.0] * 20, epochs=1, budget=100.0)
    assert m.row.first_epoch_s == 9.0
    assert m.row.epoch_s == 1.0  # not the warm-up epoch
    assert len(m.row.extra_epoch_s) == 6  # 6 samples: the fewest with a 95% interval


def test_a_diverging_extra_epoch_stops_the_timing_not_the_cell():
    losses = [0.5] * 4 + [float("inf")] + [0.5] * 10
    m, _, _ = _timed_cell([5.0, 1.0, 1.3, 0.8] + [1.0] * 11, epochs=4, budget=100.0,
                          losses=losses)  # fmt: skip
    assert m.row.status == "ok" and m.row.extra_epoch_s == [1.0]


def test_extra_timing_epochs_keep_inside_the_cells_timeout():
    # 1 s epochs, a budget of 100 s, but 3.5 s left before the cell's --timeout: an epoch
    # may use at most half of what is left, so two run (3.5 -> 2.5 -> 1.5 s left)
    clock = FakeClock()
    durations = [5.0] + [1.0, 2.0] * 40  # never precise
    model = ScriptedModel(clock, durations, [0.5] * 81, correct=[0.5] * 81)
    training = measure.Training(
        model, _data(), epochs=3, batch_size=2, seed=0, loss="cce", flops_per_sample=60,
        timing_budget=100.0, clock=clock,
    )  # fmt: skip
    while not training.done:
        training.epoch()
    training.deadline = measure.Deadline(3.5, clock=clock)  # what is left after the epochs
    m = training.measurement()
    assert m.row.extra_epoch_s == [1.0, 2.0]
