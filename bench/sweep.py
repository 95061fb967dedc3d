"""Sweeps: what to run. A sweep is one or more parts; a part is the Cartesian product of its
axes; a cell is one point of it, run once per repeat.

A sweep is built from a mapping (a preset, or the `[sweep]` table of a TOML file) with the
command line's values laid over it. Every name and number is checked here, before anything
runs, and a mistake raises UsageError naming the key, what was given and what is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from impls import (
    ACTIVATION_NAMES,
    DTYPE_NAMES,
    LOSS_NAMES,
    OPTIMIZER_NAMES,
    OUTPUT_NAMES,
    SCHEMES,
    MLPSpec,
)
from impls.init import BIAS_MODES
from impls.spec import unknown_name_message

from .errors import UsageError
from .schema import AXES, SETTINGS

FULL_BATCH = 0  # batch_sizes entry meaning "the whole training set" ("full" in flags/TOML)
ORDERS = ("shuffle", "fixed")
DEVICES = ("cpu", "cuda")

# key -> (axis: list-valued?, parser of one item, default)
# Axis defaults that depend on the machine (backends, threads) are filled in by build_sweep.


def _name_parser(kind, valid):
    def parse(value):
        if not isinstance(value, str) or value not in valid:
            raise ValueError(unknown_name_message(kind, value, valid))
        return value

    return parse


def _backend_name(value):
    from impls.registry import check_backend_name  # registered, entry point or module:Class

    return check_backend_name(value)


def _dataset_name(value):
    """The dataset's canonical name, so that spellings of the same data are one dataset."""
    from .datasets import canonical_dataset_name

    if not isinstance(value, str):
        raise ValueError(f"dataset names are strings, got {value!r}")
    return canonical_dataset_name(value)  # raises ValueError for unknown names / parameters


def _data_dir(value):
    """An explicit data folder, stored absolute so a resume from elsewhere finds it."""
    from .datasets import resolve_data_dir

    return resolve_data_dir(value)


def _positive_int(what):
    def parse(value):
        given = value
        if isinstance(value, str) and value.strip().lstrip("+").isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {given!r}")
        return int(value)

    return parse


def _batch_size(value):
    if isinstance(value, str) and value.strip().lower() == "full":
        return FULL_BATCH
    return _positive_int("batch size")(value)


def _number(what, lo=None, lo_open=False, hi=None, hi_open=False):
    def parse(value):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{what} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{what} must be a number, got {value!r}")
        value = float(value)
        bad = not math.isfinite(value)
        if lo is not None:
            bad |= value <= lo if lo_open else value < lo
        if hi is not None:
            bad |= value >= hi if hi_open else value > hi
        if bad:
            lo_text = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
            hi_text = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
            rule = " and ".join(t for t in (lo_text, hi_text) if t)
            raise ValueError(f"{what} must be a finite number {rule}, got {value!r}")
        return value

    return parse


