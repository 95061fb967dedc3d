"""`python -m bench`: parses the command line and dispatches; nothing more.

Errors the user can act on are printed as one line (a traceback only with --debug). Exit
status: 0 done, 1 failed, 2 usage error, 130 interrupted (a run folder to --resume).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
from types import SimpleNamespace

from bench.errors import BenchError, UsageError, require_readable_file

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bench.sweep.build import build_sweep, integer_setting
from bench.sweep.keys import PART_KEYS, RUN_KEYS
from bench.sweep.presets import default_base

# The settings the command line takes: every key of the sweep's table that has a flag.
SETTING_KEYS = {**PART_KEYS, **RUN_KEYS}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("unrecognized arguments:"):
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


def split_list(text: str, flag: str = "", key: str = "") -> list[str]:
    """Comma-separated values; in dataset lists a comma followed by `key=value` continues the
    parameters of the dataset before it: "synthetic:n=500,d=4,digits" is two datasets."""
    where = f"{flag}: " if flag else ""
    if not text.strip():
        raise UsageError(f"{where}the list is empty: give at least one value")
    items = []
    for piece in (item.strip() for item in text.split(",")):
        name, eq, _ = piece.partition("=")
        if key == "datasets" and items and eq and ":" not in name and ":" in items[-1]:
            items[-1] += "," + piece
        else:
            items.append(piece)
    if any(item == "" for item in items):
        raise UsageError(
            f"{where}empty item in the list {text!r}: write values separated by commas"
        )
    return items


def _path(what: str):
    """An argparse type for a path: an empty one is a usage error, not the current folder."""
    return _given(what, "a path")


def _given(what: str, kind: str = "one"):
    """An argparse type for a value that must not be empty (empty would mean "not given")."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"the {what} is empty: give {kind}")
        return text

    return parse


def _threads(text: str) -> int:
    try:
        return integer_setting("threads", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run(sub):
    p = sub.add_parser(
        "run",
        help="run a sweep and write a run folder",
        description="Run a sweep: every combination of the given axes, each in its backend's "
        "worker process. With no flags: a quick sweep on digits over every installed "
        "backend, batch sizes 1, 32, 256, losses cce/bce/mse with SGD (lr 0.1/1.0/2.0), "
        "10 epochs.",
    )
    source = p.add_argument_group("what to run")
    source.add_argument(
        "--preset", type=_given("preset name"), help="a named sweep (see `python -m bench list`)"
    )
    source.add_argument(
        "--config",
        metavar="FILE",
        type=_path("config file"),
        help="a TOML file with a [sweep] table",
    )
    source.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=_path("run folder"),
        help="finish an interrupted run folder (only its unfinished cells)",
    )
    axes = p.add_argument_group("axes (comma-separated lists; override the preset/config)")
    settings = p.add_argument_group("settings (override the preset/config)")
    for key in SETTING_KEYS.values():
        if not key.cli_flags:
            continue
        group, metavar = (axes, "LIST") if key.axis else (settings, "VALUE")
        if key.switch:  # --tf32 / --no-tf32
            group.add_argument(
                key.cli_flags[0],
                dest=key.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=key.help,
            )
            continue
        kind = _path("data folder") if key.name == "data_dir" else None
        group.add_argument(*key.cli_flags, dest=key.name, metavar=metavar, type=kind, help=key.help)
    where = p.add_argument_group("where to run")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=_given("scheduler address"),
        help="send the cells to a Dask cluster: a scheduler address (tls://HOST:8786 with the "
        "--tls-* files, or tcp://HOST:8786 on a network you trust), or local:N for N local Dask "
        "worker processes; needs mlp-bench[dask]. See the README's 'Running across machines'",
    )
    tls = {
        "--tls-ca-file": "with --scheduler tls://HOST:PORT (or local:N): the CA certificate "
        "(PEM) that signed the scheduler's certificate. Without the --tls-* options, a tls:// "
        "scheduler's credentials come from Dask's configuration (distributed.comm.tls.*)",
        "--tls-cert": "this client's certificate (PEM), signed by that CA",
        "--tls-key": "its private key (PEM), unless it is in the --tls-cert file",
    }
    for flag, text in tls.items():
        where.add_argument(flag, metavar="FILE", type=_path(f"{flag} file"), help=text)
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        type=_path("results folder (--out)"),
        help="folder for run folders (default: results)",
    )
    out.add_argument(
        "--quiet", action="store_true", help="no progress display; print only the run folder"
    )
    out.add_argument(
        "--verify",
        action="store_true",
        help="first check that the sweep's backends compute the same (as `bench verify`) and "
        "store the worst differences in env.json",
    )
    return p


