"""services/ops_settings.py on both database legs: SLOs and alert routing of a deployment, edited by ops or
admin only, audited before -> after; the health check's thresholds are the SLOs; a matching alert reaches the
routed people's inbox, email and the deployment's webhook through the issue 18 delivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from mlops_core.db import utcnow
from mlops_core.errors import PermissionDenied, ValidationError
from mlops_core.models.audit import AuditEvent
from mlops_core.models.collab import InboxItem
from mlops_core.models.subscriptions import Delivery, NotificationEvent
from mlops_core.services import delivery, monitoring, ops_settings, subscriptions
from mlops_core.services.monitoring.alerts import Breach, _open_alert
from tests.services.monitoring_world import make_world

HOOK = "https://hooks.example.com/services/T000/B000/xyz"


def _save(db, actor, **kw):
    args = dict(
        deployment_name="churn",
        max_error_rate=0.02,
        max_latency_p95_ms=250.0,
        slo_availability=0.995,
        alert_routes=[
            {
                "kinds": ["error_rate", "latency"],
                "min_severity": "warning",
                "recipients": ["dan"],
                "channels": ["in_app", "email"],
            },
            {
                "kinds": ["*"],
                "min_severity": "critical",
                "recipients": ["role:admin"],
                "channels": ["in_app", "webhook"],
            },
        ],
        webhook_url=HOOK,
    )
    args.update(kw)
    return ops_settings.save_ops_settings(db, actor=actor, **args)


def test_ops_saves_slos_and_routes_the_health_check_uses_them_and_it_is_audited(db, people):
    make_world(db, people)
    out = _save(db, people["ops"])
    assert out.version == 1 and out.max_error_rate == 0.02 and out.max_latency_p95_ms == 250.0
    assert out.slo_availability == 0.995 and [r.recipients for r in out.alert_routes] == [["dan"], ["role:admin"]]
    [mon] = monitoring.list_monitors(db, deployment_name="churn")  # the health check's thresholds
    assert (mon.max_error_rate, mon.max_latency_p95_ms) == (0.02, 250.0)
    # the webhook URL is a credential: shown to those who may edit, blanked for the others
    assert ops_settings.get_ops_settings(db, actor=people["admin"], deployment_name="churn").webhook_url == HOOK
    seen = ops_settings.get_ops_settings(db, actor=people["business"], deployment_name="churn")
    assert seen.webhook_url == "" and seen.webhook_set and seen.slo_availability == 0.995

    again = _save(db, people["admin"], max_error_rate=0.01, webhook_url=None, expected_version=1)
    assert again.version == 2 and again.webhook_set  # None kept the webhook
    with db.read() as s:
        ev = [
            (e.actor_username, e.before, e.after, e.summary)
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.action == "deployment.ops_settings").order_by(AuditEvent.id)
            ).all()
        ]
    assert [e[0] for e in ev] == ["omar", "admin"]
    (_, before, after, summary) = ev[1]
    assert before["max_error_rate"] == 0.02 and after["max_error_rate"] == 0.01
    assert "max_error_rate" in summary and HOOK not in str(after) and after["webhook"] == "set"
    with pytest.raises(Exception, match="changed by someone else"):
        _save(db, people["ops"], expected_version=1)


def test_a_role_that_may_not_edit_is_refused_and_nothing_changes(db, people):
    make_world(db, people)
    for role in ("business", "data_scientist", "data_engineer"):
        with pytest.raises(PermissionDenied):
            _save(db, people[role])
    assert ops_settings.get_ops_settings(db, actor=people["ops"], deployment_name="churn").version == 0


def test_bad_settings_are_refused_with_what_to_fix(db, people):
    make_world(db, people)
    ops = people["ops"]
    with pytest.raises(ValidationError, match="no active user 'nobody'"):
        _save(db, ops, alert_routes=[{"recipients": ["nobody"], "channels": ["email"]}])
    with pytest.raises(ValidationError, match="webhook channel needs"):
        _save(db, ops, webhook_url="", alert_routes=[{"recipients": ["dan"], "channels": ["webhook"]}])
    with pytest.raises(ValidationError, match="unknown alert kind"):
        _save(db, ops, alert_routes=[{"kinds": ["drfit"], "recipients": ["dan"], "channels": ["email"]}])
    with pytest.raises(ValidationError, match="availability objective"):
        _save(db, ops, slo_availability=1.5)
    with pytest.raises(ValidationError, match="not a webhook URL"):
        _save(db, ops, webhook_url="ftp://x")


def _alert(db, w, *, kind: str, severity: str) -> int:
    with db.unit_of_work() as s:
        b = Breach(
            kind=kind,
            severity=severity,
            key=f"{kind}:{severity}:{w.deployment_id}",
            title=f"{kind} on churn",
            detail="",
            evidence={},
            link="",
            deployment_id=w.deployment_id,
            deployment_name="churn",
            use_case_id=w.use_case_id,
        )
        alert, _ = _open_alert(s, b, ["omar", "sara"])
        return alert.id


def test_a_matching_alert_reaches_the_routed_inbox_email_and_webhook(db, people):
    w = make_world(db, people)
    subscriptions.save_notification_settings(db, actor=people["data_engineer"], email="dan@example.com")
    _save(db, people["ops"])
    warn = _alert(db, w, kind="error_rate", severity="warning")
    drift = _alert(db, w, kind="drift", severity="warning")  # no route matches a warning drift
    crit = _alert(db, w, kind="drift", severity="critical")  # the critical route: admin's inbox + webhook
    with db.read() as s:
        items = [(i.entity_id, i.user_id) for i in s.exec(select(InboxItem).where(InboxItem.kind == "alert"))]
        events = {
            e.entity_id: e.id for e in s.exec(select(NotificationEvent).where(NotificationEvent.entity_type == "alert"))
        }
    by_alert = {}
    for entity_id, user_id in items:
        by_alert.setdefault(entity_id, set()).add(user_id)
    ids = {p.username: p.id for p in people.values()}
    assert by_alert[str(warn)] == {ids["omar"], ids["sara"], ids["dan"]}
    assert by_alert[str(drift)] == {ids["omar"], ids["sara"]}
    assert by_alert[str(crit)] == {ids["omar"], ids["sara"], ids["admin"]}
    now = utcnow() + timedelta(hours=1)
    for a in (warn, drift, crit):
        delivery.fan_out(db, events[str(a)], now=now)
    with db.read() as s:
        got = {(r.entity_id, r.channel, r.target) for r in s.exec(select(Delivery))}
    assert (str(warn), "email", "dan@example.com") in got
    assert not any(t == "dan@example.com" and e != str(warn) for e, _, t in got)
    assert (str(crit), "chat", HOOK) in got and not any(t == HOOK and e != str(crit) for e, _, t in got)


def test_slo_status_counts_5xx_only_against_the_availability_target(db, people):
    from mlops_core.models.deployments import Prediction

    w = make_world(db, people)
    _save(db, people["ops"], slo_availability=0.99, alert_routes=[])
    now = utcnow()
    rows = [
        Prediction(
            request_id=f"r{i}",
            deployment_id=w.deployment_id,
            model_version_id=w.model_version_id,
            created_at=now - timedelta(days=1),
            latency_ms=5.0,
            status="error" if i < 3 else "ok",
            error="500: boom" if i < 2 else ("401: no key" if i == 2 else ""),
        )
        for i in range(400)
    ]
    rows.append(
        Prediction(
            request_id="old",
            deployment_id=w.deployment_id,
            created_at=now - timedelta(days=40),
            status="error",
            error="500: old",
        )
    )
    with db.unit_of_work() as s:
        s.add_all(rows)
    st = ops_settings.slo_status(db, deployment_name="churn")
    assert st.requests == 400 and st.server_errors == 2  # the 401 is the client's, the 40-day-old one is outside
    assert st.availability == pytest.approx(0.995) and st.met is True
    assert st.budget_left == pytest.approx(0.5)  # 0.5% of a 1% budget spent

    # No alert while the objective is met; a stricter objective is missed and the system health check alerts.
    assert not [a for a in monitoring.check_system_health(db)["alerts_opened"]]
    _save(db, people["ops"], slo_availability=0.999, alert_routes=[])
    opened = monitoring.check_system_health(db)["alerts_opened"]
    alerts = [a for a in monitoring.list_alerts(db) if a.kind == "slo_availability"]
    assert len(alerts) == 1 and alerts[0].id in opened
    assert "churn misses its availability objective: 99.500% (objective 99.900% over 30 days)" in alerts[0].title
    assert "2 of 400 requests failed" in alerts[0].detail
    again = monitoring.check_system_health(db)
    assert alerts[0].id in again["alerts_repeated"] and not again["alerts_opened"]  # one open alert, repeated
