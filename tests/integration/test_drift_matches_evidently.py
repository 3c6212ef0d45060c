"""detect_drift must give the same verdicts as evidently 0.7.23's DataDriftPreset defaults.

Integration tier: it runs evidently itself (ten scenarios up to 20,000 rows, ~70 s of CPU), which
`make check`'s unit tier cannot afford; `make test` runs it.

evidently is slow, so each scenario (one mixed frame per window size, with and without injected
drift) is run through evidently once and shared by the per-kind tests below.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import pytest

from mlops_core.monitoring import ColumnDrift, DriftResult, detect_drift
from mlops_core.monitoring.evidently_report import evidently_drift_verdicts, render_drift_report_html

# ---------------------------------------------------------------------------------------------
# Scenario data
# ---------------------------------------------------------------------------------------------

KINDS = {
    "numerical": ["num_normal", "num_skewed", "int_many"],
    "categorical": ["cat_str", "category", "lowcard_int", "string_dtype"],
    "binary": ["binary_str", "binary_int", "lowcard_float2"],
    "low_cardinality_numeric": ["lowcard_float", "lowcard_float2", "lowcard_int"],
    "boolean": ["flag", "flag_with_nulls"],
    "nulls": ["num_nulls", "cat_str_nulls", "flag_with_nulls"],
}

# (reference rows, current rows): tiny windows (< 1000 rows), a small reference with a large
# current window, and large windows (> 1000 rows, where evidently switches tests).
SIZES = [(50, 50), (300, 300), (300, 2000), (5000, 5000), (20000, 20000)]
SCENARIOS = [(ref_rows, cur_rows, drift) for ref_rows, cur_rows in SIZES for drift in (False, True)]


def _scenario_id(scenario) -> str:
    ref_rows, cur_rows, drift = scenario
    return f"{ref_rows}vs{cur_rows}-{'drift' if drift else 'nodrift'}"


def make_frame(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = 0.6 if drift else 0.0
    cats = ["a", "b", "c", "d", "e", "f"]
    cat_p = [0.05, 0.1, 0.15, 0.2, 0.2, 0.3] if drift else [0.3, 0.2, 0.2, 0.15, 0.1, 0.05]
    num_nulls = rng.normal(10 + shift, 2, rows)
    num_nulls[rng.random(rows) < 0.15] = np.nan
    num_nulls[rng.random(rows) < 0.01] = np.inf
    flag_with_nulls = pd.Series(rng.random(rows) < 0.5, dtype=object)
    flag_with_nulls[rng.random(rows) < 0.2] = None
    cat_nulls = pd.Series(rng.choice(["x", "y", "z"], rows, p=[0.2, 0.3, 0.5] if drift else [0.5, 0.3, 0.2]))
    cat_nulls[rng.random(rows) < 0.2] = None
    return pd.DataFrame(
        {
            "num_normal": rng.normal(shift, 1, rows),
            "num_skewed": rng.lognormal(0, 0.5, rows),
            "int_many": rng.integers(0, 100, rows),
            "num_nulls": num_nulls,
            "cat_str": rng.choice(cats, rows, p=cat_p),
            "cat_str_nulls": cat_nulls,
            "category": pd.Categorical(rng.choice(["p", "q", "r"], rows), categories=["p", "q", "r", "unused"]),
            "string_dtype": pd.Series(rng.choice(["s1", "s2", "s3", "s4"], rows), dtype="string"),
            "binary_str": rng.choice(["yes", "no"], rows, p=[0.8, 0.2] if drift else [0.5, 0.5]),
            "binary_int": rng.integers(0, 2, rows),
            "lowcard_float": rng.choice([0.0, 0.5, 1.0, 1.5], rows, p=[0.1, 0.2, 0.3, 0.4] if drift else None),
            "lowcard_float2": rng.choice([0.0, 1.0], rows),
            "lowcard_int": rng.integers(0, 7, rows),
            "flag": rng.random(rows) < (0.75 if drift else 0.5),
            "flag_with_nulls": flag_with_nulls,
        }
    )


@functools.lru_cache(maxsize=None)
def scenario(ref_rows: int, cur_rows: int, drift: bool):
    reference = make_frame(ref_rows, seed=ref_rows + cur_rows, drift=False)
    current = make_frame(cur_rows, seed=ref_rows + cur_rows + 1, drift=drift)
    return reference, current, detect_drift(reference, current), evidently_drift_verdicts(reference, current)


def assert_columns_agree(ours: DriftResult, theirs: dict, columns) -> None:
    for column in columns:
        expected = theirs["columns"].get(column)
        got = ours.columns.get(column)
        if expected is None:  # evidently does not check this column: neither may we
            assert got is None, f"{column}: evidently skips it but we checked it ({got})"
            continue
        assert got is not None, f"{column}: evidently checks it ({expected}) but we did not ({ours.skipped})"
        assert got.method == expected["method"], f"{column}: {got} vs evidently {expected}"
        assert got.drifted == expected["drifted"], f"{column}: {got} vs evidently {expected}"
        assert math.isclose(got.threshold, expected["threshold"]), f"{column}: {got} vs evidently {expected}"
        assert math.isclose(got.score, expected["score"], rel_tol=1e-6, abs_tol=1e-9), (
            f"{column}: {got} vs evidently {expected}"
        )


# ---------------------------------------------------------------------------------------------
# Agreement with evidently's DataDriftPreset
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("case", SCENARIOS, ids=_scenario_id)
def test_column_verdicts_equal_evidentlys_data_drift_preset(case, kind):
    _, _, ours, theirs = scenario(*case)
    assert_columns_agree(ours, theirs, KINDS[kind])


@pytest.mark.parametrize("case", SCENARIOS, ids=_scenario_id)
def test_the_dataset_verdict_and_the_checked_columns_equal_evidentlys(case):
    _, _, ours, theirs = scenario(*case)
    assert set(ours.columns) == set(theirs["columns"])
    assert ours.number_of_columns == theirs["number_of_columns"]
    assert ours.number_of_drifted_columns == theirs["number_of_drifted_columns"]
    assert math.isclose(ours.drift_share, theirs["drift_share"])
    assert ours.dataset_drifted == theirs["dataset_drifted"]
    assert "flag_with_nulls" in ours.skipped  # object column of booleans: evidently's "unknown" type


@pytest.mark.parametrize("rows", [300, 5000])
def test_injected_drift_is_detected_and_identical_windows_show_none(rows):
    *_, drifted, _ = scenario(rows, rows, True)
    *_, calm, _ = scenario(rows, rows, False)
    assert {"num_normal", "cat_str", "binary_str", "flag"} <= set(drifted.drifted_columns)
    assert drifted.dataset_drifted
    assert not calm.dataset_drifted


def test_a_drifted_share_equal_to_drift_share_makes_the_dataset_drifted_like_evidently():
    rng = np.random.default_rng(11)
    rows = 2000
    reference = pd.DataFrame({k: rng.normal(0, 1, rows) for k in "abcd"})
    current = pd.DataFrame({k: rng.normal(3 if k in "ab" else 0, 1, rows) for k in "abcd"})
    ours = detect_drift(reference, current)
    theirs = evidently_drift_verdicts(reference, current)
    assert ours.drift_share == 0.5 == theirs["drift_share"]
    assert ours.dataset_drifted is True and theirs["dataset_drifted"] is True
    assert_columns_agree(ours, theirs, "abcd")


def _texts(rng, rows, bias):
    words = "refund late broken great support slow fast price quality order delivery app".split()
    p = np.ones(len(words))
    p[:4] += bias
    p /= p.sum()
    return [" ".join(rng.choice(words, 6, p=p)) + f" ticket {rng.integers(10**6)}" for _ in range(rows)]


def test_free_text_columns_get_evidentlys_text_content_drift_verdicts():
    rng = np.random.default_rng(5)
    rows = 1200  # > 1000 reference rows: evidently's absolute text-content drift (domain classifier AUC)
    reference = pd.DataFrame({"comment": _texts(rng, rows, 0), "x": rng.normal(size=rows)})
    current = pd.DataFrame({"comment": _texts(rng, rows, 4), "x": rng.normal(size=rows)})
    ours = detect_drift(reference, current)
    theirs = evidently_drift_verdicts(reference, current)
    assert ours.columns["comment"].column_type == "text"
    assert ours.columns["comment"].method == "abs_text_content_drift"
    assert_columns_agree(ours, theirs, ["comment", "x"])


def test_small_free_text_windows_use_the_percentile_text_test():
    # Checked against evidently by hand: its percentile test costs ~12 s per run, too slow for here.
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"comment": _texts(rng, 200, 0)})
    drifted = detect_drift(reference, pd.DataFrame({"comment": _texts(rng, 200, 4)})).columns["comment"]
    calm = detect_drift(reference, pd.DataFrame({"comment": _texts(rng, 200, 0)})).columns["comment"]
    assert drifted.method == calm.method == "perc_text_content_drift"
    assert drifted.threshold == 0.95
    assert drifted.drifted and not calm.drifted


def test_a_column_subset_gets_the_same_verdicts_as_the_preset_restricted_to_it():
    reference, current, _, _ = scenario(300, 300, True)
    subset = ["num_normal", "cat_str", "flag"]
    ours = detect_drift(reference, current, columns=subset)
    theirs = evidently_drift_verdicts(reference, current, columns=subset)
    assert list(ours.columns) == subset
    assert_columns_agree(ours, theirs, subset)
    assert ours.dataset_drifted == theirs["dataset_drifted"]


# ---------------------------------------------------------------------------------------------
# Robustness and bad input
# ---------------------------------------------------------------------------------------------


def test_an_all_null_column_is_skipped_instead_of_crashing():
    reference, current, _, _ = scenario(300, 300, True)
    reference = reference.assign(empty_float=np.nan, empty_object=None)
    current = current.assign(empty_float=np.nan, empty_object=None)
    result = detect_drift(reference, current)
    assert "empty_float" in result.skipped and "empty_object" in result.skipped
    assert "empty_float" not in result.columns
    # The other columns keep evidently's verdicts (evidently itself raises on the empty float column).
    theirs = evidently_drift_verdicts(reference.drop(columns=["empty_float"]), current.drop(columns=["empty_float"]))
    assert_columns_agree(result, theirs, [c for c in current.columns if c != "empty_float"])
    assert result.dataset_drifted == theirs["dataset_drifted"]


def test_infinite_values_are_dropped_like_evidentlys_column_check():
    rng = np.random.default_rng(0)
    values = rng.normal(size=3000)
    values[::100] = np.inf  # no NaN in the column: evidently's dataset count keeps the infs
    reference = pd.DataFrame({"x": values, "y": rng.normal(size=3000)})
    current = pd.DataFrame({"x": rng.normal(1, 1, 3000), "y": rng.normal(size=3000)})
    ours = detect_drift(reference, current)
    theirs = evidently_drift_verdicts(reference, current)
    assert_columns_agree(ours, theirs, ["x", "y"])
    assert ours.number_of_drifted_columns == 1 and ours.drift_share == 0.5 and ours.dataset_drifted


def test_a_column_that_is_null_only_in_the_current_window_is_skipped():
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    current = pd.DataFrame({"x": [np.nan] * 50, "y": np.arange(50.0)})
    result = detect_drift(reference, current)
    assert "no non-null values in the current data" in result.skipped["x"]
    assert list(result.columns) == ["y"]


def test_mismatched_columns_raise_a_value_error_naming_them():
    reference = pd.DataFrame({"age": [1.0, 2.0], "plan": ["a", "b"]})
    current = pd.DataFrame({"age": [1.0, 2.0], "region": ["n", "s"]})
    with pytest.raises(ValueError, match="plan") as excinfo:
        detect_drift(reference, current)
    assert "region" in str(excinfo.value)
    with pytest.raises(ValueError, match="income"):
        detect_drift(reference, current, columns=["age", "income"])


def test_an_empty_current_frame_raises_a_clear_value_error():
    reference = pd.DataFrame({"age": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="current data is empty"):
        detect_drift(reference, reference.iloc[0:0])
    with pytest.raises(ValueError, match="reference data is empty"):
        detect_drift(reference.iloc[0:0], reference)


def test_an_explicitly_requested_column_of_unsupported_type_raises_a_value_error():
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=10), "x": np.arange(10.0)})
    with pytest.raises(ValueError, match="when"):
        detect_drift(frame, frame, columns=["when", "x"])
    assert "when" in detect_drift(frame, frame).skipped


def test_overrides_change_the_method_and_threshold():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b", "c"], 2000)})
    current = pd.DataFrame({"x": rng.normal(0.05, 1, 2000), "c": rng.choice(["a", "b", "c"], 2000)})
    default = detect_drift(reference, current)
    assert default.columns["x"].method == "wasserstein" and not default.columns["x"].drifted
    tuned = detect_drift(
        reference,
        current,
        stattest_overrides={"x": "ks", "c": "chisquare"},
        threshold_overrides={"c": 0.0001},
        column_types={"x": "num"},
    )
    assert tuned.columns["x"].method == "ks" and tuned.columns["x"].threshold == 0.05
    assert tuned.columns["c"].method == "chisquare" and tuned.columns["c"].threshold == 0.0001
    with pytest.raises(ValueError, match="not supported"):
        detect_drift(reference, current, stattest_overrides={"x": "magic"})
    with pytest.raises(ValueError, match="cannot be applied"):
        detect_drift(reference, current, stattest_overrides={"c": "ks"})


def test_results_round_trip_through_json():
    _, _, result, _ = scenario(300, 300, True)
    payload = json.dumps(result.to_dict(), allow_nan=False)
    restored = DriftResult.from_dict(json.loads(payload))
    assert restored == result
    assert isinstance(restored.columns["num_normal"], ColumnDrift)


def test_the_html_report_contains_the_column_names():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"monthly_charges": rng.normal(size=200), "contract_type": rng.choice(["m", "y"], 200)})
    current = pd.DataFrame({"monthly_charges": rng.normal(1, 1, 200), "contract_type": rng.choice(["m", "y"], 200)})
    html = render_drift_report_html(reference, current)
    assert html.lstrip().lower().startswith(("<!doctype html", "<html"))
    assert "monthly_charges" in html and "contract_type" in html
