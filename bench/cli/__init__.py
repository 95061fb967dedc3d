"""`python -m bench`: parses the command line and dispatches; nothing more.

Errors the user can act on are printed as one line (a traceback only with --debug); a
closed stdout (`python -m bench list | head -1`) ends the command quietly. Exit
status: 0 done, 1 failed, 2 usage error, 130 interrupted (a run folder to --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from bench.cli import compare, replay, run, verify
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
    compare.add_compare_parser(sub).set_defaults(func=compare.cmd_compare)
    replay.add_replay_parser(sub).set_defaults(func=replay.cmd_replay)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(argv)
        status = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
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


def _closed_pipe() -> int:
    """The reader of stdout went away (`python -m bench list | head -1`): what it read is what
    it wanted, so exit 0, quietly. stdout is pointed at /dev/null so that the interpreter's
    final flush of what is still buffered does not fail in turn."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0
