"""`bench verify`: its arguments and the dispatch to the parity check or the conformance
report of named backends (bench/check)."""

from __future__ import annotations

from types import SimpleNamespace

from bench.cli.parsing import split_list, threads_type
from bench.errors import UsageError


def cmd_verify(args) -> int:
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
        "against numpy-vec step by step and say where each first departs",
    )
    return ver
