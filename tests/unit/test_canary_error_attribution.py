"""A failed prediction is logged under the model version that failed: a canary challenger's crash is the
challenger's, so the Canary tab's error-rate comparison sees it (issue 15, ops). No database: the writer is a list."""

from __future__ import annotations

import pytest

from mlops_core.serving import app as serving


class _Model:
    def __init__(self, version_id: int, fail: bool = False):
        self.model_version_id = version_id
        self.fail = fail

    def predict(self, records):
        if self.fail:
            raise RuntimeError(f"model {self.model_version_id} broke")
        return [1 for _ in records]

    def predict_scored(self, records):
        return self.predict(records), [0.9 for _ in records]


class _Writer:
    def __init__(self):
        self.rows: list[dict] = []

    def put(self, rows):
        self.rows.extend(rows)


class _State:
    def __init__(self):
        self.writer = _Writer()


def _served(champion, canary, share):
    return serving.Served(id=7, name="churn", generation=1, champion=champion, canary=canary, canary_share=share)


@pytest.mark.parametrize(
    ("champion_fails", "canary_fails", "share", "expected"),
    [
        (False, True, 1.0, 2),  # the challenger crashed: its own error
        (True, False, 1.0, 1),  # the champion's shadow prediction crashed first: the champion's
        (True, False, 0.0, 1),  # no canary traffic: the champion's
    ],
)
def test_a_500_is_logged_under_the_version_that_failed(champion_fails, canary_fails, share, expected):
    state = _State()
    served = _served(_Model(1, champion_fails), _Model(2, canary_fails), share)
    resp = serving.score_and_log(state, served, [{"x": 1}], 0.0)
    assert resp.status_code == 500
    (row,) = state.writer.rows
    assert row["status"] == "error" and row["error"].startswith("500: model")
    assert row["model_version_id"] == expected