def parse_hidden(value) -> tuple[int, ...]:
    """Hidden layer widths from "256x128", "100", "none", 100 or [256, 128]."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", ""):
            return ()
        items = text.split("x")
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise ValueError(f"hidden layers are written like 100 or 256x128, got {value!r}")
    try:
        return tuple(_positive_int("hidden layer width")(item) for item in items)
    except ValueError:
        raise ValueError(
            f"hidden layers are written as positive widths like 100 or 256x128 "
            f"(or 'none'), got {value!r}"
        ) from None


def hidden_text(hidden: tuple[int, ...]) -> str:
    return "x".join(str(h) for h in hidden) if hidden else "none"


def _non_negative_int(what):
    def parse(value):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
        return int(value)

    return parse


def _optional(parse):
    def wrapped(value):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return parse(value)

    return wrapped


def _preprocess(value):
    from .datasets import PREPROCESSING

    return _name_parser("preprocessing", PREPROCESSING)(value)


def _init_scheme(value):
    return _name_parser("init scheme", SCHEMES)(value)


@dataclass(frozen=True)
class Key:
    name: str
    axis: bool  # list-valued: one of the sweep's axes
    parse: object
    default: object
    help: str


PART_KEYS = {
    k.name: k
    for k in (
        Key("datasets", True, _dataset_name, ("digits",), "datasets"),
        Key("backends", True, _backend_name, None, "backends"),
        Key("batch_sizes", True, _batch_size, (1, 32, 256), "batch sizes ('full' = whole set)"),
        Key("losses", True, _name_parser("loss", LOSS_NAMES), ("cce", "bce", "mse"), "losses"),
        Key(
            "optimizers",
            True,
            _name_parser("optimizer", OPTIMIZER_NAMES),
            ("sgd",),
            "optimisers",
        ),
        Key("lrs", True, _number("lr", lo=0, lo_open=True), (0.1,), "learning rates"),
        Key("hidden", True, parse_hidden, ((100,),), "hidden layers, e.g. 100 or 256x128"),
        Key(
            "activations",
            True,
            _name_parser("activation", ACTIVATION_NAMES),
            ("relu",),
            "hidden activations",
        ),
        Key("epochs", True, _positive_int("epochs"), (10,), "epochs"),
        Key("dtypes", True, _name_parser("dtype", DTYPE_NAMES), ("float32",), "float types"),
        Key("threads", True, _positive_int("threads"), None, "threads per library"),
        Key("name", False, str, "main", "name of the sweep part"),
        Key("repeats", False, _positive_int("repeats"), 1, "runs of each cell, seeds seed+r"),
        Key(
            "output",
            False,
            _optional(_name_parser("output activation", OUTPUT_NAMES)),
            None,
            "output activation (default: softmax for cce and mse, sigmoid for bce)",
        ),
        Key(
            "momentum",
            False,
            _number("momentum", lo=0, hi=1, hi_open=True),
            0.0,
            "SGD momentum",
        ),
        Key("weight_decay", False, _number("weight decay", lo=0), 0.0, "L2 weight decay λ"),
        Key(
            "preprocess",
            False,
            _optional(_preprocess),
            None,
            "preprocessing (default: the dataset's)",
        ),
        Key("init", False, _init_scheme, "glorot_uniform", "initialisation scheme"),
        Key(
            "init_scale",
            False,
            _optional(_number("init scale", lo=0, lo_open=True)),
            None,
            "±limit of 'uniform', std of 'normal'",
        ),
        Key(
            "init_bias",
            False,
            _name_parser("bias init", BIAS_MODES),
            "zeros",
            "biases: zeros or like_weights",
        ),
        Key(
            "order",
            False,
            _name_parser("order", ORDERS),
            "shuffle",
            "sample order per epoch",
        ),
        Key("eval_every", False, _positive_int("eval_every"), 1, "evaluate every N epochs"),
        Key("seed", False, _non_negative_int("seed"), 0, "base seed"),
        Key("split_seed", False, _non_negative_int("split_seed"), 42, "train/test split seed"),
        Key(
            "test_size",
            False,
            _number("test size", lo=0, lo_open=True, hi=1, hi_open=True),
            0.2,
            "test fraction where the dataset has no fixed split",
        ),
        Key("device", False, _name_parser("device", DEVICES), "cpu", "torch's device"),
    )
}


RUN_KEYS = {
    k.name: k
    for k in (
        Key(
            "target_acc",
            False,
            _optional(_number("target accuracy", lo=0, lo_open=True, hi=1)),
            None,
            "test accuracy for time-to-target",
        ),
        Key(
            "timeout",
            False,
            _optional(_number("timeout", lo=0, lo_open=True)),
            None,
            "seconds per cell before it is stopped",
        ),
        Key("data_dir", False, _optional(_data_dir), None, "folder with dataset files"),
        Key("title", False, str, "sweep", "name of the run (its folder name)"),
    )
}


@dataclass(frozen=True)
class Part:
    """One Cartesian product of axes with its fixed settings; fields as in PART_KEYS."""

    name: str
    datasets: tuple
    backends: tuple
    batch_sizes: tuple
    losses: tuple
    optimizers: tuple
    lrs: tuple
    hidden: tuple
    activations: tuple
    epochs: tuple
    dtypes: tuple
    threads: tuple
    repeats: int
    output: str | None
    momentum: float
    weight_decay: float
    preprocess: str | None
    init: str
    init_scale: float | None
    init_bias: str
    order: str
    eval_every: int
    seed: int
    split_seed: int
    test_size: float
    device: str


@dataclass(frozen=True)
class Sweep:
    title: str
    parts: tuple[Part, ...]
    target_acc: float | None = None
    timeout: float | None = None
    data_dir: str | None = None

    def to_dict(self) -> dict:
        """A plain mapping that build_sweep turns back into this sweep (stored in env.json)."""
        run = {k: getattr(self, k) for k in RUN_KEYS}
        parts = []
        for part in self.parts:
            d = dataclasses.asdict(part)
            d["hidden"] = [hidden_text(h) for h in part.hidden]
            d["batch_sizes"] = ["full" if b == FULL_BATCH else b for b in part.batch_sizes]
            parts.append({k: list(v) if isinstance(v, tuple) else v for k, v in d.items()})
        return {**run, "parts": parts}


@dataclass(frozen=True)
class Cell:
    """One point of a part, for one repeat: everything a worker needs to run it."""

    part: str
    dataset: str
    backend: str
    loss: str
    optimizer: str
    lr: float
    batch_size: int  # FULL_BATCH until resolved against the dataset's size
    hidden: tuple[int, ...]
    activation: str
    epochs: int
    dtype: str
    threads: int
    output: str
    momentum: float
    weight_decay: float
    preprocess: str | None
    init: str
    init_scale: float | None
    init_bias: str
    order: str
    eval_every: int
    device: str
    split_seed: int
    test_size: float
    repeat: int
    seed: int

    @property
    def init_text(self) -> str:
        text = self.init if self.init_scale is None else f"{self.init}:{self.init_scale:g}"
        return text + (",bias" if self.init_bias == "like_weights" else "")

    @property
    def cell_id(self) -> str:
        """Short hash of everything but the repeat: the same cell in every repeat and resume."""
        keys = dataclasses.asdict(self)
        del keys["repeat"], keys["seed"]
        blob = json.dumps(keys, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        """A short human name: dataset · backend · loss · optimizer · b32 · r0."""
        bits = [self.dataset, self.backend, self.loss, self.optimizer, f"b{self.batch_size}"]
        return " · ".join(bits) + f" · r{self.repeat}"

    def spec(self, n_features: int, n_classes: int) -> MLPSpec:
        return MLPSpec(
            layer_sizes=(n_features, *self.hidden, n_classes),
            activation=self.activation,
            output=self.output,
            loss=self.loss,
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum if self.optimizer == "sgd" else 0.0,
            weight_decay=self.weight_decay,
            dtype=self.dtype,
            device=self.device if self.backend == "torch" else "cpu",
        )

    def row(self) -> dict:
        """This cell's key and setting columns, as results.csv and curves.csv hold them."""
        values = {
            "cell_id": self.cell_id,
            "hidden": hidden_text(self.hidden),
            "init": self.init_text,
            "preprocess": self.preprocess or "",
        }
        for name in ("part", *AXES, *SETTINGS, "repeat", "seed"):
            values.setdefault(name, getattr(self, name))
        return values


