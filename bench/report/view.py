"""What every section of summary.md reads: one view of a run's tables, built once."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report.tables import (
    CONFIG_KEYS,
    CellIndex,
    conform,
    latest,
    summarize,
    varying,
    varying_within,
)


@dataclass
class RunView:
    """What every section reads: the latest rows, the ok ones, their summary, env.json."""

    rows: pd.DataFrame
    ok: pd.DataFrame
    summary: pd.DataFrame
    env: dict
    config_keys: list  # axes that split a dataset x loss section into sub-tables
    label_keys: list  # axes that name a row of the cross-section tables (warm-up etc.)
    pytest_benchmark: bool
    index: CellIndex

    @classmethod
    def of(cls, results: pd.DataFrame, env: dict) -> RunView:
        rows = conform(latest(results), ("noisy", "session", "epoch_s_spread"))
        config_keys = varying_within(rows, CONFIG_KEYS)
        summary = summarize(rows)
        if env.get("source") == "pytest-benchmark":  # no accuracy measured: no column for it
            summary["_no_accuracy"] = True
        return cls(
            rows=rows,
            ok=rows[rows["status"] == "ok"],
            summary=summary,
            index=CellIndex(summary, rows),
            env=env,
            config_keys=config_keys,
            label_keys=varying(rows, ("dataset", "loss")) + config_keys,
            pytest_benchmark=env.get("source") == "pytest-benchmark",
        )