def sweep_overrides(args) -> dict:
    overrides = {}
    for key in SETTING_KEYS.values():
        value = getattr(args, key.name, None)
        if value is not None:
            overrides[key.name] = (
                split_list(value, key.cli_flags[0], key.name) if key.axis else value
            )
    return overrides


def load_config(path: str) -> dict:
    """The [sweep] table of a TOML file; every problem is a UsageError naming the file."""
    require_readable_file("config file", path)
    try:
        with open(path, "rb") as f:
            data = tomllib.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a TOML file: byte {exc.start} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{path} is not usable: its tables or arrays nest too deep") from None
    if set(data) - {"sweep"}:
        extra = ", ".join(sorted(set(data) - {"sweep"}))
        raise UsageError(f"{path}: unknown table(s) {extra}; the settings go under [sweep]")
    if "sweep" not in data:
        raise UsageError(f"{path} has no [sweep] table")
    if not isinstance(data["sweep"], dict):
        raise UsageError(f"{path}: sweep must be a table ([sweep]), got {data['sweep']!r}")
    return data["sweep"]


def _cmd_run(args) -> int:
    from bench.run.runner import INTERRUPTED_EXIT, execute, sweep_of_run
    from bench.sweep.presets import preset_mapping

    overrides = sweep_overrides(args)
    tls = {"ca_file": args.tls_ca_file, "cert": args.tls_cert, "key": args.tls_key}
    if args.scheduler is None and any(tls.values()):
        raise UsageError(
            "the --tls-* options are for a Dask scheduler: add --scheduler tls://HOST:PORT "
            "(or local:N), or drop them"
        )
    if args.resume is not None:
        if overrides or args.preset or args.config:
            raise UsageError(
                "--resume continues the run's own sweep; drop the other flags "
                "(" + ", ".join(sorted(overrides) or ["--preset/--config"]) + ")"
            )
        sweep = sweep_of_run(args.resume)
    else:
        if args.preset is not None and args.config is not None:
            raise UsageError("give --preset or --config, not both")
        if args.preset is not None:
            base, where = preset_mapping(args.preset), f"preset {args.preset}: "
        elif args.config is not None:
            base, where = load_config(args.config), f"{args.config}: "
        else:
            base, where = default_base(overrides), ""
        sweep = build_sweep(base, overrides, where=where)
    quiet = args.quiet
    note = (lambda text: None) if quiet else None
    before = _stamp(args.resume, "summary.md")
    env_extra = {}
    if args.verify:
        from bench.check.verify import verify_backends
        from bench.sweep.build import expand

        cells = expand(sweep)
        env_extra["verify"] = verify_backends(
            backends=dict.fromkeys(c.backend for c in cells),
            threads=min(c.threads for c in cells),
            out=None if quiet else sys.stderr,
            devices=tuple(dict.fromkeys(c.device for c in cells)),
        )
    run_dir, status = execute(
        sweep,
        out=args.out,
        resume=args.resume,
        progress=not quiet,
        command=" ".join(["python -m bench", *args.argv]),
        note=note,
        scheduler=args.scheduler,
        tls=tls,
        env_extra=env_extra,
    )
    summary = run_dir / "summary.md"
    written = _stamp(run_dir, "summary.md") not in (None, before)
    if not quiet and written:  # a report that failed is never announced
        print(f"summary: {summary}", file=sys.stderr)
    print(run_dir)
    return INTERRUPTED_EXIT if status == "interrupted" else 0


