"""Schema anomaly detection on crafted versions: one test per kind of finding (Breck et al., SysML 2019).

Each test registers a clean first version (its schema is inferred), then a crafted second version,
and checks the finding a data engineer would read: its severity, column, kind and sentence.
"""

import numpy as np
import pandas as pd
import pytest

from mlops_core.services import datasets

N = 300


def _base(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": np.round(rng.normal(50_000, 12_000, n).clip(1_000, None), 2),
            # equal shares in every version, so "plan" never drifts by chance
            "plan": rng.permutation(np.array(["basic", "plus", "pro"])[np.arange(n) % 3]),
            "score": rng.random(n),
        }
    )


@pytest.fixture
def first(db, people):
    return datasets.register_version_from_frame(db, actor=people["data_engineer"], dataset_name="t", frame=_base())


def _second(db, people, frame):
    v = datasets.register_version_from_frame(db, actor=people["data_engineer"], dataset_name="t", frame=frame)
    return v, datasets.get_report(db, v.id).findings


def _one(findings, kind, column=None):
    hits = [f for f in findings if f.kind == kind and (column is None or f.column == column)]
    assert hits, f"no {kind} finding for {column}; got {[(f['kind'], f['column']) for f in findings]}"
    return hits[0]


def test_a_clean_new_version_has_no_errors_or_warnings(db, people, first):
    v, findings = _second(db, people, _base(seed=1))
    assert v.status == "validated"
    assert [f for f in findings if f.severity != "info"] == []


def test_a_missing_column_is_an_error_that_names_it(db, people, first):
    v, findings = _second(db, people, _base(seed=1).drop(columns=["plan"]))
    f = _one(findings, "missing_column", "plan")
    assert f.severity == "error" and "`plan` is missing" in f.message
    assert v.status == "failed"


def test_an_extra_column_is_a_warning(db, people, first):
    frame = _base(seed=1).assign(referrer="web")
    v, findings = _second(db, people, frame)
    f = _one(findings, "extra_column", "referrer")
    assert f.severity == "warning" and "not in the schema" in f.message
    assert v.status == "validated"


def test_a_type_change_is_an_error(db, people, first):
    frame = _base(seed=1)
    frame["age"] = frame["age"].astype(str).where(frame.index > 0, "unknown")
    v, findings = _second(db, people, frame)
    f = _one(findings, "type_change", "age")
    assert f.severity == "error" and "string values but the schema says integer" in f.message


def test_nulls_above_the_allowed_share_are_an_error(db, people, first):
    frame = _base(seed=1)
    frame.loc[:29, "income"] = np.nan
    v, findings = _second(db, people, frame)
    f = _one(findings, "nulls_above_allowed", "income")
    assert f.severity == "error" and "30 of 300 rows (10.0%)" in f.message


def test_values_out_of_range_are_an_error_with_examples(db, people, first):
    frame = _base(seed=1)
    frame.loc[:2, "income"] = -1.0
    v, findings = _second(db, people, frame)
    f = _one(findings, "out_of_range", "income")
    assert f.severity == "error" and "3 below the minimum 0" in f.message and "-1" in f.message


def test_unseen_categories_are_a_warning_naming_them(db, people, first):
    frame = _base(seed=1)
    frame.loc[:4, "plan"] = "Pro "
    v, findings = _second(db, people, frame)
    f = _one(findings, "unseen_categories", "plan")
    assert f.severity == "warning" and "'Pro ' (5)" in f.message


def test_duplicate_rows_are_a_warning_with_their_count(db, people, first):
    frame = _base(seed=1)
    frame = pd.concat([frame, frame.iloc[:7]], ignore_index=True)
    v, findings = _second(db, people, frame)
    f = _one(findings, "duplicate_rows")
    assert f.severity == "warning" and f.message.startswith("7 of 307 rows")


def test_a_constant_column_is_a_warning(db, people, first):
    frame = _base(seed=1).assign(plan="basic")
    v, findings = _second(db, people, frame)
    f = _one(findings, "constant_column", "plan")
    assert f.severity == "warning" and "same value (basic) in every row" in f.message


def test_distribution_drift_against_the_previous_version_is_a_warning(db, people, first):
    frame = _base(seed=1)
    frame["score"] = frame["score"] * 0.3 + 0.7
    v, findings = _second(db, people, frame)
    f = _one(findings, "drift", "score")
    assert f.severity == "warning" and "t@v1" in f.message
    report = datasets.get_report(db, v.id)
    assert report.drift.columns["score"].drifted is True
    assert report.drift.columns["plan"].drifted is False
