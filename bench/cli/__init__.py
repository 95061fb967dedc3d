"""`python -m bench`: parses the command line and dispatches; nothing more.

Errors the user can act on are printed as one line (a traceback only with --debug). Exit
status: 0 done, 1 failed, 2 usage error, 130 interrupted (a run folder to --resume).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from bench.cli import run, verify
from bench.cli.parsing import Parser
from bench.errors import BenchError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m bench",
        description="mlp-bench: hand-written NumPy MLPs next to Keras and PyTorch.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    run.add_run_parser(sub).set_defaults(func=run.cmd_run)
    run.add_report_parser(sub).set_defaults(func=run.cmd_report)
    run.add_list_parser(sub).set_defaults(func=run.cmd_list)
    verify.add_verify_parser(sub).set_defaults(func=verify.cmd_verify)
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
