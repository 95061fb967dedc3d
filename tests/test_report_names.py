"""Backends named by a file path read as `file.py:Class` in the report, where unique."""

import pandas as pd

from bench.report.plugins import display_names, plugins_section


def test_a_file_plugin_reads_as_file_and_class_in_the_report():
    full = "/home/me/work/mine.py:Net"
    results = pd.DataFrame({"backend": [full, "numpy-vec"], "test_acc": [0.9, 0.9]})
    curves = pd.DataFrame({"backend": [full, full, "numpy-vec"], "epoch": [1, 2, 1]})
    env = {"plugins": {full: {"sha256": "ab"}}, "threads_effective": {f"{full}/t2": {}}}
    r, c, e = display_names(results, curves, env)
    assert list(r["backend"]) == ["mine.py:Net", "numpy-vec"]
    assert list(c["backend"]) == ["mine.py:Net", "mine.py:Net", "numpy-vec"]
    assert list(e["plugins"]) == ["mine.py:Net"] and list(e["threads_effective"]) == [
        "mine.py:Net/t2"
    ]
    assert list(results["backend"])[0] == full  # the caller's frame is left as it was


def test_two_plugins_with_one_short_name_keep_their_paths():
    a, b = "/one/mine.py:Net", "/two/mine.py:Net"
    results = pd.DataFrame({"backend": [a, b]})
    r, _, e = display_names(results, None, {"plugins": {a: {}, b: {}}})
    assert list(r["backend"]) == [a, b] and set(e["plugins"]) == {a, b}


def test_the_verify_advice_names_the_file_not_the_short_name(tmp_path, monkeypatch):
    # the summary names a plug-in by its short name, but the command it advises must run:
    # it names the file the run recorded, relative to the current folder where it lies below
    (tmp_path / "nets").mkdir()
    full = f"{tmp_path}/nets/mine.py:Net"
    results = pd.DataFrame({"backend": [full, "numpy-vec"], "status": ["ok", "ok"],
                            "dataset": ["digits"] * 2, "loss": ["cce"] * 2, "batch_size": [32] * 2,
                            "test_acc": [0.9, 0.9], "epoch_s": [0.2, 0.1]})  # fmt: skip
    env = {"plugins": {full: {"file": f"{tmp_path}/nets/mine.py", "class": "Net"}}}
    r, _, e = display_names(results, None, env)
    monkeypatch.chdir(tmp_path)
    text = plugins_section(r, e)
    advice = "(not verified: `python -m bench verify --backends nets/mine.py:Net`)"
    assert f"- **mine.py:Net** {advice}" in text
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not below it: the absolute path
    assert f"--backends {tmp_path}/nets/mine.py:Net`" in plugins_section(r, e)
