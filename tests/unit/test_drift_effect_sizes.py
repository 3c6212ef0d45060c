"""Effect sizes and labelled statistics added to detect_drift's per-column results (issue 15, problem 11)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from hub_ui import drift_format
from mlops_core.monitoring.drift import DriftResult, detect_drift


def _frames():
    rng = np.random.default_rng(7)
    ref = pd.DataFrame(
        {
            "tenure": rng.normal(13.0, 0.6, 400),
            "region": rng.choice(["north", "south", "east"], 400, p=[0.32, 0.38, 0.30]),
        }
    )
    cur = pd.DataFrame(
        {
            "tenure": rng.normal(15.5, 0.6, 400),
            "region": rng.choice(["north", "south", "east"], 400, p=[0.51, 0.25, 0.24]),
        }
    )
    return ref, cur


def test_numeric_columns_carry_both_means_the_shift_in_reference_sd_and_the_ks_statistic():
    ref, cur = _frames()
    col = detect_drift(ref, cur).columns["tenure"]
    assert col.method == "ks" and col.drifted
    assert 0.9 < col.statistic <= 1.0 and col.score < 1e-10  # D is the statistic, score stays the p-value
    e = col.effect
    assert e["kind"] == "mean"
    assert abs(e["reference_mean"] - ref["tenure"].mean()) < 1e-4
    assert abs(e["current_mean"] - cur["tenure"].mean()) < 1e-4
    assert abs(e["shift_sd"] - (cur["tenure"].mean() - ref["tenure"].mean()) / ref["tenure"].std(ddof=0)) < 1e-3
    assert e["shift_sd"] > 3


def test_categorical_columns_name_the_value_whose_share_changed_most():
    ref, cur = _frames()
    col = detect_drift(ref, cur).columns["region"]
    assert col.method == "chisquare" and col.statistic > 0
    e = col.effect
    assert e["kind"] == "share" and e["value"] == "north"
    assert abs(e["reference_share"] - (ref["region"] == "north").mean()) < 1e-6
    assert abs(e["current_share"] - (cur["region"] == "north").mean()) < 1e-6


def test_the_verdicts_are_unchanged_and_the_new_fields_survive_json():
    ref, cur = _frames()
    result = detect_drift(ref, cur)
    payload = result.to_dict()
    assert set(payload["columns"]["tenure"]) >= {"method", "score", "threshold", "drifted", "column_type"}
    restored = DriftResult.from_dict(json.loads(json.dumps(payload, allow_nan=False)))
    assert restored == result
    # distances have no separate statistic
    big = detect_drift(pd.concat([ref] * 3), pd.concat([cur] * 3)).columns["tenure"]
    assert big.method == "wasserstein" and big.statistic is None and big.effect["shift_sd"] > 3


def test_the_table_labels_statistic_and_p_value_apart_and_keeps_cells_short():
    ref, cur = _frames()
    result = detect_drift(ref, cur)
    row = drift_format.column_row("tenure", result.columns["tenure"])
    assert row["test"].startswith("KS statistic ") and ", p-value " in row["test"]
    assert "e-" in row["test"].split("p-value ")[1]  # tiny p-values in scientific notation
    assert max(len(v) for v in row.values()) < 45
    assert (
        row["change (reference → current)"].startswith("mean 1")
        and " → 15.5 (+" in row["change (reference → current)"]
        and "sd)" in row["change (reference → current)"]
    )
    assert row["drifted"] == "yes"
    assert "method" not in row  # the "test" cell names it already
    assert drift_format.effect_text(result.columns["region"].effect).startswith("north 3")
    assert drift_format.num(2.74e-76) == "2.74e-76" and drift_format.num(0.41234) == "0.412"
    assert drift_format.stat_text("jensenshannon", 0.123456) == "Jensen-Shannon distance 0.123"


def test_drift_numbers_read_in_plain_units_and_a_null_shift_has_no_sign():
    from hub_ui.drift_format import effect_text, num

    assert [num(v) for v in (1340.2, 878.4, 999.7, -1340, 0.0123, 15.5)] == [
        "1,340",
        "878",
        "1,000",
        "-1,340",
        "0.0123",
        "15.5",
    ]
    assert num(2.7e-76) == "2.70e-76"  # p-values keep their scientific notation
    shifted = {"kind": "mean", "reference_mean": 1340.2, "current_mean": 878.4, "shift_sd": -2.04}
    assert effect_text(shifted) == "mean 1,340 → 878 (-2.0 sd)"
    still = {"kind": "mean", "reference_mean": 1340.2, "current_mean": 1310.0, "shift_sd": -0.04}
    assert effect_text(still) == "mean 1,340 → 1,310 (0.0 sd)"
