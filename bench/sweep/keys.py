"""The sweep's keys, in one table: every axis and setting, how it is parsed, its default, its
help text and its command-line flags. `Part`, `Cell`, the CLI flags (bench.cli) and the TOML
keys are all derived from PART_KEYS and RUN_KEYS."""

from __future__ import annotations

from dataclasses import dataclass

from bench.sweep.values import (
    NOT_SET,
    ORDERS,
    TIMEOUT_MAX,
    _batch_size,
    _dataset_name,
    _device,
    _init_scheme,
    _name_parser,
    _name_text,
    _non_negative_int,
    _number,
    _optional,
    _path_text,
    _positive_int,
    _preprocess,
    _switch,
    parse_hidden,
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
        _axis("datasets", "dataset", _dataset_name, ("digits",), "datasets"),
        # registered names, entry points or module:Class
        _axis("backends", "backend", check_backend_name, None, "backends"),
        _axis(
            "batch_sizes",
            "batch_size",
            _batch_size,
            (1, 32, 256),
            "batch sizes ('full' = whole set)",
        ),
        _axis("losses", "loss", _name_parser("loss", LOSS_NAMES), ("cce", "bce", "mse"), "losses"),
        _axis(
            "optimizers",
            "optimizer",
            _name_parser("optimizer", OPTIMIZER_NAMES),
            ("sgd",),
            "optimisers",
        ),
        _axis("lrs", "lr", _number("lr", lo=0, lo_open=True), (0.1,), "learning rates"),
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
            _name_parser("activation", ACTIVATION_NAMES),
            ("relu",),
            "hidden activations",
        ),
        _axis("epochs", "epochs", _positive_int("epochs"), (10,), "epochs", flags=("--epochs",)),
        _axis("dtypes", "dtype", _name_parser("dtype", DTYPE_NAMES), ("float32",), "float types"),
        _axis(
            "threads",
            "threads",
            _positive_int("threads"),
            None,
            "threads per library",
            flags=("--threads",),
        ),
        _axis(
            "devices",
            "device",
            _device,
            ("cpu",),
            "devices: cpu, cuda, cuda:N; each backend runs on those it supports (numpy-* and "
            "keras: cpu; cupy: cuda; torch and jax: both)",
        ),
        _setting("name", _name_text("part name"), "main", "name of the sweep part", flags=()),
        _setting("repeats", _positive_int("repeats"), 1, "runs of each cell, seeds seed+r"),
        _setting(
            "output",
            _optional(_name_parser("output activation", OUTPUT_NAMES)),
            NOT_SET,
            "output activation (default: softmax for cce and mse, sigmoid for bce)",
        ),
        _setting("momentum", _number("momentum", lo=0, hi=1, hi_open=True), 0.0, "SGD momentum"),
        _setting("weight_decay", _number("weight decay", lo=0), 0.0, "L2 weight decay λ"),
        _setting(
            "preprocess",
            _optional(_preprocess),
            NOT_SET,
            "preprocessing ('none' = raw values; default: the dataset's)",
        ),
        _setting("init", _init_scheme, "glorot_uniform", "initialisation scheme"),
        _setting(
            "init_scale",
            _optional(_number("init scale", lo=0, lo_open=True)),
            NOT_SET,
            "±limit of 'uniform', std of 'normal'",
        ),
        _setting(
            "init_bias",
            _name_parser("bias init", BIAS_MODES),
            "zeros",
            "biases: zeros or like_weights",
        ),
        _setting("order", _name_parser("order", ORDERS), "shuffle", "sample order per epoch"),
        _setting("eval_every", _positive_int("eval_every"), 1, "evaluate every N epochs"),
        _setting("seed", _non_negative_int("seed"), 0, "base seed"),
        _setting("split_seed", _non_negative_int("split_seed"), 42, "train/test split seed"),
        _setting(
            "test_size",
            _number("test size", lo=0, lo_open=True, hi=1, hi_open=True),
            0.2,
            "test fraction where the dataset has no fixed split",
        ),
        _setting(
            "tf32",
            _switch("tf32"),
            False,
            "float32 matrix products on TF32 tensor cores in GPU cells whose library supports "
            "it (torch, cupy, jax); off: full float32, as on the CPU",
            switch=True,
        ),
    )
}


RUN_KEYS = {
    k.name: k
    for k in (
        _setting(
            "target_acc",
            _optional(_number("target accuracy", lo=0, lo_open=True, hi=1)),
            NOT_SET,
            "test accuracy for time-to-target",
        ),
        _setting(
            "timeout",
            _optional(_number("timeout", lo=0, lo_open=True, hi=TIMEOUT_MAX)),
            NOT_SET,
            "seconds per cell before it is stopped",
        ),
        _setting(
            "data_dir", _optional(_path_text("data_dir")), NOT_SET, "folder with dataset files"
        ),
        _setting(
            "title",
            _name_text("title"),
            "sweep",
            "name of the run (its folder name)",
            flags=("--name",),
        ),
    )
}
