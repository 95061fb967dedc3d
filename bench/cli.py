"""`python -m bench`: parses the command line and dispatches; nothing more.

Errors the user can act on are printed as one line (a traceback only with --debug). Exit
status: 0 done, 1 failed, 2 usage error, 130 interrupted (a run folder to --resume).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from .errors import BenchError, UsageError

# flag -> sweep key (list flags take comma-separated values)
LIST_FLAGS = {
    "datasets": ("--datasets", "--dataset"),
    "backends": ("--backends", "--backend"),
    "batch_sizes": ("--batch-sizes", "--batch-size"),
    "losses": ("--losses", "--loss"),
    "optimizers": ("--optimizers", "--optimizer"),
    "lrs": ("--lrs", "--lr"),
    "hidden": ("--hidden",),
    "activations": ("--activations", "--activation"),
    "epochs": ("--epochs",),
    "dtypes": ("--dtypes", "--dtype"),
    "threads": ("--threads",),
}
SCALAR_FLAGS = {
    "repeats": "--repeats",
    "output": "--output",
    "momentum": "--momentum",
    "weight_decay": "--weight-decay",
    "preprocess": "--preprocess",
    "init": "--init",
    "init_scale": "--init-scale",
    "init_bias": "--init-bias",
    "order": "--order",
    "eval_every": "--eval-every",
    "seed": "--seed",
    "split_seed": "--split-seed",
    "test_size": "--test-size",
    "device": "--device",
    "target_acc": "--target-acc",
    "timeout": "--timeout",
    "data_dir": "--data-dir",
    "title": "--name",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            import difflib

            flags = _all_flags(self)
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.6)
                if word.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise UsageError(message)


def _all_flags(parser) -> list[str]:
    flags = []
    for action in parser._actions:
        flags += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += _all_flags(sub)
    return flags


def _split_list(text: str, flag: str = "") -> list[str]:
    where = f"{flag}: " if flag else ""
    if not text.strip():
        raise UsageError(f"{where}the list is empty: give at least one value")
    items = [item.strip() for item in text.split(",")]
    if any(item == "" for item in items):
        raise UsageError(
            f"{where}empty item in the list {text!r}: write values separated by commas"
        )
    return items


def _add_run(sub):
    from .sweep import PART_KEYS, RUN_KEYS

    p = sub.add_parser(
        "run",
        help="run a sweep and write a run folder",
        description="Run a sweep: every combination of the given axes, each in its backend's "
        "worker process. With no flags: a quick sweep on digits over every installed "
        "backend, batch sizes 1, 32, 256, losses cce/bce/mse with SGD (lr 0.1/1.0/2.0), "
        "10 epochs.",
    )
    source = p.add_argument_group("what to run")
    source.add_argument("--preset", help="a named sweep (see `python -m bench list`)")
    source.add_argument("--config", metavar="FILE", help="a TOML file with a [sweep] table")
    source.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="finish an interrupted run folder (only its unfinished cells)",
    )
    axes = p.add_argument_group("axes (comma-separated lists; override the preset/config)")
    for key, flags in LIST_FLAGS.items():
        axes.add_argument(*flags, dest=key, metavar="LIST", help=PART_KEYS[key].help)
    settings = p.add_argument_group("settings (override the preset/config)")
    for key, flag in SCALAR_FLAGS.items():
        spec = PART_KEYS.get(key) or RUN_KEYS[key]
        settings.add_argument(flag, dest=key, metavar="VALUE", help=spec.help)
    where = p.add_argument_group("where to run")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="send the cells to a Dask cluster: a scheduler address (tcp://HOST:8786), or "
        "local:N for N local Dask worker processes; needs mlp-bench[dask]. See the README's "
        "'Running across machines'",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out", default="results", metavar="DIR", help="folder for run folders (default: results)"
    )
    out.add_argument(
        "--quiet", action="store_true", help="no progress display; print only the run folder"
    )
    return p


def _overrides(args) -> dict:
    overrides = {}
    for key in LIST_FLAGS:
        value = getattr(args, key)
        if value is not None:
            overrides[key] = _split_list(value, LIST_FLAGS[key][0])
    for key in SCALAR_FLAGS:
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    return overrides


def _load_config(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"config file is a folder: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    if set(data) - {"sweep"}:
        extra = ", ".join(sorted(set(data) - {"sweep"}))
        raise UsageError(f"{path}: unknown table(s) {extra}; the settings go under [sweep]")
    if "sweep" not in data:
        raise UsageError(f"{path} has no [sweep] table")
    return data["sweep"]


def _cmd_run(args) -> int:
    from .presets import DEFAULT, preset_mapping
    from .runner import INTERRUPTED_EXIT, execute, sweep_of_run
    from .sweep import build_sweep

    overrides = _overrides(args)
    if args.resume:
        if overrides or args.preset or args.config:
            raise UsageError(
                "--resume continues the run's own sweep; drop the other flags "
                "(" + ", ".join(sorted(overrides) or ["--preset/--config"]) + ")"
            )
        sweep = sweep_of_run(args.resume)
    else:
        if args.preset and args.config:
            raise UsageError("give --preset or --config, not both")
        if args.preset:
            base, where = preset_mapping(args.preset), f"preset {args.preset}: "
        elif args.config:
            base, where = _load_config(args.config), f"{args.config}: "
        elif {"losses", "lrs"} & overrides.keys():
            base, where = {"title": "sweep"}, ""  # the default's per-loss lrs no longer apply
        else:
            base, where = DEFAULT, ""
        sweep = build_sweep(base, overrides, where=where)
    quiet = args.quiet
    note = (lambda text: None) if quiet else None
    run_dir, status = execute(
        sweep,
        out=args.out,
        resume=args.resume,
        progress=not quiet,
        command=" ".join(["python -m bench", *args.argv]),
        note=note,
        scheduler=args.scheduler,
    )
    if not quiet:
        print(f"summary: {run_dir / 'summary.md'}", file=sys.stderr)
    print(run_dir)
    return INTERRUPTED_EXIT if status == "interrupted" else 0


def _cmd_report(args) -> int:
    if args.pytest_benchmark:
        if args.run_dir:
            raise UsageError("give a RUN_DIR or --pytest-benchmark FILE, not both")
        from .pbench import convert

        paths = convert(args.pytest_benchmark, args.out)
    else:
        if not args.run_dir:
            raise UsageError("give the RUN_DIR to report on (or --pytest-benchmark FILE)")
        from .report import write_report

        paths = write_report(args.run_dir)
    for path in paths:
        print(path)
    return 0


def _cmd_list(args) -> int:
    from .listing import render_listing

    print(render_listing(data_dir=args.data_dir))
    return 0


def _cmd_verify(args) -> int:
    if args.backends:  # a conformance report per named backend (bench/conformance.py)
        from impls.registry import check_backend_name

        from .conformance import run_in_subprocess

        names = _split_list(args.backends, "--backends")
        for name in names:
            try:
                check_backend_name(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return run_in_subprocess(names)
    from .verify import run_verify

    return run_verify(threads=args.threads)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench",
        description="mlp-bench: hand-written NumPy MLPs next to Keras and PyTorch.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_run(sub).set_defaults(func=_cmd_run)
    rep = sub.add_parser(
        "report",
        help="re-render summary.md and plots from a run folder, or tables from "
        "pytest-benchmark JSON",
    )
    rep.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    rep.add_argument("--pytest-benchmark", metavar="FILE",
                     help="pytest-benchmark JSON (--benchmark-json) to turn into tables")
    rep.add_argument("--out", metavar="DIR",
                     help="with --pytest-benchmark: folder for the tables "
                     "(default: FILE's name + -report)")
    rep.set_defaults(func=_cmd_report)
    lst = sub.add_parser("list", help="datasets, backends, losses, optimisers and presets")
    lst.add_argument("--data-dir", help="also look for dataset files here")
    lst.set_defaults(func=_cmd_list)
    ver = sub.add_parser("verify", help="check that the installed backends compute the same")
    ver.add_argument("--threads", type=int, default=None, help="threads per library")
    ver.add_argument(
        "--backends",
        metavar="LIST",
        help="instead: check these backends (e.g. your own, module:Class or file.py:Class) "
        "against numpy-vec step by step and say where each first departs",
    )
    ver.set_defaults(func=_cmd_verify)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(argv)
        return args.func(args)
    except BenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one line, the traceback with --debug
        if debug:
            traceback.print_exc()
            return 1
        print(
            f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
