"""Subscriptions and notification delivery (issue 18): a real SMTP server (aiosmtpd) and a local HTTP
listener receive the messages; cooldown and digest run on an injected clock; unreachable ends are
retried then failed with the reason, and the action that caused them is never blocked."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from mlops_core.config import reload_settings
from mlops_core.db import utcnow
from mlops_core.errors import PermissionDenied, ValidationError
from mlops_core.models.jobs import Job
from mlops_core.models.subscriptions import Delivery, NotificationEvent
from mlops_core.services import collab, delivery, subscriptions, usecases, users


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch):
    """An aiosmtpd server on a free port; yields the list of received messages."""
    from aiosmtpd.controller import Controller

    got: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            got.append(envelope)
            return "250 OK"

    port = _free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    monkeypatch.setenv("MLOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MLOPS_SMTP_PORT", str(port))
    monkeypatch.setenv("MLOPS_PUBLIC_URL", "https://hub.example.org/")
    reload_settings()
    yield got
    ctl.stop()


@pytest.fixture
def hook():
    """A local HTTP listener; yields (url, list of JSON bodies received)."""
    got: list = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/hook", got
    srv.shutdown()
    srv.server_close()


def _event_ids(db) -> list[int]:
    with db.read() as s:
        return list(s.exec(select(NotificationEvent.id).order_by(NotificationEvent.id)))


def _deliveries(db) -> list[Delivery]:
    with db.read() as s:
        rows = list(s.exec(select(Delivery).order_by(Delivery.id)))
        s.expunge_all()  # keep the loaded values after the read's rollback
        return rows


def test_a_watcher_gets_an_email_and_a_chat_message_with_a_link_to_the_object(db, people, smtp, hook):
    url, posts = hook
    ds = people["data_scientist"]
    subscriptions.save_notification_settings(db, actor=ds, email="sara@example.com", webhook_url=url)
    subscriptions.watch(db, actor=ds, entity_type="deployment", entity_id=5)
    assert subscriptions.is_watching(db, actor=ds, entity_type="deployment", entity_id=5)
    with db.unit_of_work() as s:  # any existing notification point feeds watchers
        collab.notify(s, usernames=[], kind="alert", title="Drift on churn", entity_type="deployment", entity_id=5)
    with db.read() as s:  # delivery is a job, not done inside the action
        assert s.exec(select(Job).where(Job.kind == "notify_deliver")).first() is not None
    (ev,) = _event_ids(db)
    assert delivery.deliver_event(db, ev) == {"sent": 2}
    assert len(smtp) == 1 and smtp[0].rcpt_tos == ["sara@example.com"]
    text = smtp[0].content.decode()
    assert "Drift on churn" in text and "https://hub.example.org/deployment?id=5" in text
    assert posts == [{"text": "Drift on churn <https://hub.example.org/deployment?id=5|Open>"}]
    assert {d.status for d in _deliveries(db)} == {"sent"}


def test_cooldown_per_subscriber_object_and_kind_with_an_injected_clock(db, people, smtp, monkeypatch):
    monkeypatch.setenv("MLOPS_NOTIFY_COOLDOWN_MINUTES", "30")
    reload_settings()
    ops = people["ops"]
    subscriptions.save_notification_settings(db, actor=ops, email="omar@example.com")
    subscriptions.watch(db, actor=ops, entity_type="deployment", entity_id=9)
    t0 = utcnow()
    for minutes, kind in [(0, "alert"), (10, "alert"), (12, "deployment_done"), (31, "alert")]:
        with db.unit_of_work() as s:
            collab.notify(
                s, kind=kind, title=f"{kind} at {minutes}", entity_type="deployment", entity_id=9, roles=["nobody"]
            )
        delivery.deliver_event(db, _event_ids(db)[-1], now=t0 + timedelta(minutes=minutes))
    assert [(d.event_kind, d.status) for d in _deliveries(db)] == [
        ("alert", "sent"),
        ("alert", "skipped"),
        ("deployment_done", "sent"),
        ("alert", "sent"),
    ]
    assert _deliveries(db)[1].last_error == "cooldown"
    assert len(smtp) == 3


def test_daily_digest_collects_events_and_sends_one_email_a_day(db, people, smtp):
    biz = people["business"]
    uc = usecases.create_use_case(db, actor=biz, title="Churn digest")
    subscriptions.save_notification_settings(db, actor=biz, email="alice@example.com", mode="digest")
    t0 = utcnow()
    for i in range(3):  # the business owner watches their use case by default
        with db.unit_of_work() as s:
            collab.notify(
                s, kind=f"k{i}", title=f"update {i}", entity_type="use_case", entity_id=uc.id, roles=["nobody"]
            )
        delivery.deliver_event(db, _event_ids(db)[-1], now=t0)
    assert smtp == [] and {d.status for d in _deliveries(db)} == {"pending"}
    assert delivery.send_digests(db, now=t0) == 1
    assert len(smtp) == 1 and all(f"update {i}" in smtp[0].content.decode() for i in range(3))
    with db.unit_of_work() as s:
        collab.notify(s, kind="k9", title="later", entity_type="use_case", entity_id=uc.id, roles=["nobody"])
    delivery.deliver_event(db, _event_ids(db)[-1], now=t0 + timedelta(hours=1))
    assert delivery.send_digests(db, now=t0 + timedelta(hours=2)) == 0  # not a day yet
    assert delivery.send_digests(db, now=t0 + timedelta(hours=24, minutes=1)) == 1
    assert len(smtp) == 2 and "later" in smtp[1].content.decode()


def test_unreachable_smtp_and_webhook_are_retried_then_failed_with_the_reason(db, people, monkeypatch):
    monkeypatch.setenv("MLOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MLOPS_SMTP_PORT", str(_free_port()))  # nobody listens
    reload_settings()
    ds = people["data_scientist"]
    dead = f"http://127.0.0.1:{_free_port()}/hook"
    subscriptions.save_notification_settings(db, actor=ds, email="sara@example.com", webhook_url=dead)
    # the action itself (a mention) succeeds at once: delivery is queued, not attempted
    collab.add_comment(db, actor=people["business"], entity_type="use_case", entity_id=1, body="@sara look")
    assert collab.unread_count(db, actor=ds) == 1
    (ev,) = _event_ids(db)
    t0 = utcnow()
    assert delivery.deliver_event(db, ev, now=t0) == {"pending": 2}
    with db.read() as s:
        retries = s.exec(select(Job).where(Job.kind == "notify_retry")).all()
        s.expunge_all()
    assert len(retries) == 2 and all(j.available_at > t0 for j in retries)
    for d in _deliveries(db):
        for k in range(1, delivery.MAX_ATTEMPTS):
            delivery.attempt(db, d.id, now=t0 + timedelta(minutes=k))
    rows = _deliveries(db)
    assert [(d.channel, d.status, d.attempts) for d in rows] == [("email", "failed", 3), ("chat", "failed", 3)]
    assert "Refused" in rows[0].last_error or "refused" in rows[0].last_error.lower()
    assert rows[1].last_error.startswith("Connect")
    log = delivery.delivery_log(db, actor=people["admin"], status="failed")
    assert len(log) == 2 and log[0].username == "sara"
    with pytest.raises(PermissionDenied):
        delivery.delivery_log(db, actor=ds)


def test_malformed_addresses_and_webhooks_are_refused_when_saved(db, people):
    for bad in ["sara", "sara@", "sara@example", "a b@example.com", "sara@@example.com"]:
        with pytest.raises(ValidationError):
            subscriptions.save_notification_settings(db, actor=people["ops"], email=bad)
    with pytest.raises(ValidationError):
        subscriptions.save_notification_settings(db, actor=people["ops"], email="", webhook_url="ftp://x/y")
    assert subscriptions.get_notification_settings(db, actor=people["ops"]).email is None
    with db.unit_of_work() as s:  # nobody reachable outside the Hub: the event is kept, no delivery job queued
        collab.notify(s, usernames=["omar"], kind="alert", title="x", entity_type="deployment", entity_id=1)
    with db.read() as s:
        assert s.exec(select(Job).where(Job.kind == "notify_deliver")).first() is None
    assert len(_event_ids(db)) == 1


def test_a_deactivated_user_stops_receiving_and_unwatch_mutes_a_role_default(db, people, smtp):
    biz, ds = people["business"], people["data_scientist"]
    uc = usecases.create_use_case(db, actor=biz, title="Churn defaults")
    assert subscriptions.is_watching(db, actor=biz, entity_type="use_case", entity_id=uc.id)
    subscriptions.save_notification_settings(db, actor=biz, email="alice@example.com")
    subscriptions.save_notification_settings(db, actor=ds, email="sara@example.com")
    subscriptions.watch(db, actor=ds, entity_type="use_case", entity_id=uc.id)
    subscriptions.unwatch(db, actor=biz, entity_type="use_case", entity_id=uc.id)
    assert not subscriptions.is_watching(db, actor=biz, entity_type="use_case", entity_id=uc.id)
    users.set_active(db, actor=people["admin"], username="sara", active=False)
    with db.unit_of_work() as s:
        collab.notify(s, kind="kpi", title="KPI missed", entity_type="use_case", entity_id=uc.id, roles=["nobody"])
    assert delivery.deliver_event(db, _event_ids(db)[-1]) == {}
    assert smtp == []


def test_a_use_case_webhook_gets_every_event_of_the_use_case_teams_compatible(db, people, hook):
    url, posts = hook
    uc = usecases.create_use_case(db, actor=people["business"], title="Churn chat")
    with pytest.raises(PermissionDenied):
        subscriptions.set_use_case_webhook(db, actor=people["data_engineer"], use_case_id=uc.id, url=url)
    subscriptions.set_use_case_webhook(db, actor=people["business"], use_case_id=uc.id, url=url, flavor="teams")
    with db.unit_of_work() as s:
        collab.notify(s, kind="kpi", title="KPI <missed>", entity_type="use_case", entity_id=uc.id, roles=["nobody"])
    assert delivery.deliver_event(db, _event_ids(db)[-1]) == {"sent": 1}
    (body,) = posts
    assert body["@type"] == "MessageCard" and body["text"] == "KPI &lt;missed&gt;"
    assert body["potentialAction"][0]["targets"][0]["uri"].endswith(f"/use-case?id={uc.id}")


def test_dataset_versions_and_run_ends_are_events_for_watchers(db, people, smtp):
    import pandas as pd

    from mlops_core.models.experiments import Run
    from mlops_core.services import datasets, experiments

    dan = people["data_engineer"]
    subscriptions.save_notification_settings(db, actor=dan, email="dan@example.com")
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    dv = datasets.register_version_from_frame(db, actor=dan, dataset_name="tiny", frame=frame)
    subscriptions.watch(db, actor=dan, entity_type="dataset", entity_id=dv.dataset_id)
    datasets.register_version_from_frame(db, actor=dan, dataset_name="tiny", frame=frame.assign(a=[5, 6, 7, 8]))
    with db.unit_of_work() as s:
        run = Run(
            name="r",
            status="running",
            source="ui",
            task="classification",
            target="y",
            algorithm="x",
            config={},
            created_by="sara",
        )
        s.add(run)
        s.flush()
        run_id = run.id
    experiments._end_run(db, run_id, "failed", "boom")
    with db.read() as s:
        evs = [(e.kind, e.entity_type) for e in s.exec(select(NotificationEvent).order_by(NotificationEvent.id))]
    assert evs[0][1] == "dataset" and evs[0][0].startswith("dataset_version_")
    assert evs[-1] == ("run_failed", "run")
    delivery.deliver_event(db, _event_ids(db)[1])
    assert len(smtp) == 1 and "tiny@v2" in smtp[0].content.decode()
