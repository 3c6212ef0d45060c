"""Monitoring (stage 5) on both databases: checks, deduplicated alerts, late labels, webhook, retraining loop."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import timedelta

import pytest
from sqlmodel import select

from mlops_core.db import utcnow
from mlops_core.errors import Conflict, PermissionDenied, ValidationError
from mlops_core.models.collab import InboxItem
from mlops_core.models.jobs import Job
from mlops_core.models.monitoring import Alert, MonitorCheckColumn, RetrainingProposal
from mlops_core.models.users import User
from mlops_core.services import monitoring, retraining
from mlops_core.services.auth import Actor
from tests.services.monitoring_world import customers, log_traffic, make_world


def _inbox(db, username, kind="alert"):
    with db.read() as s:
        uid = s.exec(select(User.id).where(User.username == username)).one()
        return s.exec(select(InboxItem).where(InboxItem.user_id == uid, InboxItem.kind == kind)).all()


def _configure(db, people, world, **kw):
    args = dict(window_kind="last_n", window_size=300, schedule_seconds=None, retraining_policy="off")
    args.update(kw)
    return monitoring.configure_monitor(db, actor=people["ops"], deployment_name=world.deployment_name, **args)


def test_a_drifting_window_opens_one_drift_alert_even_when_the_drift_persists_across_runs(db, people):
    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=5, drift=1.0))

    first = monitoring.run_monitor(db, deployment_name="churn", actor=people["ops"])
    second = monitoring.run_monitor(db, deployment_name="churn")

    check = first["checks"][0]
    assert check["dataset_drifted"] is True
    assert {"age", "monthly_spend", "plan"} <= set(check["drifted_columns"])
    alerts = monitoring.list_alerts(db, kind="drift")
    assert len(alerts) == 1
    assert first["alerts_opened"] == [alerts[0].id]
    assert second["alerts_opened"] == [] and alerts[0].id in second["alerts_repeated"]
    assert alerts[0].occurrences == 2 and alerts[0].state == "open"
    assert alerts[0].evidence_link.startswith("/deployment-monitoring?deployment=churn&check=")
    # the team of the use case is told once, not once per run
    assert len(_inbox(db, "omar")) == 1 and len(_inbox(db, "sara")) == 1
    assert _inbox(db, "alice") == []
    # per-column scores are stored for the charts
    history = monitoring.drift_history(db, deployment_name="churn")
    assert {h.column for h in history} >= {"age", "monthly_spend", "plan", "support_calls"}
    assert len({h.check_id for h in history}) == 2


def test_after_an_alert_is_resolved_a_new_breach_opens_a_new_alert(db, people):
    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn")
    alert = monitoring.list_alerts(db, kind="drift")[0]

    acked = monitoring.acknowledge_alert(db, actor=people["ops"], alert_id=alert.id, note="looking at the plan mix")
    assert (acked.state, acked.acknowledged_by, acked.ack_note) == ("acknowledged", "omar", "looking at the plan mix")
    with pytest.raises(ValidationError, match="note"):
        monitoring.resolve_alert(db, actor=people["ops"], alert_id=alert.id, note=" ")
    resolved = monitoring.resolve_alert(db, actor=people["admin"], alert_id=alert.id, note="retrained on new data")
    assert (resolved.state, resolved.resolved_by) == ("resolved", "admin")
    with pytest.raises(Conflict, match="already resolved"):
        monitoring.resolve_alert(db, actor=people["ops"], alert_id=alert.id, note="again")

    again = monitoring.run_monitor(db, deployment_name="churn")
    assert len(again["alerts_opened"]) == 1 and again["alerts_opened"][0] != alert.id
    assert len(monitoring.list_alerts(db, kind="drift")) == 2


def test_traffic_like_the_training_data_raises_no_alert(db, people):
    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=9), label_share=1.0)

    summary = monitoring.run_monitor(db, deployment_name="churn")

    check = summary["checks"][0]
    assert check["dataset_drifted"] is False
    assert check["kpi_status"] == "met"
    assert summary["alerts_opened"] == []
    assert monitoring.overview(db)[0].drift in ("green", "amber")
    assert monitoring.overview(db)[0].kpis == "green"


def test_late_labels_are_joined_to_their_predictions_with_coverage_and_delay(db, people):
    world = make_world(db, people)
    _configure(db, people, world, window_size=200)
    start = utcnow() - timedelta(hours=5)
    log_traffic(
        db,
        world,
        customers(200, seed=9),
        start=start,
        every=timedelta(seconds=30),
        label_share=0.6,
        label_delay=timedelta(hours=2),
        correct_share=0.9,
        seed=3,
    )

    check = monitoring.run_monitor(db, deployment_name="churn")["checks"][0]

    labels = check["labels"]
    with db.read() as s:
        from mlops_core.models.deployments import Prediction

        n_labelled = len(s.exec(select(Prediction.id).where(Prediction.labelled_at.is_not(None))).all())
        pairs = s.exec(select(Prediction.prediction, Prediction.label).where(Prediction.labelled_at.is_not(None))).all()
    correct = sum(1 for p, lab in pairs if p["prediction"] == lab)
    assert labels["n_labelled"] == n_labelled and 90 < n_labelled < 150
    assert labels["n_unlabelled"] == 200 - n_labelled
    assert labels["coverage"] == pytest.approx(n_labelled / 200)
    assert labels["delay_p50_s"] == pytest.approx(7200) and labels["delay_max_s"] == pytest.approx(7200)
    assert check["metrics"]["accuracy"] == pytest.approx(correct / n_labelled)
    stored = monitoring.get_check(db, check["check_id"])
    assert stored.label_coverage == pytest.approx(n_labelled / 200)
    assert stored.n_unlabelled == 200 - n_labelled


def test_a_missed_kpi_opens_an_alert_and_a_retraining_proposal_linked_to_it(db, people):
    world = make_world(db, people)
    _configure(db, people, world, retraining_policy="propose")
    log_traffic(db, world, customers(300, seed=9), label_share=1.0, correct_share=0.5, seed=4)

    summary = monitoring.run_monitor(db, deployment_name="churn")
    again = monitoring.run_monitor(db, deployment_name="churn")

    check = summary["checks"][0]
    assert check["kpis"] == {"accuracy": "missed"}
    kpi_alerts = monitoring.list_alerts(db, kind="kpi_missed")
    assert len(kpi_alerts) == 1 and kpi_alerts[0].severity == "critical"
    proposals = retraining.list_proposals(db)
    assert len(proposals) == 1 and again["proposals"] == []
    p = proposals[0]
    assert p.alert_id == kpi_alerts[0].id and p.state == "proposed"
    assert p.base_run_id == world.run_id and p.champion_model_version_id == world.model_version_id
    assert p.config["algorithm"] == "logistic_regression"
    assert p.dataset_version_id == world.dataset_version_id
    assert _inbox(db, "omar", kind="retraining")

    with pytest.raises(PermissionDenied):
        retraining.decide_proposal(db, actor=people["data_scientist"], proposal_id=p.id, approve=True)
    with pytest.raises(ValidationError, match="why"):
        retraining.decide_proposal(db, actor=people["ops"], proposal_id=p.id, approve=False)


def test_a_retraining_proposal_uses_the_newest_validated_dataset_version(db, people):
    from mlops_core.services import datasets

    world = make_world(db, people)
    _configure(db, people, world, retraining_policy="propose")
    newer = datasets.register_version_from_frame(
        db, actor=people["data_engineer"], dataset_name="customers_churn", frame=customers(420, seed=2)
    )
    assert newer.status == "validated", "same generator, new rows: the newer version passes validation by itself"
    log_traffic(db, world, customers(300, seed=5, drift=1.0))

    monitoring.run_monitor(db, deployment_name="churn")

    p = retraining.list_proposals(db)[0]
    assert p.dataset_version_id == newer.id != world.dataset_version_id


def test_approving_a_proposal_queues_a_run_linked_back_to_the_alert(db, people):
    from mlops_core.services import experiments

    world = make_world(db, people)
    _configure(db, people, world, retraining_policy="propose")
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn")
    p = retraining.list_proposals(db)[0]

    decided = retraining.decide_proposal(db, actor=people["ops"], proposal_id=p.id, approve=True, note="go")

    assert decided.state == "training" and decided.decided_by == "omar" and decided.run_id is not None
    run = experiments.get_run(db, decided.run_id)
    assert run.triggered_by_alert_id == p.alert_id
    assert run.dataset_version_id == world.dataset_version_id
    with pytest.raises(Conflict):
        retraining.decide_proposal(db, actor=people["ops"], proposal_id=p.id, approve=True)


def test_the_automatic_policy_queues_the_retraining_run_at_once(db, people):
    from mlops_core.services import experiments

    world = make_world(db, people)
    _configure(db, people, world, retraining_policy="automatic")
    log_traffic(db, world, customers(300, seed=5, drift=1.0))

    summary = monitoring.run_monitor(db, deployment_name="churn")

    assert len(summary["runs_queued"]) == 1
    alert = monitoring.list_alerts(db, kind="drift")[0]
    run = experiments.get_run(db, summary["runs_queued"][0])
    assert run.triggered_by_alert_id == alert.id
    p = retraining.list_proposals(db, alert_id=alert.id)[0]
    assert (p.state, p.policy, p.run_id) == ("training", "automatic", run.id)


def test_error_rate_and_latency_above_their_limits_raise_health_alerts(db, people):
    world = make_world(db, people)
    _configure(db, people, world, max_error_rate=0.05, max_latency_p95_ms=100)
    log_traffic(db, world, customers(300, seed=9), latency_ms=150, error_every=10)

    check = monitoring.run_monitor(db, deployment_name="churn")["checks"][0]

    h = check["health"]
    assert h["volume"] == 300 and h["errors"] == 30 and h["error_rate"] == pytest.approx(0.1)
    lat = sorted(150 + (i % 7) for i in range(300))
    assert h["latency_p50_ms"] == pytest.approx(lat[149] * 0.5 + lat[150] * 0.5)
    assert 150 <= h["latency_p95_ms"] <= 156 and h["latency_p99_ms"] <= 156
    kinds = {a.kind for a in monitoring.list_alerts(db)}
    assert {"error_rate", "latency"} <= kinds
    assert monitoring.overview(db)[0].health == "red"


def test_a_window_of_the_last_hours_only_counts_predictions_in_those_hours(db, people):
    world = make_world(db, people)
    _configure(db, people, world, window_kind="last_hours", window_size=1)
    log_traffic(db, world, customers(50, seed=9), start=utcnow() - timedelta(hours=5), every=timedelta(seconds=1))
    log_traffic(db, world, customers(40, seed=8), start=utcnow() - timedelta(minutes=30), every=timedelta(seconds=1))

    check = monitoring.run_monitor(db, deployment_name="churn")["checks"][0]

    assert check["n_rows"] == 40


def test_a_dead_worker_and_a_failed_ingestion_raise_one_alert_each(db, people):
    from mlops_core.models.jobs import Worker

    world = make_world(db, people)
    _configure(db, people, world)
    old = utcnow() - timedelta(minutes=30)
    with db.unit_of_work() as s:
        s.add(Worker(name="worker-a", hostname="h", pid=1, status="running", heartbeat_at=old))
        s.add(
            Job(
                kind="ingest",
                payload={"source_name": "crm"},
                status="failed",
                error="Traceback\nOSError: gone",
                finished_at=utcnow(),
            )
        )

    monitoring.run_monitor(db, deployment_name="churn")
    monitoring.run_monitor(db, deployment_name="churn")

    by_kind = {}
    for a in monitoring.list_alerts(db):
        by_kind.setdefault(a.kind, []).append(a)
    assert len(by_kind["worker_down"]) == 1 and by_kind["worker_down"][0].occurrences == 2
    assert len(by_kind["ingestion_failed"]) == 1 and "OSError: gone" in by_kind["ingestion_failed"][0].detail
    assert _inbox(db, "omar")  # workspace alerts go to ops


class _FlakyHook(http.server.BaseHTTPRequestHandler):
    bodies: list = []
    fail_first = 1
    delay = 0.0

    def do_POST(self):  # noqa: N802 - http.server's naming
        import json

        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        time.sleep(type(self).delay)
        status = 500 if len(type(self).bodies) <= type(self).fail_first else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    handler = type("Hook", (_FlakyHook,), {"bodies": [], "fail_first": 1, "delay": 0.0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_the_alert_webhook_is_retried_after_a_failure_then_delivered(db, people, hook_server, monkeypatch):
    from mlops_core.config import reload_settings

    server, handler = hook_server
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    monkeypatch.setenv("MLOPS_ALERT_WEBHOOK_URL", url)
    reload_settings()
    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn")
    alert = monitoring.list_alerts(db, kind="drift")[0]
    assert alert.webhook_status == "pending"
    with db.read() as s:
        job_id, payload = s.exec(select(Job.id, Job.payload).where(Job.kind == "alert_webhook")).one()
    assert payload == {"alert_id": alert.id}

    from mlops_core.jobs import JobContext

    result = monitoring.webhook_job(JobContext(job_id=job_id, payload=payload, db=db))

    assert result == {"sent": True}
    assert len(handler.bodies) == 2  # the first POST got a 500, the retry went through
    assert "Data drift on churn" in handler.bodies[-1]["text"]
    assert handler.bodies[-1]["blocks"][0]["type"] == "section"
    after = monitoring.get_alert(db, alert.id)
    assert (after.webhook_status, after.webhook_attempts) == ("sent", 2)


def test_a_slow_webhook_never_blocks_the_check(db, people, hook_server, monkeypatch):
    from mlops_core.config import reload_settings

    server, handler = hook_server
    handler.delay = 5.0
    monkeypatch.setenv("MLOPS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
    reload_settings()
    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=5, drift=1.0))

    t0 = time.perf_counter()
    summary = monitoring.run_monitor(db, deployment_name="churn")
    elapsed = time.perf_counter() - t0

    assert summary["alerts_opened"] and elapsed < 4.0
    assert handler.bodies == []  # nothing was posted by the check itself: a job will do it
    with db.read() as s:
        assert s.exec(select(Job).where(Job.kind == "alert_webhook")).all()


def test_only_ops_and_admin_may_configure_run_and_acknowledge(db, people):
    world = make_world(db, people)
    for role in ("business", "data_engineer", "data_scientist"):
        with pytest.raises(PermissionDenied, match=people[role].username):
            monitoring.configure_monitor(db, actor=people[role], deployment_name=world.deployment_name)
        with pytest.raises(PermissionDenied):
            monitoring.run_monitor(db, deployment_name=world.deployment_name, actor=people[role])
    m = monitoring.configure_monitor(
        db, actor=people["admin"], deployment_name="churn", window_size=300, schedule_seconds=None
    )
    assert m.created_by == "admin"
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn")
    alert = monitoring.list_alerts(db)[0]
    with pytest.raises(PermissionDenied):
        monitoring.acknowledge_alert(db, actor=people["data_scientist"], alert_id=alert.id)


def test_monitor_settings_are_validated_with_a_message_that_says_how_to_fix(db, people):
    world = make_world(db, people)
    with pytest.raises(ValidationError, match="window kind"):
        _configure(db, people, world, window_kind="forever")
    with pytest.raises(ValidationError, match="not supported"):
        _configure(db, people, world, method_overrides={"age": "magic"})
    with pytest.raises(ValidationError, match="once a minute"):
        _configure(db, people, world, schedule_seconds=5)
    with pytest.raises(ValidationError, match="retraining policy"):
        _configure(db, people, world, retraining_policy="sometimes")


def test_a_scheduled_monitor_gets_a_monitor_schedule_and_its_job_runs_the_check(db, people):
    from mlops_core import jobs
    from mlops_core.jobs import JobContext

    world = make_world(db, people)
    m = _configure(
        db, people, world, schedule_seconds=600, method_overrides={"age": "ks"}, threshold_overrides={"age": 0.01}
    )
    sched = [x for x in jobs.list_schedules(db) if x.kind == "monitor"]
    assert len(sched) == 1 and sched[0].interval_seconds == 600 and sched[0].payload["deployment"] == "churn"
    log_traffic(db, world, customers(300, seed=5, drift=1.0))

    summary = monitoring.monitor_job(JobContext(job_id=0, payload=dict(sched[0].payload), db=db))

    assert summary["checks"][0]["monitor_id"] == m.id
    with db.read() as s:
        age = s.exec(
            select(MonitorCheckColumn.method, MonitorCheckColumn.threshold).where(MonitorCheckColumn.column == "age")
        ).one()
    assert tuple(age) == ("ks", 0.01)
    _configure(db, people, world, schedule_seconds=None)
    assert [x for x in jobs.list_schedules(db) if x.kind == "monitor"] == []


def test_every_monitoring_write_is_audited(db, people):
    from mlops_core.services import audit

    world = make_world(db, people)
    _configure(db, people, world)
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn", actor=people["ops"])
    alert = monitoring.list_alerts(db)[0]
    monitoring.acknowledge_alert(db, actor=people["ops"], alert_id=alert.id, note="on it")
    actions = {e.action for e in audit.list_events(db, actor=people["ops"], limit=100).events}
    assert {"monitor.create", "monitor.check", "alert.acknowledge"} <= actions
    with db.read() as s:
        assert s.exec(select(RetrainingProposal)).all() == []  # policy "off": no proposal
        assert s.exec(select(Alert)).all()
    assert Actor.system().role == "admin"


def test_a_finished_retraining_run_that_passes_the_gates_becomes_a_challenger_awaiting_approval(db, people):
    from mlops_core.jobs import queue, runner
    from mlops_core.services import deployments

    world = make_world(db, people, accuracy_target=0.5)
    _configure(db, people, world, retraining_policy="automatic")
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    run_id = monitoring.run_monitor(db, deployment_name="churn")["runs_queued"][0]
    job = queue.claim_next(db, worker="test", kinds=["train"])
    runner.execute(db, job_id=job.id, kind=job.kind, payload=job.payload, worker="test", attempt=job.attempts)

    monitoring.run_monitor(db, deployment_name="churn")  # each check first moves retraining runs on

    p = retraining.list_proposals(db)[0]
    assert p.run_id == run_id and p.model_version_id is not None
    assert p.state == "challenger", p.note
    request_id = p.gate_summary["request_id"]
    request = deployments.get_request(db, request_id)
    assert request.model_version_id == p.model_version_id and request.status == "pending"


def test_alert_filters_list_each_alerting_deployment_once_and_pages_newest_first(db):
    with db.unit_of_work() as s:
        for i, dep in enumerate(["b-dep", "a-dep", "b-dep", None, "a-dep"]):
            s.add(Alert(kind="latency", title=f"breach {i}", deployment_name=dep, dedupe_key=f"k{i}", open_key=f"k{i}"))
    assert monitoring.alert_deployment_names(db) == ["a-dep", "b-dep"]
    first = monitoring.list_alerts(db, limit=2)
    second = monitoring.list_alerts(db, limit=2, offset=2)
    ids = [a.id for a in first + second]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4


def test_the_live_chart_buckets_the_last_day_in_sql_with_volume_errors_and_p95(db):
    """24 hourly buckets of the last 24 h: counts, errors and the p95 latency (numpy's interpolation, the same
    as Postgres' percentile_cont); older predictions are left out."""
    import numpy as np

    from mlops_core.models.deployments import Deployment, Prediction

    now = utcnow()
    recent = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 400.0]
    with db.unit_of_work() as s:
        dep = Deployment(name="live-chart", environment="production")
        s.add(dep)
        s.flush()
        rows = [(now - timedelta(minutes=30), lat, "error" if i < 2 else "ok") for i, lat in enumerate(recent)]
        rows += [(now - timedelta(hours=5, minutes=30), 15.0, "ok"), (now - timedelta(hours=5, minutes=20), 25.0, "ok")]
        rows += [(now - timedelta(hours=30), 999.0, "error")]  # outside the window
        for i, (at, lat, status) in enumerate(rows):
            s.add(
                Prediction(request_id=f"live-{i}", deployment_id=dep.id, created_at=at, latency_ms=lat, status=status)
            )
    live = monitoring.live_health(db, deployment_name="live-chart", hours=24, buckets=24)
    assert len(live) == 24 and sum(b.volume for b in live) == 12
    last, five_h = live[23], live[18]
    assert (last.volume, last.errors, last.error_rate) == (10, 2, 0.2)
    assert last.latency_p95_ms == pytest.approx(float(np.percentile(recent, 95)))
    assert (five_h.volume, five_h.errors) == (2, 0)
    assert five_h.latency_p95_ms == pytest.approx(float(np.percentile([15.0, 25.0], 95)))
    assert all(
        b.volume == 0 and b.latency_p95_ms is None and b.error_rate is None
        for i, b in enumerate(live)
        if i not in (18, 23)
    )
    assert live[1].start - live[0].start == timedelta(hours=1)