def _stamp(folder, name: str):
    """What tells one version of a file from the next (None: no such file)."""
    if folder is None:
        return None
    try:
        st = os.stat(os.path.join(folder, name))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _cmd_report(args) -> int:
    if args.pytest_benchmark:
        if args.run_dir:
            raise UsageError("give a RUN_DIR or --pytest-benchmark FILE, not both")
        from bench.report.pbench import convert

        paths = convert(args.pytest_benchmark, args.out)
    else:
        if not args.run_dir:
            raise UsageError("give the RUN_DIR to report on (or --pytest-benchmark FILE)")
        from bench.report.write import write_report

        _settle_stale_status(args.run_dir)
        paths = write_report(args.run_dir)
    for path in paths:
        print(path)
    return 0


def _settle_stale_status(run_dir) -> None:
    """A folder whose env.json says "running" with its process gone is said to be, and
    recorded as, interrupted (where the folder can be written; else only said)."""
    from bench.store.folder import RunStore, stale_running

    sentence = stale_running(run_dir)
    if sentence is None:
        return
    try:
        RunStore.open(run_dir).close()  # says it and records "interrupted"
    except (BenchError, OSError):
        print(f"note: {sentence}", file=sys.stderr)


def _cmd_list(args) -> int:
    from bench.listing import render_listing

    print(render_listing(data_dir=args.data_dir))
    return 0


def _cmd_verify(args) -> int:
    if args.backends and args.devices:
        raise UsageError(
            "--devices applies to the parity check of the installed backends (no --backends); "
            "the conformance report of --backends runs on the CPU"
        )
    if args.backends:  # a conformance report per named backend (bench/check/conformance.py)
        from bench.check.conformance import run_in_subprocess
        from impls.registry import check_backend_name

        names = split_list(args.backends, "--backends")
        for name in names:
            try:
                check_backend_name(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return run_in_subprocess(names)
    from bench.check.verify import run_verify

    devices = ("cpu",)
    if args.devices:
        from bench.sweep.values import parse_device

        try:
            devices = tuple(
                dict.fromkeys(parse_device(d) for d in split_list(args.devices, "--devices"))
            )
        except ValueError as exc:
            raise UsageError(f"--devices: {exc}") from None
        from bench.run.session import check_devices

        # a device that is not here stops the check, as it stops a run (exit 2)
        check_devices([SimpleNamespace(device=d) for d in devices])
    return run_verify(threads=args.threads, devices=devices)


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
    rep.add_argument("run_dir", metavar="RUN_DIR", nargs="?", type=_path("run folder"))
    rep.add_argument(
        "--pytest-benchmark",
        metavar="FILE",
        type=_path("pytest-benchmark file"),
        help="pytest-benchmark JSON (--benchmark-json) to turn into tables",
    )
    rep.add_argument(
        "--out",
        metavar="DIR",
        type=_path("tables folder (--out)"),
        help="with --pytest-benchmark: folder for the tables (default: FILE's name + -report)",
    )
    rep.set_defaults(func=_cmd_report)
    lst = sub.add_parser("list", help="datasets, backends, losses, optimisers and presets")
    lst.add_argument(
        "--data-dir", type=_path("data folder"), help="also look for dataset files here"
    )
    lst.set_defaults(func=_cmd_list)
    ver = sub.add_parser("verify", help="check that the installed backends compute the same")
    ver.add_argument("--threads", type=_threads, default=None, help="threads per library")
    ver.add_argument(
        "--devices",
        metavar="LIST",
        help="check each backend on these devices too (e.g. cpu,cuda: torch and jax on both); "
        "default cpu, and GPU-only backends (cupy) on cuda:0",
    )
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
