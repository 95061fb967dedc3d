"""The conformance report of each class, run in a process of its own and streamed.

The child (`python -m bench.check.conformance`, bench/check/conformance.py) writes its report
line by line to a pipe; this side prints each line as it comes. Only a report that ends with
its end line is complete: a child that exits (sys.exit, os._exit), is killed, or raises
outside a case has not finished, whatever its exit status, and fails verify with the end of its
output shown. Each case has a time limit (`case_timeout`, `--case-timeout`); loading the class
gets START_TIMEOUT or the case limit, whichever is longer. Ctrl-C stops the child; the lines
already printed are the report so far.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.check.conformance import EXIT

DEFAULT_CASE_TIMEOUT = 60.0  # seconds a case may take (a few epochs of a 64-16-10 network)
START_TIMEOUT = 120.0  # seconds to import the class and its framework
INTERRUPTED = 130
LOADING = "loading the class"
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def _read_lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    hint = " (does the class call sys.exit or os._exit?)" if code in (0, 1) else ""
    return f"ended with exit status {code}{hint}"


def _tail(log, lines: int = 15) -> str:
    log.seek(0)
    text = log.read().decode(errors="replace").rstrip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


def check_one(name: str, options: dict | None, case_timeout: float, out) -> int:
    """One class's report, streamed to `out`; its exit status (EXIT, or INTERRUPTED)."""
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT_ROOT, env.get("PYTHONPATH")]))
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "bench.check.conformance", name]
    command += ["--options", json.dumps(options or {}), "--fd", str(write_end)]
    with tempfile.TemporaryFile() as log:
        try:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(write_end,),
                env=env,
            )
        finally:
            os.close(write_end)
        lines: queue.Queue = queue.Queue()
        stream = os.fdopen(read_end, encoding="utf-8", errors="replace")
        reader = threading.Thread(target=_read_lines, args=(stream, lines), daemon=True)
        reader.start()
        try:
            return _follow(name, child, lines, case_timeout, log, out)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            reader.join(timeout=5)
            if not reader.is_alive():
                stream.close()


def _follow(name, child, lines: queue.Queue, case_timeout: float, log, out) -> int:
    """Print the child's report lines as they come; its exit status (EXIT, or INTERRUPTED)."""
    current, limit, end = LOADING, max(START_TIMEOUT, case_timeout), None
    line = ""
    try:
        while True:
            try:
                line = lines.get(timeout=limit)
            except queue.Empty:
                child.kill()
                child.wait()
                option = "" if current == LOADING else " (--case-timeout)"
                print(
                    f"FAIL: {name}: {current} did not finish within {limit:g} s{option}: "
                    "its process was stopped",
                    file=out,
                    flush=True,
                )
                break
            if line is None:
                break
            if line.startswith("@@case "):
                current, limit = line[7:].strip(), case_timeout
            elif line.startswith("@@end "):
                end = line[6:].strip()
                break
            else:
                out.write(line)
                out.flush()
    except KeyboardInterrupt:
        child.kill()
        child.wait()
        print(
            f"\ninterrupted during {current}: the lines above are what was checked so far",
            file=out,
            flush=True,
        )
        return INTERRUPTED
    if end in EXIT:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a thread of the class's keeps it alive
            child.kill()
        return EXIT[end]
    code = child.wait()
    if line is None:  # the child ended without its end line
        print(
            f"FAIL: {name}: its process {_how_it_ended(code)} during {current}, before "
            "the report was complete",
            file=out,
            flush=True,
        )
    tail = _tail(log)
    if tail:
        print(f"  the end of its output:\n{tail}", file=out, flush=True)
    print("DEPARTS: the report above is incomplete", file=out, flush=True)
    return EXIT["departs"]


def run_in_subprocess(names, options=None, case_timeout=DEFAULT_CASE_TIMEOUT, out=sys.stdout):
    """Each backend's report in a fresh interpreter, one after another. The exit status: 1 if
    one departs (or could not finish), else 3 if one had nothing checked, else 0; 130 when
    interrupted (the reports so far stay printed)."""
    statuses = []
    for i, name in enumerate(names):
        if i:
            print(file=out, flush=True)
        status = check_one(name, options, case_timeout, out)
        if status == INTERRUPTED:
            return INTERRUPTED
        statuses.append(status)
    for worst in (EXIT["departs"], EXIT["nothing checked"]):
        if worst in statuses:
            return worst
    return EXIT["conforms"]
