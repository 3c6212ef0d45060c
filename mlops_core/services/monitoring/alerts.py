"""Alerts: a breach someone should look at, deduplicated while it persists.

A check (or the system health check) turns what it found into `Breach`es; `_raise_alert` opens an
alert or bumps the live one with the same key. New alerts go to the inbox of the use case's ops and
data science members and, when MLOPS_ALERT_WEBHOOK_URL is set, to a webhook posted by a background
job (never by the check itself). People acknowledge and resolve them from the Alerts page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

import httpx
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ... import jobs
from ...config import get_settings
from ...db import Database, utcnow
from ...errors import Conflict, NotFound, ValidationError
from ...models.monitoring import Alert, AlertPublic
from .. import audit, collab
from ..auth import Actor, require

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass
class Breach:
    """One threshold crossed: what `_raise_alert` turns into an alert (`key` deduplicates it)."""

    kind: str
    severity: str
    key: str
    title: str
    detail: str
    evidence: dict[str, Any]
    link: str
    deployment_id: int | None = None
    deployment_name: str | None = None
    use_case_id: int | None = None
    monitor_id: int | None = None
    check_id: int | None = None


def _raise_alert(s: Session, b: Breach) -> tuple[Alert, bool]:
    """Insert the alert, or bump the live one with the same key. Returns (alert, created)."""
    now = utcnow()
    existing = s.exec(select(Alert).where(Alert.open_key == b.key)).first()
    if existing is None:
        alert = Alert(
            kind=b.kind,
            severity=b.severity,
            state="open",
            title=b.title[:300],
            detail=b.detail[:4000],
            deployment_id=b.deployment_id,
            deployment_name=b.deployment_name,
            use_case_id=b.use_case_id,
            monitor_id=b.monitor_id,
            check_id=b.check_id,
            dedupe_key=b.key,
            open_key=b.key,
            evidence=b.evidence,
            evidence_link=b.link[:500],
            created_at=now,
            last_seen_at=now,
        )
        try:
            with s.begin_nested():
                s.add(alert)
                s.flush()
            return alert, True
        except IntegrityError:
            # Another check opened the same alert a moment ago: it is the same breach.
            existing = s.exec(select(Alert).where(Alert.open_key == b.key)).one()
    existing.occurrences += 1
    existing.last_seen_at = now
    if SEVERITY_RANK.get(b.severity, 0) > SEVERITY_RANK.get(existing.severity, 0):
        existing.severity = b.severity
    existing.evidence = {**(existing.evidence or {}), "latest_check_id": b.check_id, "latest": b.evidence}
    s.add(existing)
    return existing, False


def _notify_alert(s: Session, alert: Alert, members: list[str]) -> None:
    title = f"[{alert.severity}] {alert.title}"
    # issue 15: the deployment's alert routes add recipients (inbox here; email/chat/webhook in delivery.fan_out)
    from ..ops_settings import route_alert

    route_alert(s, alert, title=title, skip=set(members))
    if members:
        collab.notify(
            s,
            usernames=members,
            kind="alert",
            title=title,
            entity_type="alert",
            entity_id=alert.id,
            from_username="system",
        )
    else:
        # No team on the use case (or a workspace-wide alert): every ops person is told.
        collab.notify(
            s,
            roles=("ops",),
            kind="alert",
            title=title,
            entity_type="alert",
            entity_id=alert.id,
            from_username="system",
        )


def _queue_webhook(s: Session, alert: Alert) -> None:
    if not get_settings().alert_webhook_url:
        return
    alert.webhook_status = "pending"
    s.add(alert)
    jobs.enqueue(
        s, kind="alert_webhook", payload={"alert_id": alert.id}, max_attempts=4, dedupe_key=f"alert_webhook:{alert.id}"
    )


def _open_alert(s: Session, b: Breach, members: list[str]) -> tuple[Alert, bool]:
    """Raise the breach's alert; a new one is announced (inbox of `members`, the webhook). Returns
    (alert, created)."""
    alert, is_new = _raise_alert(s, b)
    if is_new:
        _notify_alert(s, alert, members)
        _queue_webhook(s, alert)
    return alert, is_new


def webhook_body(alert: AlertPublic, base_url: str = "") -> dict[str, Any]:
    """A Slack-compatible message (the `text` fallback plus one mrkdwn section)."""
    link = f"{base_url.rstrip('/')}{alert.evidence_link}" if alert.evidence_link else ""
    where = f" on `{alert.deployment_name}`" if alert.deployment_name else ""
    text = f"[{alert.severity.upper()}] {alert.title}{where}"
    body = f"*{text}*\n{alert.detail}" + (f"\n<{link}|Evidence>" if link else "")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}}]}


def deliver_webhook(
    db: Database,
    *,
    alert_id: int,
    url: str | None = None,
    tries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
) -> bool:
    """POST the alert to the webhook, retrying with exponential back-off. Runs in a worker job.

    Returns True when delivered; raises RuntimeError after the last try (so the job queue retries
    the whole delivery later, with its own back-off)."""
    url = url or get_settings().alert_webhook_url
    if not url:
        return False
    with db.read() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        alert = AlertPublic.model_validate(row, from_attributes=True)
    body = webhook_body(alert)
    error = ""
    for attempt in range(1, tries + 1):
        try:
            r = httpx.post(url, json=body, timeout=timeout_s)
            ok = 200 <= r.status_code < 300
            error = "" if ok else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        with db.unit_of_work() as s:
            row = s.get(Alert, alert_id)
            row.webhook_attempts += 1
            row.webhook_status = "sent" if ok else ("failed" if attempt == tries else "pending")
            row.webhook_error = error
            s.add(row)
        if ok:
            return True
        if attempt < tries:
            time.sleep(backoff_s * (2 ** (attempt - 1)))
    raise RuntimeError(f"webhook for alert {alert_id} failed after {tries} tries: {error}")


def list_alerts(
    db: Database,
    *,
    state: str | None = None,
    states: Iterable[str] | None = None,
    kind: str | None = None,
    deployment_name: str | None = None,
    severity: str | None = None,
    use_case_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AlertPublic]:
    """Newest first; filters applied in SQL."""
    with db.read() as s:
        q = select(Alert)
        if state:
            q = q.where(Alert.state == state)
        if states:
            q = q.where(col(Alert.state).in_(list(states)))
        if kind:
            q = q.where(Alert.kind == kind)
        if severity:
            q = q.where(Alert.severity == severity)
        if deployment_name:
            q = q.where(Alert.deployment_name == deployment_name)
        if use_case_id is not None:
            q = q.where(Alert.use_case_id == use_case_id)
        rows = s.exec(q.order_by(col(Alert.id).desc()).offset(offset).limit(max(1, min(limit, 1000)))).all()
        return [AlertPublic.model_validate(r, from_attributes=True) for r in rows]


def alert_deployment_names(db: Database) -> list[str]:
    """Every deployment that has raised an alert, for filters (one DISTINCT query, not the alerts)."""
    with db.read() as s:
        rows = s.exec(select(Alert.deployment_name).where(col(Alert.deployment_name).is_not(None)).distinct()).all()
    return sorted(r for r in rows if r)


def get_alert(db: Database, alert_id: int) -> AlertPublic:
    with db.read() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist; it may have been removed — reload the alerts page")
        return AlertPublic.model_validate(row, from_attributes=True)


def acknowledge_alert(db: Database, *, actor: Actor, alert_id: int, note: str = "") -> AlertPublic:
    """Someone is on it. Only an open alert can be acknowledged."""
    require(actor, "alert.ack")
    with db.unit_of_work() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if row.state != "open":
            raise Conflict(
                f"alert {alert_id} is already {row.state} (by {row.acknowledged_by or row.resolved_by}); "
                "reload to see its current state"
            )
        row.state = "acknowledged"
        row.acknowledged_by = actor.username
        row.acknowledged_at = utcnow()
        row.ack_note = (note or "").strip()[:2000]
        s.add(row)
        audit.record(
            s,
            actor=actor,
            action="alert.acknowledge",
            entity_type="alert",
            entity_id=row.id,
            summary=f"acknowledged {row.kind} alert: {row.title}",
            before={"state": "open"},
            after={"state": "acknowledged", "note": row.ack_note},
        )
        return AlertPublic.model_validate(row, from_attributes=True)


def resolve_alert(db: Database, *, actor: Actor, alert_id: int, note: str) -> AlertPublic:
    """Close an alert with a note saying what was done; a later breach opens a new alert."""
    require(actor, "alert.ack")
    note = (note or "").strip()
    if not note:
        raise ValidationError("say in a note what was done about the alert before resolving it")
    with db.unit_of_work() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if row.state == "resolved":
            raise Conflict(f"alert {alert_id} was already resolved by {row.resolved_by}")
        before = {"state": row.state}
        row.state = "resolved"
        row.open_key = None
        row.resolved_by = actor.username
        row.resolved_at = utcnow()
        row.resolve_note = note[:2000]
        s.add(row)
        audit.record(
            s,
            actor=actor,
            action="alert.resolve",
            entity_type="alert",
            entity_id=row.id,
            summary=f"resolved {row.kind} alert: {row.title}",
            before=before,
            after={"state": "resolved", "note": row.resolve_note},
        )
        return AlertPublic.model_validate(row, from_attributes=True)


def webhook_job(ctx) -> dict[str, Any]:
    """Kind "alert_webhook": payload {"alert_id"}; posts the alert, retrying with back-off."""
    sent = deliver_webhook(ctx.db, alert_id=int(ctx.payload["alert_id"]))
    return {"sent": sent}
