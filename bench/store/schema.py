"""Column names of the run folder's tables: the one place that defines them.

results.csv holds one row per cell x repeat; curves.csv one row per cell x repeat x epoch.
Both are long format: every row carries the keys of its cell, so wide tables are derived
with pandas. Files of a run folder:

    env.json      machine, versions, threads, command line, sweep, start/end, status,
                  sessions (each start and resume: command, load, matmul probe)
    results.csv   RESULT_COLUMNS
    curves.csv    CURVE_COLUMNS
    summary.md    rendered from the CSVs by bench.report.write
    plots/*.png   rendered from the CSVs by bench.report.plots
    logs/         one traceback file per failed cell
"""

from __future__ import annotations

# The axes of a sweep, in the order they vary in a cell's name.
AXES = (
    "dataset",
    "backend",
    "loss",
    "optimizer",
    "lr",
    "batch_size",
    "hidden",
    "activation",
    "epochs",
    "dtype",
    "threads",
    "device",  # where the cell computed: cpu, cuda:0, ...
)

# Settings that are fixed within one sweep part but recorded with every row.
SETTINGS = (
    "part",
    "output",
    "momentum",
    "weight_decay",
    "preprocess",
    "init",
    "order",
    "eval_every",
    "tf32",  # float32 matrix products on a GPU's TF32 tensor cores (off by default, for parity)
)

STATUSES = ("ok", "diverged", "error", "timeout", "skipped")

RESULT_COLUMNS = (
    "run_id",
    "cell_id",  # short hash of the part, axes and settings: stable across resumes
    *SETTINGS[:1],  # part: the name of the sweep part (presets may have several)
    *AXES,
    *SETTINGS[1:],
    "repeat",
    "seed",
    "session",  # which start (0) or --resume (1..) of the run ran it: env.json's sessions[i]
    "host",  # the machine it ran on (socket.gethostname())
    "status",
    "error",
    "diverged_epoch",
    "threads_effective",  # JSON: the thread counts each library reported inside the worker
    "n_train",
    "n_test",
    "n_features",
    "n_classes",
    "n_params",
    "build_s",  # building the model (framework graph construction), not training
    "stage_s",  # placing the cell's data where the model computes (model.stage), once per cell
    "first_epoch_s",  # the first epoch: warm-up, tracing, compilation included
    "epoch_s",  # steady state: median of epochs 2..E (the first epoch when E == 1)
    "epoch_s_min",
    "epoch_s_max",
    "epoch_s_spread",  # (p75 - p25) / median of epochs 2..E; NaN under 3 steady epochs
    "noisy",  # epoch_s_spread above bench.report.noise.NOISY_SPREAD
    "train_s",  # all epochs' training time
    "samples_per_s",  # n_train / epoch_s
    "gflops",  # 6 * weights * n_train / epoch_s / 1e9
    "roofline",  # gflops / the machine's measured matmul GFLOP/s for this dtype and threads
    "predict_s",  # predict_proba over the test set after training
    "eval_s",  # the harness's evaluations after epochs, off the training clock
    "cell_s",  # the whole cell in its worker: data, model, training, evaluation, predict
    "peak_host_mb",  # the worker's peak resident set during the cell (Linux VmHWM, reset
    # at the cell's start: framework and data included, earlier cells not); NaN elsewhere
    "peak_device_mb",  # a GPU cell's peak device memory held by its allocator: torch's peak
    # reserved memory, CuPy's memory pool at its largest; NaN on the CPU and for JAX
    "epochs_run",
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "best_test_acc",
    "target_acc",
    "time_to_target_s",  # cumulative training time at the first epoch reaching target_acc
    "started_at",
    "finished_at",
    # Dask runs (--scheduler, bench.cluster.executor); empty in local runs:
    "shared_host",  # its host ran more than one cell at a time (several bench slots)
    "lost_on",  # hosts whose Dask worker died while running it before it ran to the end
)

CURVE_COLUMNS = (
    "run_id",
    "cell_id",
    "part",
    *AXES,
    "repeat",
    "epoch",  # 1-based
    "epoch_s",  # this epoch's training time
    "elapsed_s",  # training time of epochs 1..epoch
    "epoch_loss",  # what train_epoch returned: the mean of the batches' losses before updates
    "train_loss",  # evaluated after the epoch by the harness (NaN when not evaluated)
    "test_loss",
    "train_acc",
    "test_acc",
)

# Columns that identify a cell x repeat: a finished row with these values is not run again.
KEY_COLUMNS = ("cell_id", "repeat")

# The type of every column of both tables that is not text. The files hold text; readers
# (bench.report.tables) turn "int" columns into nullable Int64, "float" into float64 and "bool" into
# nullable boolean, with empty fields missing. Columns a table may not have yet (written by
# newer versions) are typed here too, so a folder that has them reads them right.
COLUMN_TYPES = {
    **dict.fromkeys(
        (
            "batch_size",
            "epochs",
            "threads",
            "eval_every",
            "repeat",
            "seed",
            "diverged_epoch",
            "n_train",
            "n_test",
            "n_features",
            "n_classes",
            "n_params",
            "epochs_run",
            "epoch",
            "session",  # which start (0) or resume (1, 2, ...) of the run wrote the row
        ),
        "int",
    ),
    **dict.fromkeys(
        (
            "lr",
            "momentum",
            "weight_decay",
            "build_s",
            "first_epoch_s",
            "epoch_s",
            "epoch_s_min",
            "epoch_s_max",
            "epoch_s_spread",  # (p75 - p25) / median of the steady-state epoch times
            "train_s",
            "samples_per_s",
            "gflops",
            "roofline",
            "predict_s",
            "eval_s",
            "cell_s",
            "train_loss",
            "test_loss",
            "train_acc",
            "test_acc",
            "best_test_acc",
            "target_acc",
            "time_to_target_s",
            "elapsed_s",
            "epoch_loss",
            "peak_host_mb",
            "peak_device_mb",
            "stage_s",
        ),
        "float",
    ),
    "noisy": "bool",  # epoch_s_spread above bench.report.noise's threshold
    "tf32": "bool",
}
INT_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "int")
FLOAT_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "float")
BOOL_COLUMNS = frozenset(c for c, t in COLUMN_TYPES.items() if t == "bool")
