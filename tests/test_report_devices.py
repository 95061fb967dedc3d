"""The report where cells ran on several devices: no figure mixes a CPU cell with a GPU one."""

from test_pbench_scaling import _scaling_results

from bench import scaling


def test_a_scaling_study_across_devices_is_not_fitted():
    results = _scaling_results({"torch": 1.0})
    results["device"] = "cpu"
    assert "batch" in set(scaling.fit_slopes(results)["part"])
    in_batch = results.index[results["part"] == "batch"]
    results.loc[in_batch[::2], "device"] = "cuda:0"  # half of the batch study on a GPU
    fits = scaling.fit_slopes(results)
    assert "batch" not in set(fits["part"])
    assert {"width", "samples"} <= set(fits["part"])
