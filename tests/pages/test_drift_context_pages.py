"""Drift numbers with context on the pages (issue 15, problem 11): labelled statistic vs p-value, effect sizes."""

from __future__ import annotations

from tests.pages.helpers import app_as, no_exceptions
from tests.pages.test_dataset_pages import customers, people  # noqa: F401  (fixtures)
from tests.pages.test_monitoring_pages import drifting  # noqa: F401  (fixture)


def test_the_drift_detail_labels_statistic_and_p_value_and_shows_the_shift(drifting):  # noqa: F811
    _, people_, _ = drifting
    at = app_as(people_["data_scientist"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    detail = at.dataframe[0].value
    assert "score" not in detail.columns
    row = detail[detail["column"] == "age"].iloc[0]
    assert row["test"].split()[0] in ("KS", "Wasserstein", "Jensen-Shannon", "chi-square", "|z|")
    assert "p-value" in row["test"] or "distance" in row["test"]
    assert row["change (reference → current)"].startswith("mean ") and " → " in row["change (reference → current)"]
    assert set(detail["drifted"]) <= {"yes", "no"}
    assert all(len(str(v)) < 60 for v in detail.to_numpy().ravel())
