"""The sweep's keys, in one table: every axis and setting, how it is parsed, its default, its
help text and its command-line flags. The CLI flags (bench.cli) and the TOML keys are derived
from PART_KEYS and RUN_KEYS; `Part` and `Cell` (bench.sweep.build) are written out field by
field, and tests/test_sweep_table.py ties their fields to this table."""

from __future__ import annotations

from dataclasses import dataclass

from bench.sweep.values import (
    NOT_SET,
    ORDERS,
    TIMEOUT_MAX,
    name_parser,
    non_negative_int_parser,
    number_parser,
    optional_parser,
    parse_batch_size,
    parse_dataset,
    parse_device,
    parse_hidden,
    parse_init_scheme,
    parse_preprocess,
    path_parser,
    positive_int_parser,
    switch_parser,
    text_parser,
)
from impls import ACTIVATION_NAMES, DTYPE_NAMES, LOSS_NAMES, OPTIMIZER_NAMES, OUTPUT_NAMES
from impls.init import BIAS_MODES
from impls.registry import check_backend_name


@dataclass(frozen=True)
class Key:
    """One setting: its TOML key (and Part/Sweep field), how it is parsed, its default, its
    help text, its command-line flags, and for an axis the Cell field holding one value."""

    name: str
    axis: bool  # list-valued: one of the sweep's axes
    parse: object
    default: object  # NOT_SET: optional; None: the machine's (filled in by build_sweep)
    help: str
    flags: tuple[str, ...] | None = None  # None: --name-with-dashes; (): no flag
    cell: str | None = None  # axes: the Cell field (singular); settings: the same name
    switch: bool = False  # on or off: --name and --no-name on the command line

    @property
    def cli_flags(self) -> tuple[str, ...]:
        if self.flags is not None:
            return self.flags
        flag = "--" + self.name.replace("_", "-")
        if self.axis:  # --losses and --loss
            return (flag, "--" + self.cell.replace("_", "-"))
        if self.switch:  # --tf32 and --no-tf32
            return (flag, "--no-" + flag[2:])
        return (flag,)


def _axis(name, cell, parse, default, help, flags=None):
    return Key(name, True, parse, default, help, flags, cell)


def _setting(name, parse, default, help, flags=None, switch=False):
    return Key(name, False, parse, default, help, flags, name, switch)


