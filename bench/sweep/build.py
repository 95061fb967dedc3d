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
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench import datasets as _datasets
from bench.errors import UsageError
from bench.store.schema import AXES, SETTINGS
from bench.sweep.curves import curve_eval_every
from bench.sweep.keys import PART_KEYS, RUN_KEYS, TIMING_BUDGET_S, Key
from bench.sweep.values import (
    FULL_BATCH,
    NOT_SET,
    SEED_MAX,
    NotSet,
    hidden_text,
    limit_text,
    parse_integer,
)
from impls import SCHEMES, MLPSpec, available_backends
from impls.registry import DEFAULT_BACKENDS, backend_devices
from impls.spec import device_kind


@dataclass(frozen=True)
class Part:
    """One Cartesian product of axes with its fixed settings: one field per key of PART_KEYS,
    in its order (tests/test_sweep_table.py ties the two together).

    Axes are tuples of parsed values; an optional setting nobody gave is NOT_SET."""

    # axes
    datasets: tuple[str, ...]
    backends: tuple[str, ...]
    batch_sizes: tuple[int, ...]  # FULL_BATCH: the whole training set
    losses: tuple[str, ...]
    optimizers: tuple[str, ...]
    lrs: tuple[float, ...]
    hidden: tuple[tuple[int, ...], ...]
    activations: tuple[str, ...]
    epochs: tuple[int, ...]
    dtypes: tuple[str, ...]
    threads: tuple[int, ...]
    devices: tuple[str, ...]
    # settings
    name: str
    repeats: int
    output: str | NotSet
    momentum: float
    weight_decay: float
    preprocess: str | NotSet
    init: str
    init_scale: float | NotSet
    init_bias: str
    order: str
    eval_every: int
    seed: int
    split_seed: int
    test_size: float
    tf32: bool


@dataclass(frozen=True)
class Sweep:
    title: str
    parts: tuple
    target_acc: float | None = None
    timeout: float | None = None
    interleave: bool = False
    timing_budget: float = TIMING_BUDGET_S
    data_dir: str | None = None

    def to_dict(self) -> dict:
        """A plain mapping that build_sweep turns back into this sweep (stored in env.json).

        Settings that were not set are left out: absent means not set."""
        run = {k: getattr(self, k) for k in RUN_KEYS if getattr(self, k) is not None}
        parts = []
        for part in self.parts:
            d = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
            d["hidden"] = [hidden_text(h) for h in part.hidden]
            d["batch_sizes"] = ["full" if b == FULL_BATCH else b for b in part.batch_sizes]
            parts.append(
                {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in d.items()
                    if v is not NOT_SET
                }
            )
        return {**run, "parts": parts}