def _suggest_key(key, valid) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_value(key: Key, value, where: str):
    try:
        if key.axis:
            # A list is a list of alternatives: in TOML, hidden = [100, "256x128"] is two
            # networks; one network with two hidden layers is written "256x128".
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            if not items:
                raise ValueError(f"{key.name} is empty: give at least one value")
            parsed = tuple(key.parse(item) for item in items)
            return tuple(dict.fromkeys(parsed))  # drop repeats, keep order
        return key.parse(value)
    except ValueError as exc:
        raise UsageError(f"{where}{key.name}: {exc}") from None
    except TypeError:
        raise UsageError(f"{where}{key.name}: cannot use {value!r} here") from None


def check_keys(mapping: Mapping, valid: Mapping, where: str) -> None:
    for name in mapping:
        if name not in valid:
            raise UsageError(
                f"{where}unknown key {name!r}{_suggest_key(name, list(valid))}; "
                f"valid keys: {', '.join(valid)}"
            )


def default_backends() -> tuple[str, ...]:
    from impls import available_backends
    from impls.registry import DEFAULT_BACKENDS  # the peers run by name or the peers preset

    usable = tuple(
        name
        for name, reason in available_backends().items()
        if reason is None and name in DEFAULT_BACKENDS
    )
    return usable or ("numpy-vec",)


