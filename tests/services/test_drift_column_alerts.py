"""Per-column drift alerts for columns marked important on the monitor (issue 15, problem 11), both databases."""

from __future__ import annotations

import re

import pytest

from mlops_core.errors import ValidationError
from mlops_core.services import monitoring
from tests.services.monitoring_world import customers, log_traffic, make_world


def test_an_important_column_alerts_alone_below_the_dataset_share(db, people):
    world = make_world(db, people)
    args = dict(window_kind="last_n", window_size=300, schedule_seconds=None, retraining_policy="off", drift_share=0.75)
    monitoring.configure_monitor(db, actor=people["ops"], deployment_name="churn", **args)
    traffic = customers(300, seed=9)
    traffic["age"] = traffic["age"] + 40.0  # ~4 reference sd; the other three columns look like training
    log_traffic(db, world, traffic)

    plain = monitoring.run_monitor(db, deployment_name="churn")
    check = plain["checks"][0]
    assert check["dataset_drifted"] is False and "age" in check["drifted_columns"]
    assert "plan" not in check["drifted_columns"]
    assert monitoring.list_alerts(db, kind="drift") == []  # below the dataset share: no dataset-level alert

    mon = monitoring.configure_monitor(
        db, actor=people["ops"], deployment_name="churn", important_columns=["age", "plan"], **args
    )
    assert mon.important_columns == ["age", "plan"]
    marked = monitoring.run_monitor(db, deployment_name="churn")
    alerts = monitoring.list_alerts(db, kind="drift")
    assert len(alerts) == 1 and marked["alerts_opened"] == [alerts[0].id]  # plan did not drift: no alert for it
    title = alerts[0].title
    m = re.fullmatch(r"age drifted on churn: mean ([\d.]+) → ([\d.]+), ([\d.]+) sd", title)
    assert m, title
    assert 35 < float(m[1]) < 45 and 75 < float(m[2]) < 85 and 3.0 < float(m[3]) < 5.5
    assert alerts[0].evidence["column"] == "age" and alerts[0].evidence["effect"]["kind"] == "mean"

    with pytest.raises(ValidationError, match="important columns"):
        monitoring.configure_monitor(db, actor=people["ops"], deployment_name="churn", important_columns=[3], **args)
