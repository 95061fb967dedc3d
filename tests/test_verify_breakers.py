"""`bench verify --backends`: a class that breaks the contract is caught and the fault named
(tests/verify_clients.py: labels smoothed and orders shuffled or sorted in place, W scaled in
__init__, NaN predictions, a 2x step in float32 alone), a child that exits, hangs or raises
fails verify, output streams and Ctrl-C keeps it, a stage() class is checked through stage(),
and the cases, options, verdicts and factor diagnoses."""

import io
import os
import re
import signal
import subprocess
import sys

import pytest

from bench.check import child, conformance, diagnose, plugin_cases

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIENTS = os.path.join(HERE, "verify_clients.py")
NIELSEN = os.path.join(HERE, "nielsen_network.py")
ONE = {"activation": ["relu"], "loss": ["cce"], "optimizer": ["sgd"], "dtype": ["float64"]}


def _report(cls, path=CLIENTS, **options):
    out = io.StringIO()
    status = conformance.run_conformance(f"{path}:{cls}", options or None, out=out)
    lines = out.getvalue().splitlines(True)
    return status, "".join(line for line in lines if not line.startswith("@@"))


@pytest.mark.parametrize(
    "cls, named",
    [
        ("SmoothsLabels", "your class wrote into Y (the targets) in train_epoch"),
        ("ShufflesOrder", "your class wrote into order (the epoch's sample order) in train_epoch"),
        ("SortsOrder", "your class wrote into order (the epoch's sample order) in train_epoch"),
        ("ScalesWeights", "your class wrote into params[0][0] (layer 0's initial weights"),
    ],
)
def test_an_in_place_edit_of_an_input_fails_naming_the_array(cls, named):
    status, text = _report(cls, **ONE)
    assert status == 1, text
    case = next(line for line in text.splitlines() if line.startswith("  relu→softmax/cce, sgd"))
    assert "FAIL" in case and named in case and "which the contract passes read-only" in case
    assert "DEPARTS" in text


def test_a_right_class_conforms_and_the_reference_is_untouched():
    status, text = _report("Right", **ONE)
    assert status == 0 and "1 of 1 cases checked pass: conforms" in text, text


def test_nan_predictions_fail():
    status, text = _report("NanPredictions", **ONE)
    assert status == 1
    assert "predict_proba returned NaN or inf" in text and "forward (predict_proba): FAIL" in text


def test_a_double_step_in_float32_alone_fails_in_float32_naming_the_factor():
    status, text = _report("DoubleStepInFloat32", activation=["relu"], loss=["cce"])
    assert status == 1
    for line in text.splitlines():
        if "relu→softmax/cce" in line and line.startswith("  relu"):
            if line.rstrip().endswith("float64") or ", float64 " in line:
                assert " ok " in line, line
            elif ", sgd, float32" in line:
                assert "FAIL" in line and "your step is 2× the contract's" in line, line
    assert "4 of 8 cases checked pass" in text


def test_a_stage_class_is_checked_through_stage():
    """Its array path takes a wrong step: it conforms only through stage(), as runs use it."""
    status, text = _report("Staged", activation=["relu"], loss=["cce"], dtype=["float64"])
    assert status == 0, text


def test_a_refusal_is_learnt_from_each_case_alone():
    status, text = _report("SigmoidOnly", loss=["cce"], optimizer=["sgd"], dtype=["float64"])
    assert status == 0, text
    assert re.search(r"relu→softmax/cce, sgd, float64 +not supported +NotImplementedError", text)
    assert re.search(r"sigmoid→softmax/cce, sgd, float64 +ok", text)
    assert "1 of 1 cases checked pass, 2 not supported: conforms" in text


def test_nothing_checked_is_its_own_verdict():
    status, text = _report("SigmoidOnly", activation=["relu"], loss=["cce"], dtype=["float64"])
    assert status == conformance.EXIT["nothing checked"] == 3
    assert "NOTHING WAS CHECKED, 4 not supported: the class refused every case" in text
    assert "DEPARTS" not in text


def test_cases_cover_every_setting_and_labels_name_each():
    cases = plugin_cases.all_cases()
    assert len(cases) == 3 * 5 * 4 * 2 == len(set(cases))
    textbook = plugin_cases.Case("sigmoid", "sigmoid", "mse", "sgd", "float64")
    assert textbook in cases and textbook.label == "sigmoid→sigmoid/mse, sgd, float64"
    kept, by_options, by_declaration = plugin_cases.select(
        {"activation": ("sigmoid",), "output": ("sigmoid",), "loss": ("mse",)},
        {"optimizer": ("sgd",)},
    )
    assert [c.label for c in kept] == [
        "sigmoid→sigmoid/mse, sgd, float64",
        "sigmoid→sigmoid/mse, sgd, float32",
    ]
    assert (by_options, by_declaration) == (112, 6)
    with pytest.raises(ValueError, match="allowed: sgd, momentum, decay, adam"):
        plugin_cases.check_settings({"optimizer": ["rmsprop"]}, "options")


def test_the_textbook_network_in_nielsens_style_passes_with_its_conventions():
    status, text = _report("NielsenMLP", path=NIELSEN)
    assert status == 0, text
    assert re.search(r"sigmoid→sigmoid/mse, sgd, float64 +ok", text)
    assert re.search(r"sigmoid→sigmoid/mse, sgd, float32 +ok", text)
    assert "2 of 2 cases checked pass, 6 not supported: conforms" in text


