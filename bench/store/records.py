"""The records of a run folder, declared once: a row of results.csv (`ResultRow`), a row of
curves.csv (`CurveRow`, whose measured part is the worker's `EpochRecord`) and the top-level
fields of env.json (`RunEnv`), with the values a row's status may take and the thresholds
that decide its `noisy` flag.

Every column is declared here once, with its type and meaning; bench.store.schema derives the
tables' column lists and types from these declarations, and the store writes only declared
fields. The tables' column order is the order of the fields below: the dataclasses are
composed from a few column groups, and a dataclass's fields run from its last base's to its
first base's, then its own.

The type of a field is the type of its column: `int`, `float` and `bool` columns are read back
as numbers and flags, every other column is text (dicts and lists are written as JSON). A
column left None is written empty (a measured epoch's own figures are always given).
"""

import math
from dataclasses import asdict, dataclass, field

# -- what a row says of its cell: noisy, and its status ---------------------------------------

# A cell is noisy when the interquartile range of its steady-state epoch times is more than
# 10% of their median; torch.utils.benchmark warns at the same 10% (and calls 25% gross).
# Why 10%: the differences this tool reports between backends start at about 1.1-1.2x, and a
# cell whose epoch times spread wider than that cannot tell such a difference from chance.
# Measured on a 2-core machine shared with other work (six runs at load average 11-13, other
# processes using 1.7-1.8 cores): cells with 1-50 ms epochs (numpy-vec, torch) spread 9-840%,
# numpy-loop's 90 ms epochs 4-22% (long epochs average the interruptions out), while the
# medians of those numpy-loop cells differed by up to 1.7x between the runs. So even 10% lets
# some disturbed cells pass: the machine's load is judged as well (bench.report.noise); a
# threshold of 25% would have passed every numpy-loop cell and 5 of the 12 torch cells of
# those runs.
NOISY_SPREAD = 0.10

# The matmul probe repeats one BLAS call (about 50 ms) on the same arrays; the same 10%
# applies, since the roofline divides by it. In the six busy runs above its spread was 4-17%,
# flagged in three: the probe's own spread alone does not show a busy machine reliably.
PROBE_NOISY_SPREAD = 0.10

# What became of a cell x repeat, the `status` of its row. A row is written only for these;
# a cell that did not run (the run was interrupted) has no row and runs on --resume.
STATUSES = (
    "ok",  # trained every epoch and was measured
    "diverged",  # its loss became NaN or inf: stopped at diverged_epoch
    "error",  # the backend raised, or its worker died or could not start (see `error`)
    "timeout",  # stopped after the sweep's --timeout
    "skipped",  # the backend cannot run it (NotImplementedError, a framework not installed)
)

# What env.json's `status` says of the run as a whole.
RUN_STATUSES = (
    "running",  # a process is running it (env.json's `owner`) or was killed while it did
    "complete",  # every cell has its row
    "interrupted",  # stopped early (Ctrl-C, SIGTERM, a lost scheduler): --resume finishes it
)


def _axis():
    """A sweep axis: a column that varies between the cells of a part."""
    return field(default=None, metadata={"axis": True})


def _setting():
    """A setting: fixed within a sweep part, recorded with every row."""
    return field(default=None, metadata={"setting": True})


def _measured():
    """A column the worker measures (bench.worker.measure.train_and_measure fills it)."""
    return field(default=None, metadata={"measured": True})


def _text():
    """A column read back as text whatever Python value is written into it."""
    return field(default=None, metadata={"text": True})


# -- the column groups ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CellColumns:
    """Which run and cell a row belongs to, and the cell's axes in the order they vary in
    its name."""

    run_id: str | None = None  # the run folder's name when it was created
    cell_id: str | None = None  # short hash of the part, axes and settings: stable on resume
    part: str | None = _setting()  # the name of the sweep part (presets may have several)
    dataset: str | None = _axis()
    backend: str | None = _axis()
    loss: str | None = _axis()
    optimizer: str | None = _axis()
    lr: float | None = _axis()
    batch_size: int | None = _axis()
    hidden: str | None = _axis()  # the hidden layers' widths, e.g. "64x32"
    activation: str | None = _axis()
    epochs: int | None = _axis()
    dtype: str | None = _axis()
    threads: int | None = _axis()
    device: str | None = _axis()  # where the cell computed: cpu, cuda:0, ...


