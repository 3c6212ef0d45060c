"""One request must not stop drift monitoring (security issue 12, finding 3), on SQLite and Postgres.

The attacker's `"region": "\\ud800"` was answered 200 and logged; every later check then failed decoding the
prediction log, with no alert. Now such a row (logged before the API refused it) is skipped and counted, and a
monitor run that fails for any reason opens one "monitoring_down" alert, kept while it fails, resolved when a
check succeeds again."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from mlops_core.db import utcnow
from mlops_core.models.collab import InboxItem
from mlops_core.models.deployments import Prediction
from mlops_core.models.jobs import Job
from mlops_core.models.monitoring import Alert
from mlops_core.models.users import User
from mlops_core.services import audit, monitoring
from mlops_core.services.monitoring import checks
from tests.services.experiments_world import run_jobs
from tests.services.monitoring_world import customers, log_traffic, make_world


def _log_poisoned_row(db, world, *, labelled: bool = False) -> None:
    """What the old API wrote for the attacker's request: inputs holding a lone surrogate."""
    rec = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in customers(1, seed=9).iloc[0].to_dict().items()
        if k != "churned"
    }
    rec["plan"] = "\ud800"
    now = utcnow()
    with db.unit_of_work() as s:
        s.add(
            Prediction(
                request_id=uuid.uuid4().hex,
                deployment_id=world.deployment_id,
                model_version_id=world.model_version_id,
                created_at=now,
                inputs=rec,
                prediction={"prediction": 1} if not labelled else "\udfff",
                latency_ms=5.0,
                status="ok",
                label=1 if labelled else None,
                labelled_at=now if labelled else None,
            )
        )


def _monitoring_down(db):
    return monitoring.list_alerts(db, kind="monitoring_down")


def test_a_logged_row_with_a_lone_surrogate_is_skipped_and_counted_and_the_check_still_runs(db, people):
    world = make_world(db, people)
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name="churn",
        window_kind="last_n",
        window_size=500,
        schedule_seconds=None,
        retraining_policy="off",
    )
    log_traffic(db, world, customers(200, seed=5), label_share=0.5)
    _log_poisoned_row(db, world)
    _log_poisoned_row(db, world, labelled=True)

    summary = monitoring.run_monitor(db, deployment_name="churn")  # raised an orjson error before the fix

    check = summary["checks"][0]
    assert check["status"] == "ok" and check["dataset_drifted"] is not None
    assert check["skipped_rows"] == 2 and check["skipped_labelled_rows"] == 1
    stored = monitoring.get_check(db, check["check_id"])
    assert stored.status == "ok"
    assert "2 logged prediction(s) in the window could not be decoded" in stored.error
    assert "1 labelled prediction(s) could not be decoded" in stored.error
    assert stored.health.unreadable_rows == 2
    events = audit.list_events(db, actor=people["admin"], action="monitor.check").events
    assert any("could not be decoded" in e.summary for e in events)
    assert _monitoring_down(db) == []


def test_a_failing_monitor_opens_one_alert_while_it_fails_and_it_resolves_when_a_check_succeeds(
    db, people, monkeypatch
):
    world = make_world(db, people)
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name="churn",
        window_kind="last_n",
        window_size=500,
        schedule_seconds=None,
        retraining_policy="off",
    )
    log_traffic(db, world, customers(100, seed=5))
    real = checks._compute_check

    def broken(*a, **kw):
        raise ValueError("str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)")

    monkeypatch.setattr(checks, "_compute_check", broken)
    # "Run a check now" on the page: the queued job fails, and says why...
    job_id = monitoring.enqueue_monitor_run(db, actor=people["ops"], deployment_name="churn")
    run_jobs(db)
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and "surrogates not allowed" in (job.error or "")
    # ...and ops get an alert of its own.
    [alert] = _monitoring_down(db)
    assert alert.state == "open" and alert.severity == "critical" and alert.deployment_name == "churn"
    assert alert.title.startswith("Monitoring is not running for churn since ")
    assert alert.title.endswith(
        ": ValueError: str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)"
    )
    with db.read() as s:
        omar = s.exec(select(User.id).where(User.username == "omar")).one()
        inbox = s.exec(select(InboxItem.entity_id).where(InboxItem.user_id == omar, InboxItem.kind == "alert")).all()
    assert [str(i) for i in inbox] == [str(alert.id)]

    # The scheduler (or the CLI) keeps failing: the same alert is bumped, not a new one each time.
    for _ in range(2):
        with pytest.raises(ValueError):
            monitoring.run_monitor(db, deployment_name="churn")
    [again] = _monitoring_down(db)
    assert again.id == alert.id and again.occurrences == 3 and again.title == alert.title

    # Fixed: the next check succeeds and resolves the alert.
    monkeypatch.setattr(checks, "_compute_check", real)
    summary = monitoring.run_monitor(db, deployment_name="churn")
    assert summary["checks"][0]["status"] == "ok"
    resolved = monitoring.get_alert(db, alert.id)
    assert resolved.state == "resolved" and resolved.resolved_by == "system"
    assert "succeeded again" in resolved.resolve_note
    with db.read() as s:
        assert s.exec(select(Alert).where(Alert.open_key.is_not(None), Alert.kind == "monitoring_down")).first() is None

    # A later failure is a new incident: a new alert.
    monkeypatch.setattr(checks, "_compute_check", broken)
    with pytest.raises(ValueError):
        monitoring.run_monitor(db, deployment_name="churn")
    assert [a.state for a in _monitoring_down(db)] == ["open", "resolved"]