PART_KEYS = {
    k.name: k
    for k in (
        _axis("datasets", "dataset", parse_dataset, ("digits",), "datasets"),
        # registered names, entry points or module:Class
        _axis("backends", "backend", check_backend_name, None, "backends"),
        _axis(
            "batch_sizes",
            "batch_size",
            parse_batch_size,
            (1, 32, 256),
            "batch sizes ('full' = whole set)",
        ),
        _axis("losses", "loss", name_parser("loss", LOSS_NAMES), ("cce", "bce", "mse"), "losses"),
        _axis(
            "optimizers",
            "optimizer",
            name_parser("optimizer", OPTIMIZER_NAMES),
            ("sgd",),
            "optimisers",
        ),
        _axis("lrs", "lr", number_parser("lr", lo=0, lo_open=True), (0.1,), "learning rates"),
        _axis(
            "hidden",
            "hidden",
            parse_hidden,
            ((100,),),
            "hidden layers, e.g. 100 or 256x128",
            flags=("--hidden",),
        ),
        _axis(
            "activations",
            "activation",
            name_parser("activation", ACTIVATION_NAMES),
            ("relu",),
            "hidden activations",
        ),
        _axis(
            "epochs", "epochs", positive_int_parser("epochs"), (10,), "epochs", flags=("--epochs",)
        ),
        _axis("dtypes", "dtype", name_parser("dtype", DTYPE_NAMES), ("float32",), "float types"),
        _axis(
            "threads",
            "threads",
            positive_int_parser("threads"),
            None,
            "threads per library",
            flags=("--threads",),
        ),
        _axis(
            "devices",
            "device",
            parse_device,
            ("cpu",),
            "devices: cpu, cuda, cuda:N; each backend runs on those it supports (numpy-* and "
            "keras: cpu; cupy: cuda; torch and jax: both)",
        ),
        _setting("name", text_parser("part name"), "main", "name of the sweep part", flags=()),
        _setting("repeats", positive_int_parser("repeats"), 1, "runs of each cell, seeds seed+r"),
        _setting(
            "output",
            optional_parser(name_parser("output activation", OUTPUT_NAMES)),
            NOT_SET,
            "output activation (default: softmax for cce and mse, sigmoid for bce)",
        ),
        _setting(
            "momentum", number_parser("momentum", lo=0, hi=1, hi_open=True), 0.0, "SGD momentum"
        ),
        _setting("weight_decay", number_parser("weight decay", lo=0), 0.0, "L2 weight decay λ"),
        _setting(
            "preprocess",
            optional_parser(parse_preprocess),
            NOT_SET,
            "preprocessing ('none' = raw values; default: the dataset's)",
        ),
        _setting("init", parse_init_scheme, "glorot_uniform", "initialisation scheme"),
        _setting(
            "init_scale",
            optional_parser(number_parser("init scale", lo=0, lo_open=True)),
            NOT_SET,
            "±limit of 'uniform', std of 'normal'",
        ),
        _setting(
            "init_bias",
            name_parser("bias init", BIAS_MODES),
            "zeros",
            "biases: zeros or like_weights",
        ),
        _setting("order", name_parser("order", ORDERS), "shuffle", "sample order per epoch"),
        _setting("eval_every", positive_int_parser("eval_every"), 1, "evaluate every N epochs"),
        _setting("seed", non_negative_int_parser("seed"), 0, "base seed"),
        _setting("split_seed", non_negative_int_parser("split_seed"), 42, "train/test split seed"),
        _setting(
            "test_size",
            number_parser("test size", lo=0, lo_open=True, hi=1, hi_open=True),
            0.2,
            "test fraction where the dataset has no fixed split",
        ),
        _setting(
            "tf32",
            switch_parser("tf32"),
            False,
            "float32 matrix products on TF32 tensor cores in GPU cells whose library supports "
            "it (torch, cupy, jax); off: full float32, as on the CPU",
            switch=True,
        ),
    )
}


# Seconds of extra timing epochs per cell (bench.worker.measure.Training.time_more): enough
# for a few dozen epochs of a few milliseconds, which is what such cells need to pin their
# median down; a cell of second-long epochs gets one or none.
TIMING_BUDGET_S = 2.0

RUN_KEYS = {
    k.name: k
    for k in (
        _setting(
            "target_acc",
            optional_parser(number_parser("target accuracy", lo=0, lo_open=True, hi=1)),
            NOT_SET,
            "test accuracy for time-to-target",
        ),
        _setting(
            "timeout",
            optional_parser(number_parser("timeout", lo=0, lo_open=True, hi=TIMEOUT_MAX)),
            NOT_SET,
            "seconds per cell before it is stopped",
        ),
        _setting(
            "interleave",
            switch_parser("interleave"),
            False,
            "train the backends of each configuration in turn, epoch by epoch, in randomised "
            "order within each round, so that a change in the machine's load reaches every "
            "backend alike (docs/interleave.md); this machine's workers only",
            switch=True,
        ),
        _setting(
            "timing_budget",
            number_parser("timing budget", lo=0),
            TIMING_BUDGET_S,
            "seconds of extra timing epochs each cell may take after its last evaluation, "
            "until its median epoch time is known to within a tenth (0: none; with "
            "--interleave the paired rounds are the samples and none are run)",
        ),
        _setting(
            "data_dir",
            optional_parser(path_parser("data_dir")),
            NOT_SET,
            "folder with dataset files",
        ),
        _setting(
            "title",
            text_parser("title"),
            "sweep",
            "name of the run (its folder name)",
            flags=("--name",),
        ),
    )
}