@dataclass(frozen=True, kw_only=True)
class SettingColumns:
    """Settings fixed within one sweep part but recorded with every row."""

    output: str | None = _setting()
    momentum: float | None = _setting()
    weight_decay: float | None = _setting()
    preprocess: str | None = _setting()
    init: str | None = _setting()
    order: str | None = _setting()
    eval_every: int | None = _setting()
    # float32 matrix products on a GPU's TF32 tensor cores (off by default, for parity)
    tf32: bool | None = _setting()


@dataclass(frozen=True, kw_only=True)
class RepeatColumn:
    repeat: int | None = None  # which repeat of the cell (0, 1, ...): with cell_id, the row's key


@dataclass(frozen=True, kw_only=True)
class RoundColumn:
    # --interleave (bench.run.interleave): the round the epoch ran in, the backends of one
    # configuration each running one epoch per round; empty in a run that was not interleaved
    round: int | None = None


@dataclass(frozen=True, kw_only=True)
class EpochRecord:
    """One epoch of a cell as the worker measured it: the measured part of a curves.csv row.
    Losses and accuracies are NaN after the epochs the harness did not evaluate."""

    epoch: int  # 1-based
    epoch_s: float  # this epoch's training time
    elapsed_s: float  # training time of epochs 1..epoch
    epoch_loss: float  # what train_epoch returned: the mean of the batches' losses before updates
    train_loss: float = math.nan  # evaluated after the epoch by the harness
    test_loss: float = math.nan
    train_acc: float = math.nan
    test_acc: float = math.nan

    def as_row(self) -> dict:
        return asdict(self)


# -- the tables' rows -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CurveRow(EpochRecord, RoundColumn, RepeatColumn, CellColumns):
    """One row of curves.csv: one epoch of one cell x repeat. Its columns: CellColumns',
    RepeatColumn's, RoundColumn's, then EpochRecord's."""


@dataclass(frozen=True, kw_only=True)
class ResultRow(RepeatColumn, SettingColumns, CellColumns):
    """One row of results.csv: one cell x repeat. Its columns: CellColumns', SettingColumns',
    RepeatColumn's, then the fields below. Times are in seconds; NaN where a value does not
    exist. The `_measured()` fields are what bench.worker.measure returns for a cell."""

    seed: int | None = None
    session: int | None = None  # which start (0) or --resume (1..) ran it: env.json's sessions[i]
    host: str | None = None  # the machine it ran on (socket.gethostname())
    status: str | None = _measured()  # one of STATUSES ("ok" or "diverged" when measured)
    error: str | None = None  # what went wrong, in one line, when the status is not "ok"
    diverged_epoch: int | None = _measured()
    threads_effective: dict | None = None  # the thread counts each library reported inside
    # the worker (written as JSON)
    n_train: int | None = None
    n_test: int | None = None
    n_features: int | None = None
    n_classes: int | None = None
    n_params: int | None = None
    build_s: float | None = None  # building the model (framework graph construction)
    # placing the cell's data where the model computes (model.stage), once per cell; NaN when
    # the model has no stage
    stage_s: float | None = _measured()
    first_epoch_s: float | None = _measured()  # the first epoch: warm-up, tracing, compilation
    # steady state: median of epochs 2..E and the extra timing epochs (epoch 1 if alone)
    epoch_s: float | None = _measured()
    epoch_s_min: float | None = _measured()
    epoch_s_max: float | None = _measured()
    # (p75 - p25) / median of the steady epochs; NaN under 3 steady epochs
    epoch_s_spread: float | None = _measured()
    noisy: bool | None = _measured()  # epoch_s_spread above NOISY_SPREAD
    train_s: float | None = _measured()  # all epochs' training time
    samples_per_s: float | None = _measured()  # n_train / epoch_s
    # flops_per_sample * n_train / epoch_s / 1e9: the products the step computes (MLPSpec)
    gflops: float | None = _measured()
    # the FLOP count gflops used: per layer 2W forward and 2W weight gradient per sample, and 2W
    # input gradient for every layer but the first (impls.spec.MLPSpec.flops_per_sample)
    flops_per_sample: float | None = _measured()
    # gflops / the machine's measured matmul GFLOP/s for this dtype and threads (or device)
    roofline: float | None = None
    predict_s: float | None = _measured()  # predict_proba over the test set after training
    eval_s: float | None = _measured()  # the harness's evaluations after epochs (off the clock)
    # the whole cell in its worker: data, model, training, evaluation, predict
    cell_s: float | None = None
    # the worker's peak resident set during the cell (Linux VmHWM, reset at the cell's start:
    # framework and data included, earlier cells not); NaN elsewhere
    peak_host_mb: float | None = None
    # a GPU cell's peak device memory held by its allocator: torch's peak reserved memory,
    # CuPy's memory pool at its largest; NaN on the CPU and for JAX
    peak_device_mb: float | None = None
    epochs_run: int | None = _measured()
    # the last evaluation's figures
    train_loss: float | None = _measured()
    test_loss: float | None = _measured()
    train_acc: float | None = _measured()
    test_acc: float | None = _measured()
    best_test_acc: float | None = _measured()
    target_acc: float | None = None  # the sweep's target accuracy
    # cumulative training time at the first epoch reaching target_acc
    time_to_target_s: float | None = _measured()
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None
    # Dask runs (--scheduler, bench.cluster); empty in local runs:
    shared_host: bool | None = _text()  # its host ran more than one cell at a time
    lost_on: str | None = None  # hosts whose Dask worker died while running it, comma-separated
    # the extra timing epochs' times (a JSON list), run after the last evaluation until the
    # steady median was precise (bench.precision) or the sweep's timing_budget was spent; their
    # loss and accuracy are not evaluated, and they count among the steady epochs (epoch_s)
    extra_epoch_s: list | None = _measured()

    def as_row(self) -> dict:
        return asdict(self)


