"""Backends named by a file path read as `file.py:Class` in the report, where unique."""

import pandas as pd

from bench.report.plugins import display_names


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