@dataclass(frozen=True)
class Cell:
    """One point of a part, for one repeat: everything a worker needs to run it.

    Its fields are the part's name, one value of each axis of PART_KEYS (the key's `cell`
    name), the part's settings but its name, repeats and seed, then the repeat and its seed
    (seed + repeat); tests/test_sweep_table.py ties them to the key table. The cell_id hashes
    every field but the last two. Every setting is concrete here: preprocess is what the
    dataset gets ("none" = raw values), output the activation used, init_scale None for the
    scheme's own; batch_size is FULL_BATCH until resolved against the dataset's size."""

    part: str
    # one value of each axis
    dataset: str
    backend: str
    batch_size: int
    loss: str
    optimizer: str
    lr: float
    hidden: tuple[int, ...]
    activation: str
    epochs: int
    dtype: str
    threads: int
    device: str
    # the part's settings, made concrete
    output: str
    momentum: float
    weight_decay: float
    preprocess: str
    init: str
    init_scale: float | None
    init_bias: str
    order: str
    eval_every: int
    split_seed: int
    test_size: float
    tf32: bool
    # the repeat
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
        if not keys["tf32"]:  # added later: cells without it keep their ids (folders resume)
            del keys["tf32"]
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
            device=self.device,
            tf32=self.tf32,
        )

    def row(self) -> dict:
        """This cell's key and setting columns, as results.csv and curves.csv hold them."""
        values = {
            "cell_id": self.cell_id,
            "hidden": hidden_text(self.hidden),
            "init": self.init_text,
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
            # values are normalised by their parser ("0500" -> 500): equal ones run once
            return tuple(dict.fromkeys(parsed))
        return key.parse(value)
    except ValueError as exc:
        raise UsageError(f"{where}{key.name}: {exc}") from None
    except (TypeError, AttributeError):
        raise UsageError(f"{where}{key.name}: cannot use {value!r} here") from None


def check_keys(mapping: Mapping, valid: Mapping, where: str) -> None:
    for name in mapping:
        if name not in valid:
            raise UsageError(
                f"{where}unknown key {name!r}{_suggest_key(name, list(valid))}; "
                f"valid keys: {', '.join(valid)}"
            )


def default_backends(devices=("cpu",)) -> tuple[str, ...]:
    """The installed backends of DEFAULT_BACKENDS that run on one of `devices`, and with a GPU
    among them the hand-written network's GPU backend (cupy) where it is installed. The peers
    run by name or with the peers preset."""
    wanted = DEFAULT_BACKENDS + (("cupy",) if any(d != "cpu" for d in devices) else ())
    usable = tuple(
        name
        for name, reason in available_backends().items()
        if reason is None and name in wanted and any(runs_on(name, d) for d in devices)
    )
    return usable or ("numpy-vec",)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def build_sweep(
    base: Mapping | None = None,
    overrides: Mapping | None = None,
    where: str = "",
    note: Callable[[str], None] | None = None,
) -> Sweep:
    """A checked Sweep from `base` (preset or config mapping) with `overrides` laid over it.

    `base` holds run keys, part keys shared by every part, and optionally "parts": a list of
    mappings of part keys (each may set "name"). `overrides` (the command line) replace the
    same keys in every part. Raises UsageError for anything invalid. Epochs given on the
    command line without eval_every bring a part's eval_every down to keep its learning
    curve (curve_eval_every), told to `note` (stderr by default).
    """
    if base is not None and not isinstance(base, Mapping):
        raise UsageError(f"{where}the sweep must be a table of settings, got {base!r}")
    base_in = base
    base = _renamed(dict(base or {}))
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    parts_in = base.pop("parts", None)
    if parts_in is None:
        parts_in = [{}]
    if isinstance(parts_in, list):
        parts_in = [_renamed(dict(p)) if isinstance(p, Mapping) else p for p in parts_in]
    if not isinstance(parts_in, list) or not all(isinstance(p, Mapping) for p in parts_in):
        raise UsageError(f"{where}parts must be a list of tables ([[sweep.parts]] in TOML)")
    if not parts_in:
        raise UsageError(f"{where}parts is empty: give at least one [[sweep.parts]] table")
    valid = {**PART_KEYS, **RUN_KEYS}
    check_keys(base, valid, where)
    check_keys(overrides, valid, "")
    run = {}
    for name, key in RUN_KEYS.items():
        if name in overrides:
            value = _parse_value(key, overrides[name], "")
        elif name in base:
            value = _parse_value(key, base[name], where)
        else:
            value = key.default
        run[name] = None if value is NOT_SET else value
    machine_defaults = {"threads": (default_threads(),)}
    parts = []
    for i, part_in in enumerate(parts_in):
        part_where = f"{where}parts[{i}]." if "parts" in (base_in or {}) else where
        check_keys(part_in, PART_KEYS, part_where)
        values = {}
        for name, key in PART_KEYS.items():
            if name in overrides:
                values[name] = _parse_value(key, overrides[name], "")
            elif name in part_in:
                values[name] = _parse_value(key, part_in[name], part_where)
            elif name in base:
                values[name] = _parse_value(key, base[name], where)
            elif name == "backends":
                values[name] = None  # below: the installed ones that run on the devices
            elif name in machine_defaults:
                values[name] = machine_defaults[name]
            else:
                values[name] = key.default if not key.axis else tuple(key.default)
        if values["backends"] is None:
            values["backends"] = default_backends(values["devices"])
        if "epochs" in overrides and "eval_every" not in overrides:
            values["eval_every"] = curve_eval_every(
                values["eval_every"], values["epochs"], values["name"], note
            )
        if values["seed"] + values["repeats"] - 1 > SEED_MAX:
            at = "" if {"seed", "repeats"} & overrides.keys() else part_where
            raise UsageError(
                f"{at}seed: seed + repeats - 1 must be at most {limit_text(SEED_MAX)}, "
                f"got {values['seed']} + {values['repeats']} - 1"
            )
        parts.append(Part(**values))
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}part names must differ, got {names}")
    sweep = Sweep(parts=tuple(parts), **run)
    check_combinations(sweep, where)
    return sweep


# Keys an earlier version wrote (run folders' env.json, config files) -> today's key.
RENAMED_KEYS = {"device": "devices"}  # one device per part became the devices axis


def _renamed(mapping: dict) -> dict:
    for old, new in RENAMED_KEYS.items():
        if old in mapping and new in mapping:
            raise UsageError(f"{old} and {new} are one setting ({new} replaced {old}): give {new}")
        if old in mapping:
            mapping[new] = mapping.pop(old)
    return mapping


