"""Resume never loses a finished row: recovery keeps every complete, valid row wherever it
sits, quarantines what it cannot read into `<table>.damaged`, and always leaves a header.

The end-to-end cases reproduce reported losses (a results.csv truncated to 20 bytes, a part
name holding U+2028, a middle row with a missing field); the property test throws random
writes, cuts and junk lines (every break str.splitlines() knows) at the store.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import bench_env, read_env, read_rows, run_bench
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_records import RESULTS_CSV_HEADER

from bench.cli import main
from bench.store.folder import RunStore, stale_running
from bench.store.schema import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--datasets", "digits", "--backends", "numpy-vec", "--losses", "cce", "--epochs", "1"]
TINY += ["--threads", "1", "--quiet"]

# Every character str.splitlines() breaks on; csv's reader breaks only on \r and \n.
SPLITLINES_BREAKS = ["\n", "\r", "\r\n", "\v", "\x0b", "\f", "\x0c", "\x1c", "\x1d", "\x1e"]
SPLITLINES_BREAKS += ["\x85", "\u2028", "\u2029"]


def _row(cell_id, repeat=0, **extra):
    return {"run_id": "r", "cell_id": cell_id, "repeat": repeat, "status": "ok", **extra}


def _store_with(tmp_path, n):
    store = RunStore.create(tmp_path, "x")
    store.write_env({"run_id": "x"})
    for i in range(n):
        cid = f"c{i:03d}"
        store.append_cell(_row(cid, epoch_s=0.5), [{"cell_id": cid, "repeat": 0, "epoch": 1}])
    return store


# ---------------------------------------------------------------------------------------------
# the reported cases, end to end


def test_results_truncated_to_20_bytes_then_resume(tmp_path, capsys):
    """Before: the header was dropped, "0 of 3 finished", report failed, a second resume
    called the folder unusable. Now the 20 bytes are quarantined and the header restored."""
    args = ["run", *TINY, "--batch-sizes", "128,256", "--out", str(tmp_path)]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    results = run_dir / "results.csv"
    cut = results.read_bytes()[:20]
    results.write_bytes(cut)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    damaged = run_dir / "results.csv.damaged"
    assert f"moved to {damaged}" in err
    assert damaged.read_bytes() == cut + b"\r\n"
    rows = read_rows(results)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"}
    assert results.read_text(encoding="utf-8").startswith(",".join(RESULT_COLUMNS[:3]))
    assert main(["report", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert "2 of 2 cells already finished, 0 to run" in capsys.readouterr().err
    assert len(read_rows(results)) == 2


def test_a_folder_in_the_format_written_so_far_resumes(tmp_path, capsys):
    """results.csv with the header written so far (a literal) and one row of two; env.json
    from before sessions were recorded, holding a field this version does not declare. The
    resume runs the missing cell, keeps the old row and field as they were, and the first
    start becomes session 0."""
    assert main(["run", *TINY, "--batch-sizes", "128,256", "--out", str(tmp_path)]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    header = RESULTS_CSV_HEADER.split(",")
    first = read_rows(run_dir)[0]
    with open(run_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, [first[c] for c in header]])
    env = read_env(run_dir)
    kept = ("run_id", "name", "command", "sweep", "started_at", "python", "threads", "cells")
    old = {k: env[k] for k in kept} | {"status": "interrupted", "field_of_another_version": 1}
    (run_dir / "env.json").write_text(json.dumps(old))
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert "1 of 2 cells already finished, 1 to run" in capsys.readouterr().err
    rows = read_rows(run_dir)
    assert len(rows) == 2 and rows[0] == first and list(rows[1]) == header
    assert rows[1]["status"] == "ok" and rows[1]["session"] == "1"
    env = read_env(run_dir)
    assert env["field_of_another_version"] == 1 and env["status"] == "complete"
    assert [(s["index"], s["command"]) for s in env["sessions"]][0] == (0, old["command"])
    assert [s["status"] for s in env["sessions"]] == ["interrupted", "complete"]
    assert main(["report", str(run_dir)]) == 0


def test_part_named_with_a_line_separator_survives_resume(tmp_path, capsys):
    """Before: a part named "a\\u2028b" was split by str.splitlines(); a resume of the finished
    folder deleted both rows and ran them again. Names are now one line of text (the store
    keeps such characters too: see test_line_breaks_in_values_are_written_as_spaces)."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[sweep]\ntitle = "sep"\ndatasets = ["digits"]\nbackends = ["numpy-vec"]\n'
        'losses = ["cce"]\nepochs = [1]\nthreads = [1]\nbatch_sizes = [128, 256]\n'
        '[[sweep.parts]]\nname = "a\\u2028b"\n',
        encoding="utf-8",
    )
    assert main(["run", "--config", str(config), "--quiet", "--out", str(tmp_path)]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    before = (run_dir / "results.csv").read_bytes()
    assert [r["part"] for r in read_rows(run_dir / "results.csv")] == ["a b"] * 2
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert "2 of 2 cells already finished, 0 to run" in capsys.readouterr().err
    assert (run_dir / "results.csv").read_bytes() == before
    assert not (run_dir / "results.csv.damaged").exists()


def test_a_middle_row_with_a_missing_field_loses_only_itself(tmp_path):
    """Before: every row after the bad one was dropped."""
    store = _store_with(tmp_path, 5)
    lines = store.results_path.read_bytes().decode().split("\r\n")
    bad = lines[2].rsplit(",", 1)[0]  # row c001 without its last field
    lines[2] = bad
    store.results_path.write_text("\r\n".join(lines), encoding="utf-8", newline="")
    messages = []
    assert store.recover(note=messages.append) == {(f"c{i:03d}", 0) for i in (0, 2, 3, 4)}
    assert [r["cell_id"] for r in read_rows(store.results_path)] == ["c000", "c002", "c003", "c004"]
    damaged = store.path / "results.csv.damaged"
    assert damaged.read_bytes().decode() == bad + "\r\n"
    assert messages == [
        f"note: results.csv: 1 damaged line (cut off, unreadable or repeated) moved to "
        f"{damaged}; 4 complete rows kept"
    ]
    # the curve row of the quarantined cell is dropped: that cell runs again
    assert [r["cell_id"] for r in read_rows(store.curves_path)] == ["c000", "c002", "c003", "c004"]
    store.close()


def test_repeated_keys_are_quarantined_not_duplicated(tmp_path):
    store = _store_with(tmp_path, 2)
    store.append_cell(_row("c000", epoch_s=9.0), [])  # the same key again
    assert store.recover(note=lambda m: None) == {("c000", 0), ("c001", 0)}
    rows = read_rows(store.results_path)
    assert [(r["cell_id"], r["epoch_s"]) for r in rows] == [("c000", "0.5"), ("c001", "0.5")]
    assert "9.0" in (store.path / "results.csv.damaged").read_text(encoding="utf-8")
    store.close()


def test_an_older_header_is_upgraded_without_losing_rows(tmp_path):
    store = _store_with(tmp_path, 0)
    old = [c for c in RESULT_COLUMNS if c != "roofline"]
    with store.results_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(old)
        # "1" in every other field: an epoch time of 0 is refused as no measurement
        w.writerow(
            [
                "r" if c == "run_id" else "a1" if c == "cell_id" else "0" if c == "repeat" else "1"
                for c in old
            ]
        )
    assert store.recover(note=lambda m: None) == {("a1", 0)}
    rows = read_rows(store.results_path)
    assert list(rows[0]) == list(RESULT_COLUMNS) and rows[0]["roofline"] == ""
    store.close()


def test_line_breaks_in_values_are_written_as_spaces(tmp_path):
    store = _store_with(tmp_path, 0)
    for i, sep in enumerate(SPLITLINES_BREAKS):
        store.append_cell(_row(f"a{i}", part=f"a{sep}b", error="one\rtwo\r\nthree\nfour"), [])
    store.close()
    store = RunStore.open(store.path)
    assert store.recover(note=lambda m: None) == {(f"a{i}", 0) for i in range(13)}
    rows = read_rows(store.results_path)
    assert {r["error"] for r in rows} == {"one two three four"}
    csv_breaks = ("\n", "\r", "\r\n")
    assert [r["part"] for r in rows] == [
        "a b" if sep in csv_breaks else f"a{sep}b" for sep in SPLITLINES_BREAKS
    ]
    assert not (store.path / "results.csv.damaged").exists()
    store.close()


# ---------------------------------------------------------------------------------------------
# property: writes, cuts, junk and resumes never lose a complete row nor repeat a key

_ids = st.text("0123456789abcdef", min_size=1, max_size=3)
_junk_char = st.sampled_from([*SPLITLINES_BREAKS, '"', ",", "x", "é", "\x00"])
_step = st.one_of(
    st.tuples(st.just("write"), _ids, st.integers(0, 2), st.text(max_size=8)),
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("junk"), st.lists(_junk_char, max_size=12).map("".join)),
    st.tuples(st.just("resume")),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, max_size=25))
