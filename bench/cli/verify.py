"""`bench verify`: its arguments and the dispatch to the parity check or the conformance
report of named backends (bench/check)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from bench.cli.parsing import split_list, threads_type
from bench.errors import UsageError

# the options that narrow the conformance report's cases (bench/check/plugin_cases.py)
NARROWING = ("activation", "output", "loss", "optimizer", "dtype")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def cmd_verify(args) -> int:
    if args.backends and args.devices:
        raise UsageError(
            "--devices applies to the parity check of the installed backends (no --backends); "
            "the conformance report of --backends runs on the CPU"
        )
    narrowing = {key: getattr(args, key) for key in NARROWING if getattr(args, key)}
    if not args.backends and (narrowing or args.case_timeout is not None):
        given = ", ".join(f"--{key}" for key in narrowing) or "--case-timeout"
        raise UsageError(
            f"{given} applies to the conformance report of --backends (your own class); "
            "give --backends too"
        )
    if args.backends:  # a conformance report per named backend (bench/check/conformance.py)
        from bench.check.child import DEFAULT_CASE_TIMEOUT, run_in_subprocess
        from bench.check.plugin_cases import check_settings
        from impls.registry import check_backend_name

        names = split_list(args.backends, "--backends")
        for name in names:
            try:
                check_backend_name(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        try:
            options = check_settings(
                {key: split_list(value, f"--{key}") for key, value in narrowing.items()},
                "options",
            )
        except ValueError as exc:
            raise UsageError(str(exc).replace("options: ", "--", 1)) from None
        limit = DEFAULT_CASE_TIMEOUT if args.case_timeout is None else args.case_timeout
        return run_in_subprocess(names, {k: list(v) for k, v in options.items()}, limit)
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


def add_verify_parser(sub):
    ver = sub.add_parser("verify", help="check that the installed backends compute the same")
    ver.add_argument("--threads", type=threads_type, default=None, help="threads per library")
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
        "against numpy-vec step by step and say where each first departs; exit status 0 "
        "conforms, 1 departs, 3 nothing was checked",
    )
    for key, example in (
        ("activation", "relu,sigmoid,tanh"),
        ("output", "softmax,sigmoid,linear"),
        ("loss", "cce,bce,mse"),
        ("optimizer", "sgd,momentum,decay,adam"),
        ("dtype", "float64,float32"),
    ):
        ver.add_argument(
            f"--{key}",
            metavar="LIST",
            help=f"with --backends: check only these ({example}; default all)",
        )
    ver.add_argument(
        "--case-timeout",
        type=_seconds,
        metavar="S",
        help="with --backends: seconds each case may take before the class's process is "
        "stopped and verify fails (default 60)",
    )
    return ver