def stored_sweep(stored, where: str) -> Sweep:
    """The sweep a run folder stored in env.json, checked as strictly as a new one.

    A folder's sweep is never replaced: a missing or broken one is an error, never the
    default sweep."""
    hint = "; a run folder's sweep is never replaced: start a new run instead"
    if not isinstance(stored, Mapping) or not isinstance(stored.get("parts"), list):
        raise UsageError(f"{where}holds no sweep to resume (sweep = {_short(stored)}){hint}")
    try:
        return build_sweep(stored, where=where + "sweep.")
    except UsageError as exc:
        raise UsageError(f"{exc} (the stored sweep no longer validates){hint}") from None


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def expand(sweep: Sweep) -> list[Cell]:
    """Every cell x repeat of the sweep, in run order, with every setting made concrete.

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
                part.devices,
                part.batch_sizes,
                part.backends,
            ):
                ds, loss, opt, lr, hidden, act, epochs, dtype, threads, device, bs, backend = combo
                if not runs_on(backend, device):
                    continue  # each backend on the devices it supports (check_backend_devices)
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
                        output=_given(part.output, MLPSpec((2, 2), loss=loss).output),
                        momentum=part.momentum if opt == "sgd" else 0.0,
                        weight_decay=part.weight_decay,
                        preprocess=_given(part.preprocess, default_preprocess(ds)),
                        init=part.init,
                        init_scale=_given(part.init_scale, None),
                        init_bias=part.init_bias,
                        order=part.order,
                        eval_every=part.eval_every,
                        device=device,
                        # concrete: on only where it applies (float32 products on a GPU)
                        tf32=bool(part.tf32 and device != "cpu" and dtype == "float32"),
                        split_seed=part.split_seed,
                        test_size=part.test_size,
                        repeat=repeat,
                        seed=part.seed + repeat,
                    )
                )
    return cells


def runs_on(backend: str, device: str) -> bool:
    """Whether `backend` computes on `device` ("cpu", "cuda:0", ...)."""
    return device_kind(device) in backend_devices(backend)


def check_backend_devices(part, where: str) -> None:
    """Every backend of the part must run on at least one of its devices."""
    for backend in part.backends:
        if not any(runs_on(backend, d) for d in part.devices):
            kinds = backend_devices(backend)
            raise UsageError(
                f"{where}backend {backend!r} runs on {' or '.join(kinds)} only, and devices "
                f"gives {', '.join(part.devices)}; add {kinds[0]} to --devices (each backend "
                "runs on the devices it supports)"
            )


def _given(value, default):
    return default if value is NOT_SET else value


def default_preprocess(dataset: str) -> str:
    """The preprocessing dataset `dataset` gets when none is given."""
    base, _ = _datasets.parse_dataset_name(dataset)
    return _datasets.DATASETS[base].default_preprocess


def merge_duplicates(cells) -> tuple[list, list[str]]:
    """Cells that became the same once resolved (batch size 'full' and the training set's
    size, say) run once: the first is kept. Returns the cells and a note per merge."""
    seen, kept, notes = {}, [], []
    for cell in cells:
        key = (cell.cell_id, cell.repeat)
        if key in seen:
            first = seen[key]
            if cell.repeat == 0:
                notes.append(
                    f"note: {cell.label().rsplit(' · ', 1)[0]} is given twice in part "
                    f"{cell.part!r} ('full' is {cell.dataset}'s {first.batch_size} training "
                    "samples); it runs once"
                )
            continue
        seen[key] = cell
        kept.append(cell)
    return kept, notes


def check_combinations(sweep: Sweep, source: str = "") -> None:
    """Reject impossible combinations (e.g. bce with a softmax output) before anything runs;
    `source` names where the sweep came from (a config file, a preset)."""
    for part in sweep.parts:
        where = source + (f"part {part.name!r}: " if len(sweep.parts) > 1 else "")
        for loss, opt in itertools.product(part.losses, part.optimizers):
            try:
                MLPSpec(
                    (2, 2),
                    loss=loss,
                    output=_given(part.output, None),
                    optimizer=opt,
                    momentum=part.momentum if opt == "sgd" else 0.0,
                    weight_decay=part.weight_decay,
                )
            except ValueError as exc:
                raise UsageError(f"{where}{exc}") from None
        check_backend_devices(part, where)
        if part.init_scale is not NOT_SET and SCHEMES[part.init][1] is None:
            raise UsageError(f"{where}init scheme {part.init!r} takes no init_scale")


def integer_setting(what: str, value) -> int:
    """A positive integer setting parsed and bounded as in a sweep (e.g. verify's threads)."""
    return parse_integer(value, what, 1)
