"""Measurement: the only module that reads a clock.

Training is timed one `train_epoch` call at a time; evaluation, sample orders and everything
else stay off the clock. The first epoch (warm-up, tracing, compilation) is reported apart
from the steady state, the median of the later epochs, with the steady epochs' relative
spread so that a noisy figure is visible as such. Every function takes its clock as an
argument so the statistics can be tested exactly with a fake one; the rest of the harness
times things with a `Stopwatch` from here rather than reading a clock itself.
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.precision import is_precise
from bench.store.records import NOISY_SPREAD, EpochRecord, ResultRow
from bench.store.schema import MEASURED_COLUMNS
from bench.worker.metrics import evaluate
from impls.base import MLPModel

Clock = Callable[[], float]
perf_clock: Clock = time.perf_counter


def now_iso() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def timed(fn, *args, clock: Clock | None = None, **kwargs):
    """(fn(*args, **kwargs), seconds it took)."""
    watch = Stopwatch(clock)
    result = fn(*args, **kwargs)
    return result, watch.elapsed()


class Stopwatch:
    """Seconds since it was started (or restarted), read from `clock` (perf_counter).

    Also a context manager: `with Stopwatch() as watch: ...` leaves the time in
    `watch.seconds`.
    """

    def __init__(self, clock: Clock | None = None):
        self._clock = clock if clock is not None else perf_clock
        self._start = self._clock()
        self.seconds: float | None = None

    def restart(self) -> None:
        self._start = self._clock()

    def elapsed(self) -> float:
        return self._clock() - self._start

    def __enter__(self) -> Stopwatch:
        self.restart()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = self.elapsed()


class Deadline:
    """A point in time `seconds` from now (None: never), for waiting with a timeout."""

    def __init__(self, seconds: float | None, clock: Clock = time.monotonic):
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self._end is not None and self._clock() >= self._end


@dataclass(frozen=True)
class Measurement:
    """What one cell measured: its row with the measured columns filled (MEASURED_COLUMNS,
    declared by bench.store.records.ResultRow; every other column None), and its epochs. Times
    in seconds; NaN where a value does not exist."""

    row: ResultRow
    epochs: tuple[EpochRecord, ...]

    def as_row(self) -> dict:
        """The measured columns, by name."""
        return {c: getattr(self.row, c) for c in MEASURED_COLUMNS}


def epoch_statistics(epoch_times, extra=()) -> tuple[float, float, float, float]:
    """(first, steady-state median, steady min, steady max) of per-epoch times.

    The steady state is epochs 2..E and the `extra` timing epochs; with a single epoch and
    no extra ones it is that epoch.
    """
    times = list(epoch_times)
    if not times:
        return (math.nan,) * 4
    steady = times[1:] + list(extra) or times[:1]
    return times[0], statistics.median(steady), min(steady), max(steady)


def spread(values) -> float:
    """Relative spread of `values`: (p75 - p25) / median, NaN with fewer than 3 values.

    Quartiles by linear interpolation between order statistics (NumPy's default,
    statistics.quantiles' "inclusive" method), so 1, 2, 3, 4, 5 gives (4 - 2) / 3.
    """
    values = [float(v) for v in values]
    if len(values) < 3:
        return math.nan
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / median if median > 0 else math.nan


def steady_spread(epoch_times, extra=()) -> float:
    """`spread` of the steady-state epochs (2..E and the `extra` timing epochs)."""
    return spread(list(epoch_times)[1:] + list(extra))


def is_noisy(value: float, threshold: float = NOISY_SPREAD) -> bool:
    """A spread above `threshold`; an unknown (NaN) spread is not called noisy."""
    return bool(math.isfinite(value) and value > threshold)


def sample_orders(seed: int, n: int, order: str):
    """The per-epoch sample orders of one cell: the same for every backend.

    "shuffle": a fresh permutation each epoch from numpy.random.default_rng(seed);
    "fixed": 0..n-1 every epoch.
    """
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(n) if order == "shuffle" else np.arange(n)


# The most extra timing epochs one cell runs (Training.time_more): a median of a few hundred
# epochs is known to about a tenth of their spread.
MAX_EXTRA_EPOCHS = 300


class Training:
    """One cell's training, measured an epoch at a time: the one training and measuring path.

    `data` has X_train, Y_train, X_test, Y_test. A model with `stage` receives the training
    and test sets once, here, before the first epoch, where it computes (timed apart:
    `stage_s`); each `epoch()` then gives it the staged data and that epoch's order. Only
    `model.train_epoch` is on the clock. After every `eval_every`-th epoch (and the last) the
    harness evaluates loss and accuracy from `model.predict_proba` (on the staged data, so on
    the model's device), off the clock; a train_epoch that returns None has its epoch's loss
    evaluated so after every epoch (the training loss after the epoch's last update). A
    non-finite loss stops the cell as diverged. When
    `done`, `measurement()` times the prediction and sums the cell up.

    `train_and_measure` runs the epochs back to back; bench.run.interleave runs the epochs of
    several backends' cells in turn, each in its own worker, through the same object.
    """

    def __init__(
        self,
        model,
        data,
        *,
        epochs: int,
        batch_size: int,
        seed: int,
        loss: str,
        flops_per_sample: float,
        order: str = "shuffle",
        eval_every: int = 1,
        target_acc: float | None = None,
        evaluate_train: bool = True,
        timing_budget: float = 0.0,
        deadline: Deadline | None = None,
        clock: Clock = perf_clock,
    ):
        self.model, self.data = model, data
        self.epochs, self.batch_size, self.loss = epochs, batch_size, loss
        self.flops, self.eval_every, self.target_acc = flops_per_sample, eval_every, target_acc
        self.evaluate_train, self.clock = evaluate_train, clock
        self.timing_budget = timing_budget
        self.deadline = deadline  # the cell's --timeout, which extra timing never runs into
        self.extra: list[float] = []  # the extra timing epochs' times (`time_more`)
        self.n = data.X_train.shape[0]
        self.staged, self.stage_s = timed(_stage, model, data, clock=clock)
        if len(self.staged.train) == 2:  # no stage method: nothing was staged
            self.stage_s = math.nan
        self.orders = sample_orders(seed, self.n, order)
        self.records: list[EpochRecord] = []
        self.elapsed = 0.0
        self.eval_s = 0.0
        self.diverged_epoch: int | None = None
        self.last_eval: dict = {}

    @property
    def done(self) -> bool:
        """Every epoch ran, or the loss diverged."""
        return self.diverged_epoch is not None or len(self.records) >= self.epochs

    def epoch(self) -> EpochRecord:
        """Train and evaluate the next epoch; its record."""
        if self.done:
            raise RuntimeError("the cell's training is over: no epoch is left to run")
        epoch = len(self.records) + 1
        model, clock = self.model, self.clock
        epoch_loss, epoch_s = self._train_one_epoch()
        self.elapsed += epoch_s
        metrics = {}
        by_harness = epoch_loss is None  # train_epoch left its loss to the harness (off the clock)
        if (
            by_harness
            or epoch % self.eval_every == 0
            or epoch == self.epochs
            or not math.isfinite(epoch_loss)
        ):
            metrics, seconds = timed(
                _evaluate_both,
                model,
                self.data,
                self.staged,
                self.loss,
                self.evaluate_train or by_harness,
                clock=clock,
            )
            self.eval_s += seconds
        if by_harness:  # the loss after the epoch's last update, on the whole training set
            epoch_loss = metrics["train_loss"]
        record = EpochRecord(
            epoch=epoch,
            epoch_s=epoch_s,
            elapsed_s=self.elapsed,
            epoch_loss=float(epoch_loss),
            **metrics,
        )
        self.records.append(record)
        if not math.isfinite(epoch_loss) or not all(
            math.isfinite(v) for k, v in metrics.items() if k.endswith("loss")
        ):
            self.diverged_epoch = epoch
        elif metrics:
            self.last_eval = metrics
        return record

    def _train_one_epoch(self) -> tuple[float | None, float]:
        """(the loss train_epoch returned, its time) of one epoch on the next sample order."""
        perm = next(self.orders)
        # Start each timed epoch with the collector's young generations empty, so that an
        # automatic collection is unlikely inside it. Only the young ones: a full collection
        # would scan every object of the cell so far (its epoch records included), a cost
        # that grows with the epoch count (seconds per cell at 20000 full-batch epochs).
        gc.collect(1)
        return timed(
            self.model.train_epoch, *self.staged.train, self.batch_size, perm, clock=self.clock
        )

    def time_more(self) -> None:
        """Extra timing epochs, after the last evaluation, until the steady median is precise
        (bench.precision.is_precise: its 95% interval within 10%) or the next epoch would
        take the time spent on them past `timing_budget` seconds, or use more than half the time
        left before the cell's --timeout (`deadline`); MAX_EXTRA_EPOCHS at most.

        Epochs of a few milliseconds move by the system's own interruptions, so ten of them
        rarely pin their median down; a few dozen more cost a fraction of a second. A cell of
        second-long epochs gets one or none: its median is what its own epochs say. The extra
        epochs go on training (the next sample orders, as a longer cell would), but nothing
        after them is evaluated: the cell's figures are those of its configured epochs."""
        if self.diverged_epoch is not None or self.timing_budget <= 0 or not self.records:
            return
        steady = [r.epoch_s for r in self.records[1:]]
        spent = 0.0
        while len(self.extra) < MAX_EXTRA_EPOCHS and not is_precise(steady + self.extra):
            expected = statistics.median(steady + self.extra or [self.records[0].epoch_s])
            if spent + expected > self.timing_budget or self._too_close(expected):
                return
            loss, seconds = self._train_one_epoch()
            spent += seconds
            self.extra.append(seconds)
            if loss is not None and not math.isfinite(loss):
                return  # past the cell's epochs the loss diverged: no more time is sampled

    def _too_close(self, expected: float) -> bool:
        """Whether an epoch of `expected` seconds would use more than half the time left
        before the cell's deadline (the rest is for its prediction and its result)."""
        left = self.deadline.remaining() if self.deadline is not None else None
        return left is not None and expected > left / 2

    def measurement(self) -> Measurement:
        """The cell's row and epochs, its prediction timed (unless it diverged), after its
        extra timing epochs (`time_more`)."""
        self.time_more()
        records, last_eval = self.records, self.last_eval
        first, steady, lo, hi = epoch_statistics((r.epoch_s for r in records), self.extra)
        epoch_spread = steady_spread((r.epoch_s for r in records), self.extra)
        predict_s = math.nan
        if self.diverged_epoch is None:
            _, predict_s = timed(self.model.predict_proba, self.staged.X_test, clock=self.clock)
        accs = [r.test_acc for r in records if math.isfinite(r.test_acc)]
        target = self.target_acc
        reached = [r.elapsed_s for r in records if target is not None and r.test_acc >= target]
        rate = self.n / steady if steady > 0 else math.nan
        row = ResultRow(
            status="ok" if self.diverged_epoch is None else "diverged",
            diverged_epoch=self.diverged_epoch,
            stage_s=self.stage_s,
            first_epoch_s=first,
            epoch_s=steady,
            epoch_s_min=lo,
            epoch_s_max=hi,
            epoch_s_spread=epoch_spread,
            noisy=is_noisy(epoch_spread),
            train_s=self.elapsed,
            extra_epoch_s=list(self.extra),
            samples_per_s=rate,
            gflops=self.flops * rate / 1e9,
            flops_per_sample=self.flops,
            predict_s=predict_s,
            eval_s=self.eval_s,
            epochs_run=len(records),
            train_loss=last_eval.get("train_loss", math.nan),
            test_loss=last_eval.get("test_loss", math.nan),
            train_acc=last_eval.get("train_acc", math.nan),
            test_acc=last_eval.get("test_acc", math.nan),
            best_test_acc=max(accs) if accs else math.nan,
            time_to_target_s=reached[0] if reached else math.nan,
        )
        return Measurement(row, tuple(records))


def train_and_measure(
    model, data, *, on_epoch: Callable[[EpochRecord], None] | None = None, **settings
) -> Measurement:
    """Train `model` on `data` for all its epochs back to back and measure it (`Training`,
    whose keyword arguments `settings` are); `on_epoch(record)` sees each epoch as it ends."""
    training = Training(model, data, **settings)
    while not training.done:
        record = training.epoch()
        if on_epoch is not None:
            on_epoch(record)
    return training.measurement()


@dataclass(frozen=True)
class _Staged:
    """What the epochs and evaluations pass the model: `train` the leading arguments of
    train_epoch, X_train / X_test what predict_proba gets."""

    train: tuple
    X_train: object
    X_test: object


def _stage(model, data) -> _Staged:
    """The cell's data as the model receives it. A model of this project (`impls.MLPModel`)
    stages both sets and predicts from them; a user's class with a `stage` method stages the
    training set (its predict_proba gets NumPy arrays, as the protocol says); without `stage`
    every call gets the NumPy arrays."""
    if isinstance(model, MLPModel):
        train, test = model.stage(data.X_train, data.Y_train), model.stage(data.X_test, data.Y_test)
        return _Staged((train,), train, test)
    if callable(getattr(model, "stage", None)):
        return _Staged((model.stage(data.X_train, data.Y_train),), data.X_train, data.X_test)
    return _Staged((data.X_train, data.Y_train), data.X_train, data.X_test)


def _evaluate_both(model, data, staged: _Staged, loss: str, evaluate_train: bool) -> dict:
    test_loss, test_acc = evaluate(model.predict_proba(staged.X_test), data.Y_test, loss)
    metrics = {"test_loss": test_loss, "test_acc": test_acc}
    if evaluate_train:
        train_loss, train_acc = evaluate(model.predict_proba(staged.X_train), data.Y_train, loss)
        metrics.update(train_loss=train_loss, train_acc=train_acc)
    return metrics
