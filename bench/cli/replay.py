"""`bench replay RUN_DIR`: replays the first epochs of the configurations whose backends part
in float64, and says whether float32 rounding or a real difference parts them
(bench/run/replay.py); the run's summary.md then quotes it."""

from __future__ import annotations

import sys

from bench.cli.parsing import count_type, path_type


def add_replay_parser(sub):
    from bench.run.replay import REPLAY_EPOCHS

    p = sub.add_parser(
        "replay",
        help="replay the first epochs of the cells whose backends part in accuracy, in their "
        "own dtype and in float64: float32 rounding, or a real difference (written to the "
        "run's summary.md)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=path_type("run folder"))
    p.add_argument(
        "--epochs",
        type=count_type("epochs"),
        default=REPLAY_EPOCHS,
        help=f"epochs to replay (default {REPLAY_EPOCHS})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def cmd_replay(args) -> int:
    from bench.report.write import write_report
    from bench.run.replay import describe, replay

    quiet = args.quiet
    result = replay(
        args.run_dir,
        epochs=args.epochs,
        note=(lambda text: None) if quiet else None,
        progress=not quiet,
    )
    for line in describe(result):
        print(line)
    for path in write_report(args.run_dir):
        if path.name == "summary.md":
            print(f"summary: {path} (its verdict now quotes the replay)", file=sys.stderr)
    return 0
