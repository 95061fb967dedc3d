"""`bench compare BASE NEW`: its arguments, the output files and the exit status of the
comparison of two run folders (bench/report/compare.py)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bench.cli.parsing import path_type
from bench.errors import UsageError


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a percentage >= 0, got {text!r}")
    return value


def add_compare_parser(sub):
    cmp = sub.add_parser(
        "compare",
        help="compare two run folders cell by cell: time ratios with 95%% intervals, "
        "significance, accuracy changes (and a CI gate with --fail-above)",
    )
    cmp.add_argument("base", metavar="BASE", type=path_type("base run folder"))
    cmp.add_argument("new", metavar="NEW", type=path_type("new run folder"))
    cmp.add_argument(
        "--out",
        metavar="DIR",
        type=path_type("output folder (--out)"),
        help="also write compare.md, compare.csv and compare.json into DIR",
    )
    cmp.add_argument(
        "--fail-above",
        metavar="PCT",
        type=_percent,
        help="exit 1 when a cell is significantly slower by more than PCT percent, or its "
        "test accuracy dropped beyond its noise",
    )
    cmp.add_argument(
        "--threshold",
        metavar="PCT",
        type=_percent,
        default=5.0,
        help="the smallest change called faster or slower (default 5)",
    )
    cmp.add_argument(
        "--github-json",
        metavar="FILE",
        type=path_type("github-action-benchmark file (--github-json)"),
        help="write the new run's times for github-action-benchmark (customSmallerIsBetter)",
    )
    return cmp


def cmd_compare(args) -> int:
    from bench.report.compare import compare_runs, github_benchmarks
    from bench.report.write import write_text

    for which in (args.base, args.new):
        if not Path(which).is_dir():
            raise UsageError(f"{which} is not a run folder (give two folders `bench run` wrote)")
    comparison = compare_runs(args.base, args.new, threshold=args.threshold / 100)
    text = comparison.markdown()
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "compare.md", text)
        write_text(out / "compare.csv", comparison.table.to_csv(index=False))
        payload = {
            "base": str(comparison.base),
            "new": str(comparison.new),
            "differences": comparison.differences,
            "machine_differs": comparison.machine_differs,
            "cells": json.loads(comparison.table.to_json(orient="records")),
            "only_base": comparison.only_base,
            "only_new": comparison.only_new,
        }
        write_text(out / "compare.json", json.dumps(payload, indent=2) + "\n")
        print(f"written: {out / 'compare.md'}, compare.csv, compare.json", file=sys.stderr)
    if args.github_json:
        path = Path(args.github_json)
        write_text(path, json.dumps(github_benchmarks(comparison), indent=2) + "\n")
    if args.fail_above is None:
        return 0
    failed = comparison.failures(args.fail_above / 100)
    if failed.empty:
        return 0
    print(
        f"failed: {len(failed)} cell(s) significantly slower by more than {args.fail_above:g}% "
        "or with an accuracy drop beyond its noise (see the table)",
        file=sys.stderr,
    )
    return 1