def test_nielsens_network_without_its_conventions_fails_naming_the_factor_and_cause():
    status, text = _report("NaiveNielsenMLP", path=NIELSEN)
    assert status == 1
    diagnosis = (
        "your step is n_out/2 = 5× the contract's: ½Σ over the outputs (Nielsen's cost); "
        'declare conventions = {"mse": "half-sum"} or pass lr × 2/n_out'
    )
    assert f"diagnosis: {diagnosis}" in text
    assert "loss: FAIL" in text and "5x numpy-vec's" in text
    case = next(line for line in text.splitlines() if "sigmoid→sigmoid/mse, sgd, float32" in line)
    assert "FAIL" in case and diagnosis in case


@pytest.mark.parametrize(
    "factor, loss, expected",
    [
        (5.0, "mse", "n_out/2 = 5× the contract's: ½Σ over the outputs (Nielsen's cost)"),
        (8.0, "cce", "the batch size 8× the contract's: the loss summed over the batch"),
        (10.0, "bce", "n_out = 10× the contract's: the loss summed over the outputs"),
        (2.0, "cce", "2× the contract's: twice the contract's step"),
        (0.5, "mse", "½× the contract's: ½ in the quadratic cost averaged over the outputs"),
        (40.0, "mse", "n_out/2 = 5 × the batch size 8× the contract's: ½Σ over the outputs"),
    ],
)
def test_factors_are_named_with_their_convention(factor, loss, expected):
    assert diagnose.name_factor(factor, loss, 10, 8) == f"your step is {expected}" or (
        expected in diagnose.name_factor(factor, loss, 10, 8)
    )
    assert diagnose.name_factor(3.7, loss, 10, 8) is None


def test_a_convention_declared_but_not_followed_is_named():
    status, text = _report("DeclaresHalfSum", activation=["relu"], output=["linear"], loss=["mse"])
    assert status == 1
    assert "diagnosis: your step is 1/(n_out/2 = 5)× the contract's: the inverse" in text
    assert "a convention declared that it does not follow" in text


def test_a_factor_matching_two_conventions_names_both():
    text = diagnose.name_factor(10.0, "mse", 10, 10)
    assert "n_out = 10" in text and "the batch size 10" in text and " or " in text


NARROW = ["--activation", "relu", "--loss", "cce", "--optimizer", "sgd", "--dtype", "float64"]


def test_a_child_that_exits_or_raises_fails_verify():
    out = io.StringIO()
    names = [f"{CLIENTS}:{cls}" for cls in ("ExitsInTraining", "CallsSysExit", "RaisesInInit")]
    assert child.run_in_subprocess(names, ONE, out=out) == 1
    reports = out.getvalue().split("\n\n" + "conformance of ")
    assert len(reports) == 3
    for report in reports[:2]:  # exit status 0, but no complete report: a failure
        assert "its process ended with exit status 0" in report and "DEPARTS" in report
        assert "forward (predict_proba): ok" in report  # what came before is kept
    assert "your class raised in __init__: RuntimeError: cannot find my weights" in reports[2]
    assert "DEPARTS" in reports[2]


def test_a_hanging_case_fails_after_its_limit():
    out = io.StringIO()
    status = child.run_in_subprocess([f"{CLIENTS}:Hangs"], ONE, case_timeout=2, out=out)
    assert status == 1
    text = out.getvalue()
    assert "forward (predict_proba): ok" in text  # what came before the hang is kept
    assert "the one-batch step did not finish within 2 s (--case-timeout)" in text


def test_output_streams_and_ctrl_c_keeps_the_report_so_far():
    env = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "bench", "verify", "--backends", f"{CLIENTS}:Hangs", *NARROW]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
        # as from a terminal: Ctrl-C not ignored, even where the suite itself runs as a
        # background job (which inherits SIGINT ignored, and so would the command)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    for line in proc.stdout:  # streamed: this line arrives while the class still hangs
        seen.append(line)
        if "forward (predict_proba)" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the parent and its child
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted during the one-batch step: the lines above are what was checked" in rest
    assert any("forward (predict_proba): ok" in line for line in seen)


def test_the_options_are_checked_and_apply_to_backends_only(capsys):
    from bench.cli import main

    for args, text in [
        (["--backends", f"{CLIENTS}:Right", "--optimizer", "rmsprop"], "cannot be 'rmsprop'"),
        (["--activation", "relu"], "give --backends too"),
        (["--backends", f"{CLIENTS}:Right", "--case-timeout", "0"], "--case-timeout"),
    ]:
        assert main(["verify", *args]) == 2
        assert text in capsys.readouterr().err


def test_a_write_past_the_read_only_flag_is_caught_after_the_call():
    """A write NumPy cannot stop (here from C, through ctypes) is found by comparing each
    input with its pristine copy after every call."""
    import ctypes

    import numpy as np

    from bench.check.isolation import ContractBreach, Inputs

    inputs = Inputs()
    Y = inputs.add("Y", np.zeros(3))
    with pytest.raises(ValueError, match="read-only"):
        Y[0] = 1.0
    inputs.check("train_epoch")  # unchanged: nothing to say
    ctypes.memmove(Y.ctypes.data, np.ones(3).ctypes.data, Y.nbytes)
    with pytest.raises(ContractBreach, match=r"changed Y \(the targets\) in train_epoch"):
        inputs.check("train_epoch")