def test_property_no_complete_row_lost_no_key_repeated(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("prop")
    store = RunStore.create(root, "p")
    store.write_env({"run_id": "p"})
    complete = {}  # key -> (its line's end offset, its error text) for rows written whole
    finished = set()  # what the last recovery said is finished: never written again
    crashed = False  # after a cut nothing is written until a resume (the process died)
    for step in steps:
        if step[0] == "write":
            _, cid, repeat, text = step
            key = (cid, repeat)
            if crashed or key in complete or key in finished:
                continue
            curve = {"run_id": "r", "cell_id": cid, "repeat": repeat, "epoch": 1}
            store.append_cell(_row(cid, repeat, error=text), [curve])
            size = store.results_path.stat().st_size
            complete[key] = (
                size,
                " ".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")),
            )
        elif step[0] == "cut":
            data = store.results_path.read_bytes()
            at = int(step[1] * len(data))
            store.results_path.write_bytes(data[:at])
            complete = {k: v for k, v in complete.items() if v[0] <= at}
            crashed = True
        elif step[0] == "junk":
            with store.results_path.open("a", encoding="utf-8", newline="") as f:
                f.write(step[1])
        else:
            store.close()
            store = RunStore.open(store.path)
            finished = store.recover(note=lambda m: None)
            crashed = False
            assert set(complete) <= finished  # no complete row lost
            with store.results_path.open(newline="", encoding="utf-8") as f:
                assert next(csv.reader(f)) == list(RESULT_COLUMNS)  # the header is there
            rows = read_rows(store.results_path)
            keys = [(r["cell_id"], int(r["repeat"])) for r in rows]
            assert len(keys) == len(set(keys)) and set(keys) == finished  # no key twice
            for row, key in zip(rows, keys):
                if key in complete:
                    assert row["error"] == complete[key][1]  # kept as written
            size = store.results_path.stat().st_size
            complete = {k: (size, complete[k][1]) for k in complete}
    store.close()


# ---------------------------------------------------------------------------------------------
# env.json: written whole, never left "running" by a process that is gone


def test_a_run_killed_while_running_is_recognised_on_resume(tmp_path, capsys):
    store = _store_with(tmp_path, 1)
    store.update_env(status="running")
    env = json.loads(store.env_path.read_text())
    assert env["owner"]["pid"] == os.getpid()
    assert stale_running(store.path) is None  # the lock is held: alive
    store.close()
    # a dead owner: another process wrote "running" and exited without saying so
    code = (
        "import sys; from bench.store.folder import RunStore; s = RunStore.open(sys.argv[1]); "
        "s.update_env(status='running'); import os; os._exit(0)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(store.path)],
        check=True,
        cwd=ROOT,
        env=bench_env(),
    )
    pid = json.loads(store.env_path.read_text())["owner"]["pid"]
    sentence = stale_running(store.path)
    assert sentence.startswith(f"{store.path}/env.json said the run is still running, but its ")
    assert f"process {pid} on " in sentence and sentence.endswith("treated as interrupted")
    again = RunStore.open(store.path)
    assert f"note: {sentence}" in capsys.readouterr().err
    assert again.read_env()["status"] == "interrupted"
    again.close()


def _limited(script, limit, *args):
    """Run `script` with a file size limit (write() then fails with EFBIG, as on a full disk)."""
    pre = (
        "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", pre + script, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=bench_env(),
        timeout=120,
    )


def test_disk_full_names_the_file_and_how_to_resume(tmp_path):
    """Before: `error: OSError: [Errno 28]`, no folder, env.json "running", env.json.tmp left."""
    config = tmp_path / "full.toml"
    config.write_text(
        '[sweep]\ntitle = "full"\ndatasets = ["synthetic:n=40,d=2,k=2"]\nbackends = ["numpy-vec"]\n'
        'losses = ["cce"]\nthreads = [1]\nbatch_sizes = [8]\nepochs = [40]\n'
        "lrs = [0.1, 0.2, 0.3, 0.4]\n"
    )
    out = tmp_path / "out"
    limit = 9_000  # data, env.json and the first cell fit; the four cells' 160 curve rows do not
    main_py = "from bench.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    done = _limited(main_py, limit, "run", "--config", str(config), "--quiet", "--out", str(out))
    run_dir = next(out.iterdir())
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the file size limit was reached while writing {run_dir}/")
    assert last.endswith(
        f"; raise the limit and finish with: python -m bench run --resume {run_dir}"
    )
    assert not list(run_dir.glob("*.tmp"))
    env = read_env(run_dir)
    assert env["status"] == "interrupted"
    resumed = run_bench("run", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(run_dir / "results.csv")
    assert len(rows) == 4 and len({(r["cell_id"], r["repeat"]) for r in rows}) == 4
    assert read_env(run_dir)["status"] == "complete"


def test_disk_full_while_the_data_is_prepared_is_said_plainly(tmp_path):
    """Before: `error: OSError: 160000 requested and 49968 written` (NumPy's short write)."""
    out = tmp_path / "out"
    main_py = "from bench.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    done = _limited(
        main_py, 100_000, "run", "--datasets", "synthetic:n=2000,d=100,k=2", "--backends",
        "numpy-vec", "--losses", "cce", "--epochs", "1", "--threads", "1", "--quiet", "--out",
        str(out),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the disk is full or a file size limit was reached while "
                           "writing the prepared data into ")  # fmt: skip
    assert last.endswith("free space, then run the same command again")
    assert "OSError:" not in last.split("(", 1)[0]


def test_no_space_left_is_said_plainly(tmp_path):
    """ENOSPC itself (/dev/full answers every write with it)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    store = _store_with(tmp_path, 0)
    store.results_path.unlink()
    store.results_path.symlink_to("/dev/full")
    from bench.errors import DiskFullError

    with pytest.raises(DiskFullError) as info:
        store.append_cell(_row("a"), [])
    assert str(info.value) == (
        f"the disk is full while writing {store.results_path}; free space and finish with: "
        f"python -m bench run --resume {store.path}"
    )
    store.close()


def test_report_on_a_stale_running_folder_says_so(tmp_path, capsys):
    """Before: env.json stayed "running" for ever after a process that was killed."""
    assert main(["run", *TINY, "--batch-sizes", "256", "--out", str(tmp_path)]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    env = read_env(run_dir)
    env.update(status="running", owner={"pid": 2**22 + 1, "host": "elsewhere"})
    (run_dir / "env.json").write_text(json.dumps(env))
    assert main(["report", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"note: {run_dir}/env.json said the run is still running, but its process " in err
    assert read_env(run_dir)["status"] == "interrupted"