# -- env.json ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class RunEnv:
    """The top-level fields of env.json, one JSON object. Any field may be missing (a folder
    converted from pytest-benchmark has few); fields a folder holds that are not declared
    here (written by other versions) are kept as they are, never written anew."""

    # -- the run
    run_id: str | None = None  # the run folder's name when it was created
    name: str | None = None  # the sweep's title
    command: str | None = None  # the command line that created it (each resume's: sessions)
    sweep: dict | None = None  # the sweep as a mapping (Sweep.to_dict); never replaced
    cells: int | None = None  # how many cells x repeats the sweep holds
    threads: int | list | None = None  # the sweep's thread count, or the sorted list of them
    verify: dict | None = None  # `run --verify`'s record (bench.check.verify)
    # `bench replay`'s record: the parted configurations replayed in float64 (bench.run.replay)
    replay: dict | None = None
    # users' own backends of the sweep: name -> {"file", "class", "sha256" of the file}, as of
    # the latest session (bench.run.plugins; a resume refuses a changed file unless asked)
    plugins: dict | None = None
    devices: dict | None = None  # what each GPU library saw (bench.worker.devices), GPU sweeps
    # -- its state
    status: str | None = None  # one of RUN_STATUSES
    owner: dict | None = None  # {"pid", "host"} of the process that last wrote "running"
    started_at: str | None = None  # the first session's start, ISO 8601
    resumed_at: str | None = None  # the latest --resume's start; None when never resumed
    finished_at: str | None = None  # the latest session's end
    cells_not_run: int | None = None  # cells x repeats without a row when it last stopped
    # one entry per start and --resume (bench.run.session.Session): index, command, pid, host,
    # git_commit, started_at, finished_at, status, load {start, end, other_cpu_s, wall_s,
    # other_cores, busy}, matmul {threads: {dtype: probe}}, device_matmul, warnings,
    # cells_run, cells_not_run
    sessions: list | None = None
    time_accounting: dict | None = None  # where the last session's wall time went (seconds)
    # -- the machine and software (bench.worker.envinfo.collect), as of the latest session
    python: str | None = None
    machine: dict | None = None  # cpu, cores, memory_gib, platform
    versions: dict | None = None  # package -> version, for every framework and this tool
    keras_backend: str | None = None
    blas: str | None = None
    git_commit: str | None = None
    # -- measured
    # the first session's matmul medians at its fewest threads: {dtype: GFLOP/s}
    matmul_gflops: dict | None = None
    matmul_gflops_by_threads: dict | None = None  # {threads: {dtype: GFLOP/s}}, same session
    # "backend/tN" -> the thread counts each library reported inside that worker
    threads_effective: dict | None = None
    # -- Dask runs (bench.cluster)
    # host name -> its facts (cores, devices, ...) and matmul {session: {threads: {dtype: probe}}}
    hosts: dict | None = None
    schedulers: list | None = None  # one entry per session: {"session", "address", ...}
    # -- folders converted from pytest-benchmark JSON (bench.report.pbench)
    source: str | None = None  # "pytest-benchmark"
    converted_by: str | None = None  # the conversion's command line
