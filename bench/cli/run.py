"""`bench run`, `bench report` and `bench list`: their arguments and what each does."""

from __future__ import annotations

import argparse
import os
import sys

from bench.cli.parsing import SETTING_KEYS, given, load_config, path_type, sweep_overrides
from bench.errors import BenchError, UsageError
from bench.sweep.build import build_sweep
from bench.sweep.presets import default_base
from impls.registry import DEFAULT_BACKENDS


def add_run_parser(sub):
    p = sub.add_parser(
        "run",
        help="run a sweep and write a run folder",
        description="Run a sweep: every combination of the given axes, each in its backend's "
        "worker process. With no flags: a quick sweep on digits over the default backends "
        f"that are installed ({', '.join(DEFAULT_BACKENDS)}; the peers run when named in "
        "--backends or with --preset peers), batch sizes 1, 32, 256, losses cce/bce/mse with "
        "SGD (lr 0.1/1.0/2.0), 10 epochs.",
    )
    source = p.add_argument_group("what to run")
    source.add_argument(
        "--preset", type=given("preset name"), help="a named sweep (see `python -m bench list`)"
    )
    source.add_argument(
        "--config",
        metavar="FILE",
        type=path_type("config file"),
        help="a TOML file with a [sweep] table",
    )
    source.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=path_type("run folder"),
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
        kind = path_type("data folder") if key.name == "data_dir" else None
        group.add_argument(*key.cli_flags, dest=key.name, metavar=metavar, type=kind, help=key.help)
    where = p.add_argument_group("where to run")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=given("scheduler address"),
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
        where.add_argument(flag, metavar="FILE", type=path_type(f"{flag} file"), help=text)
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        type=path_type("results folder (--out)"),
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
    source.add_argument(
        "--allow-changed-plugins",
        action="store_true",
        help="with --resume: go on although a backend of your own (path/file.py:Class, "
        "module:Class) changed since the run started (env.json's plugins hold its sha256); "
        "the folder then holds results of both versions",
    )
    return p


def cmd_run(args) -> int:
    from bench.run.runner import INTERRUPTED_EXIT, execute, sweep_of_run
    from bench.sweep.presets import preset_mapping

    overrides = sweep_overrides(args)
    tls = {"ca_file": args.tls_ca_file, "cert": args.tls_cert, "key": args.tls_key}
    if args.scheduler is None and any(tls.values()):
        raise UsageError(
            "the --tls-* options are for a Dask scheduler: add --scheduler tls://HOST:PORT "
            "(or local:N), or drop them"
        )
    if args.allow_changed_plugins and args.resume is None:
        raise UsageError("--allow-changed-plugins goes with --resume RUN_DIR")
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
    before = stamp(args.resume, "summary.md")
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
        allow_changed_plugins=args.allow_changed_plugins,
    )
    summary = run_dir / "summary.md"
    written = stamp(run_dir, "summary.md") not in (None, before)
    if not quiet and written:  # a report that failed is never announced
        print(f"summary: {summary}", file=sys.stderr)
    print(run_dir)
    return INTERRUPTED_EXIT if status == "interrupted" else 0


def stamp(folder, name: str):
    """What tells one version of a file from the next (None: no such file)."""
    if folder is None:
        return None
    try:
        st = os.stat(os.path.join(folder, name))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def cmd_report(args) -> int:
    if args.pytest_benchmark:
        if args.run_dir:
            raise UsageError("give a RUN_DIR or --pytest-benchmark FILE, not both")
        from bench.report.pbench import convert

        paths = convert(args.pytest_benchmark, args.out)
    else:
        if not args.run_dir:
            raise UsageError("give the RUN_DIR to report on (or --pytest-benchmark FILE)")
        from bench.report.write import write_report

        settle_stale_status(args.run_dir)
        paths = write_report(args.run_dir)
    for path in paths:
        print(path)
    return 0


def settle_stale_status(run_dir) -> None:
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


def cmd_list(args) -> int:
    from bench.listing import render_listing

    print(render_listing(data_dir=args.data_dir))
    return 0


def add_report_parser(sub):
    rep = sub.add_parser(
        "report",
        help="re-render summary.md and plots from a run folder, or tables from "
        "pytest-benchmark JSON",
    )
    rep.add_argument("run_dir", metavar="RUN_DIR", nargs="?", type=path_type("run folder"))
    rep.add_argument(
        "--pytest-benchmark",
        metavar="FILE",
        type=path_type("pytest-benchmark file"),
        help="pytest-benchmark JSON (--benchmark-json) to turn into tables",
    )
    rep.add_argument(
        "--out",
        metavar="DIR",
        type=path_type("tables folder (--out)"),
        help="with --pytest-benchmark: folder for the tables (default: FILE's name + -report)",
    )
    return rep


def add_list_parser(sub):
    lst = sub.add_parser("list", help="datasets, backends, losses, optimisers and presets")
    lst.add_argument(
        "--data-dir", type=path_type("data folder"), help="also look for dataset files here"
    )
    return lst