def default_threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def build_sweep(
    base: Mapping | None = None, overrides: Mapping | None = None, where: str = ""
) -> Sweep:
    """A checked Sweep from `base` (preset or config mapping) with `overrides` laid over it.

    `base` holds run keys, part keys shared by every part, and optionally "parts": a list of
    mappings of part keys (each may set "name"). `overrides` (the command line) replace the
    same keys in every part. Raises UsageError for anything invalid.
    """
    base = dict(base or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    parts_in = base.pop("parts", None) or [{}]
    if not isinstance(parts_in, list) or not all(isinstance(p, Mapping) for p in parts_in):
        raise UsageError(f"{where}parts must be a list of tables")
    valid = {**PART_KEYS, **RUN_KEYS}
    check_keys(base, valid, where)
    check_keys(overrides, valid, "")
    run = {}
    for name, key in RUN_KEYS.items():
        if name in overrides:
            run[name] = _parse_value(key, overrides[name], "")
        elif name in base:
            run[name] = _parse_value(key, base[name], where)
        else:
            run[name] = key.default
    machine_defaults = {"backends": default_backends(), "threads": (default_threads(),)}
    parts = []
    for i, part_in in enumerate(parts_in):
        part_where = f"{where}parts[{i}]." if len(parts_in) > 1 else where
        check_keys(part_in, PART_KEYS, part_where)
        values = {}
        for name, key in PART_KEYS.items():
            if name in overrides:
                values[name] = _parse_value(key, overrides[name], "")
            elif name in part_in:
                values[name] = _parse_value(key, part_in[name], part_where)
            elif name in base:
                values[name] = _parse_value(key, base[name], where)
            elif name in machine_defaults:
                values[name] = machine_defaults[name]
            else:
                values[name] = key.default if not key.axis else tuple(key.default)
        parts.append(Part(**values))
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}part names must differ, got {names}")
    sweep = Sweep(parts=tuple(parts), **run)
    check_combinations(sweep)
    return sweep


def expand(sweep: Sweep) -> list[Cell]:
    """Every cell x repeat of the sweep, in run order.

    Repeats vary slowest and backends fastest, so the backends of one configuration run
    one after another and slow drifts of the machine touch them all alike.
    """
    cells = []
    for part in sweep.parts:
        for repeat in range(part.repeats):
            for combo in itertools.product(
                part.datasets,
                part.losses,
                part.optimizers,
                part.lrs,
                part.hidden,
                part.activations,
                part.epochs,
                part.dtypes,
                part.threads,
                part.batch_sizes,
                part.backends,
            ):
                ds, loss, opt, lr, hidden, act, epochs, dtype, threads, bs, backend = combo
                cells.append(
                    Cell(
                        part=part.name,
                        dataset=ds,
                        backend=backend,
                        loss=loss,
                        optimizer=opt,
                        lr=lr,
                        batch_size=bs,
                        hidden=hidden,
                        activation=act,
                        epochs=epochs,
                        dtype=dtype,
                        threads=threads,
                        output=part.output or MLPSpec((2, 2), loss=loss).output,
                        momentum=part.momentum if opt == "sgd" else 0.0,
                        weight_decay=part.weight_decay,
                        preprocess=part.preprocess,
                        init=part.init,
                        init_scale=part.init_scale,
                        init_bias=part.init_bias,
                        order=part.order,
                        eval_every=part.eval_every,
                        device=part.device,
                        split_seed=part.split_seed,
                        test_size=part.test_size,
                        repeat=repeat,
                        seed=part.seed + repeat,
                    )
                )
    return cells


def check_combinations(sweep: Sweep) -> None:
    """Reject impossible combinations (e.g. bce with a softmax output) before anything runs."""
    for part in sweep.parts:
        where = f"part {part.name!r}: " if len(sweep.parts) > 1 else ""
        for loss, opt in itertools.product(part.losses, part.optimizers):
            try:
                MLPSpec(
                    (2, 2),
                    loss=loss,
                    output=part.output,
                    optimizer=opt,
                    momentum=part.momentum if opt == "sgd" else 0.0,
                    weight_decay=part.weight_decay,
                )
            except ValueError as exc:
                raise UsageError(f"{where}{exc}") from None
        if part.init_scale is not None and SCHEMES[part.init][1] is None:
            raise UsageError(f"{where}init scheme {part.init!r} takes no init_scale")
