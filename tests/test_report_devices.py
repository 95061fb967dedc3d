"""The report where cells ran on several devices: no figure mixes a CPU cell with a GPU one."""

from test_pbench_scaling import scaling_results

from bench.report import scaling


def test_a_scaling_study_across_devices_is_not_fitted():
    results = scaling_results({"torch": 1.0})
    results["device"] = "cpu"
    assert "batch" in set(scaling.fit_slopes(results)["part"])
    in_batch = results.index[results["part"] == "batch"]
    results.loc[in_batch[::2], "device"] = "cuda:0"  # half of the batch study on a GPU
    fits = scaling.fit_slopes(results)
    assert "batch" not in set(fits["part"])
    assert {"width", "samples"} <= set(fits["part"])


def test_curves_written_before_the_device_was_an_axis_take_their_cells_device(tmp_path):
    import warnings

    from test_report import EPOCHS, make_tables, write_run

    from bench.report import plots
    from bench.report.loading import load_run

    results, curves = make_tables()
    results["device"] = "cpu"
    folder = write_run(tmp_path / "old", results, curves.drop(columns=["device"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: the device comes from results.csv
        results, curves = load_run(folder)
    assert len(curves) and (curves["device"] == "cpu").all()
    ok = results[results["status"] == "ok"]
    # every finished cell's epochs
    assert len(plots.finished_curves(ok, curves)) == len(ok) * EPOCHS
