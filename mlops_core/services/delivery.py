"""Notification delivery (issue 18), run by the worker.

`notify_deliver` (one event): find who hears of it (explicit watchers of the object or of its use case,
role defaults, people the action named), skip deactivated people and those within the cooldown
(Settings.notify_cooldown_minutes per subscriber, object and event kind), write one `deliveries` row per
recipient and channel, and send the immediate ones. A failed send is retried by a `notify_retry` job with
backoff (BACKOFF_SECONDS) and marked failed with the reason after MAX_ATTEMPTS. Digest subscribers' email
rows wait for `notify_digest` (hourly schedule; one email per person per day). Every function takes
`now` so tests drive the clock.
"""

from __future__ import annotations

import html
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..config import get_settings
from ..db import Database, utcnow
from ..models.datasets import Dataset
from ..models.deployments import Deployment
from ..models.experiments import ModelVersion, Run
from ..models.monitoring import Alert, RetrainingProposal
from ..models.subscriptions import (
    ChatWebhook,
    Delivery,
    DeliveryPublic,
    NotificationEvent,
    NotificationSetting,
    Subscription,
)
from ..models.usecases import UseCase
from ..models.users import User
from ._common import aware
from .auth import Actor, require

MAX_ATTEMPTS = 3
BACKOFF_SECONDS = (30, 120, 600)  # before the 2nd, 3rd, ... attempt
DIGEST_EVERY = timedelta(hours=24)
SEND_TIMEOUT_S = 10.0

# entity_type -> the UI page's url path (hub_ui/nav.py); each page opens one object with ?id=
PAGE_PATHS: dict[str, str] = {
    "use_case": "use-case",
    "dataset": "dataset",
    "run": "run",
    "model_version": "models",
    "deployment": "deployment",
    "alert": "alerts",
    "retraining_proposal": "alerts",
}


def link_for(entity_type: str, entity_id: Any, base_url: str | None = None) -> str:
    """The absolute link to an object's page, from Settings.public_url."""
    base = (base_url if base_url is not None else get_settings().public_url).rstrip("/")
    path = PAGE_PATHS.get(entity_type, "home")
    return f"{base}/{path}?id={quote(str(entity_id), safe='')}"


# --- who hears of an event -----------------------------------------------------------------------


def _context(s: Session, entity_type: str, entity_id: str) -> tuple[int | None, Deployment | None]:
    """(use case id, deployment) the object belongs to, as far as cheaply known."""
    if not entity_id.isdigit():
        return None, None
    i = int(entity_id)
    dep: Deployment | None = None
    uc: int | None = None
    if entity_type == "use_case":
        uc = i
    elif entity_type == "dataset":
        d = s.get(Dataset, i)
        uc = d.use_case_id if d else None
    elif entity_type == "run":
        r = s.get(Run, i)
        uc = r.use_case_id if r else None
    elif entity_type == "model_version":
        m = s.get(ModelVersion, i)
        uc = m.use_case_id if m else None
    elif entity_type == "deployment":
        dep = s.get(Deployment, i)
    elif entity_type == "alert":
        a = s.get(Alert, i)
        dep = s.get(Deployment, a.deployment_id) if a and a.deployment_id else None
        uc = a.use_case_id if a else None
    elif entity_type == "retraining_proposal":
        p = s.get(RetrainingProposal, i)
        dep = s.get(Deployment, p.deployment_id) if p else None
    if dep is not None and uc is None:
        uc = dep.use_case_id
    return uc, dep


def _recipients(s: Session, ev: NotificationEvent) -> tuple[dict[int, set[str]], int | None]:
    """{user id: channels} of the active people who hear of `ev`, and the event's use case id."""
    uc_id, dep = _context(s, ev.entity_type, ev.entity_id)
    keys = [(ev.entity_type, ev.entity_id)]
    if uc_id is not None:
        keys.append(("use_case", str(uc_id)))
    if dep is not None and ev.entity_type != "deployment":
        keys.append(("deployment", str(dep.id)))
    out: dict[int, set[str]] = {}
    muted: set[tuple[int, str, str]] = set()
    for et, eid in keys:
        for sub in s.exec(select(Subscription).where(Subscription.entity_type == et, Subscription.entity_id == eid)):
            if sub.muted:
                muted.add((sub.user_id, et, eid))
            else:
                out.setdefault(sub.user_id, set()).update(sub.channels or [])
    # role defaults
    if uc_id is not None:
        uc = s.get(UseCase, uc_id)
        if uc is not None and (uc.owner_id, "use_case", str(uc_id)) not in muted:
            out.setdefault(uc.owner_id, set()).update(("email", "chat"))
    if dep is not None and dep.environment == "production":
        for uid in s.exec(select(User.id).where(User.role == "ops")):
            if (uid, "deployment", str(dep.id)) not in muted:
                out.setdefault(uid, set()).update(("email", "chat"))
    for uid in ev.direct_user_ids or []:
        out.setdefault(int(uid), set()).update(("email", "chat"))
    if out:
        active = set(s.exec(select(User.id).where(col(User.id).in_(list(out)), col(User.is_active).is_(True))))
        out = {u: c for u, c in out.items() if u in active}
    return out, uc_id


def _in_cooldown(
    s: Session, *, user_id: int | None, target: str, channel: str, ev: NotificationEvent, now: datetime
) -> bool:
    since = now - timedelta(minutes=float(get_settings().notify_cooldown_minutes))
    q = (
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.channel == channel,
            Delivery.entity_type == ev.entity_type,
            Delivery.entity_id == ev.entity_id,
            Delivery.event_kind == ev.kind,
            col(Delivery.status).in_(("sent", "pending")),
            Delivery.created_at >= since,
            Delivery.event_id != ev.id,
        )
    )
    q = q.where(Delivery.user_id == user_id) if user_id is not None else q.where(Delivery.target == target)
    return bool(s.exec(q).one())


def fan_out(db: Database, event_id: int, *, now: datetime | None = None) -> list[int]:
    """Write the delivery rows of one event (idempotent); returns the ids of those to send now."""
    now = now or utcnow()
    with db.unit_of_work() as s:
        ev = s.get(NotificationEvent, event_id)
        if ev is None:
            return []
        existing = s.exec(select(Delivery).where(Delivery.event_id == event_id)).all()
        if existing:
            return [d.id for d in existing if d.status == "pending" and not d.digest and d.attempts == 0]
        people, uc_id = _recipients(s, ev)
        routed_hooks: list[str] = []
        if ev.entity_type == "alert" and ev.entity_id.isdigit():  # issue 15: the deployment's alert routes
            from .ops_settings import routed_deliveries

            routed, routed_hooks = routed_deliveries(s, int(ev.entity_id))
            active = set(s.exec(select(User.id).where(col(User.id).in_(list(routed)), col(User.is_active).is_(True))))
            for uid, chans in routed.items():
                if uid in active:
                    people.setdefault(uid, set()).update(chans)
        rows: list[Delivery] = []

        def add(user_id: int | None, channel: str, target: str, digest: bool = False) -> None:
            skip = _in_cooldown(s, user_id=user_id, target=target, channel=channel, ev=ev, now=now)
            d = Delivery(
                event_id=ev.id,
                user_id=user_id,
                channel=channel,
                target=target,
                event_kind=ev.kind,
                entity_type=ev.entity_type,
                entity_id=ev.entity_id,
                digest=digest,
                status="skipped" if skip else "pending",
                last_error="cooldown" if skip else "",
                created_at=now,
            )
            s.add(d)
            s.flush()  # the next recipient's cooldown check sees this row
            rows.append(d)

        for uid, chans in sorted(people.items()):
            st = s.get(NotificationSetting, uid)
            if "email" in chans and st is not None and st.email:
                add(uid, "email", st.email, digest=st.mode == "digest")
            if "chat" in chans:
                for h in s.exec(select(ChatWebhook).where(ChatWebhook.user_id == uid)):
                    add(uid, "chat", h.url)
        if uc_id is not None:
            for h in s.exec(select(ChatWebhook).where(ChatWebhook.use_case_id == uc_id)):
                add(None, "chat", h.url)
        for url in routed_hooks:
            add(None, "chat", url)
        return [d.id for d in rows if d.status == "pending" and not d.digest]


# --- sending ----------------------------------------------------------------------------------------


def send_email(to: str, subject: str, body: str) -> None:
    cfg = get_settings()
    if not cfg.smtp_host:
        raise RuntimeError("no SMTP server configured (MLOPS_SMTP_HOST)")
    msg = EmailMessage()
    msg["From"] = cfg.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SEND_TIMEOUT_S) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password or "")
        smtp.send_message(msg)


def chat_body(flavor: str, title: str, link: str) -> dict[str, Any]:
    """Slack-compatible ({"text"}, mrkdwn link) or Teams-compatible (a MessageCard with an open-link action)."""
    if flavor == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title[:200],
            "text": html.escape(title),
            "potentialAction": [{"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": link}]}],
        }
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": f"{safe} <{link}|Open>"}


def post_webhook(url: str, body: dict[str, Any]) -> None:
    r = httpx.post(url, json=body, timeout=SEND_TIMEOUT_S)
    if r.status_code >= 400:
        raise RuntimeError(f"webhook answered HTTP {r.status_code}: {r.text[:200]}")


def _message(ev: NotificationEvent) -> tuple[str, str, str]:
    link = link_for(ev.entity_type, ev.entity_id)
    subject = f"[MLOps Hub] {ev.title}"[:200]
    who = f" by {ev.actor_username}" if ev.actor_username else ""
    body = (
        f"{ev.title}\n\n{ev.kind.replace('_', ' ')}{who} at {aware(ev.created_at):%Y-%m-%d %H:%M} UTC\n\nOpen: {link}\n"
    )
    return subject, body, link


def _flavor(s: Session, d: Delivery) -> str:
    h = s.exec(select(ChatWebhook).where(ChatWebhook.url == d.target)).first()
    return h.flavor if h else "slack"


def attempt(db: Database, delivery_id: int, *, now: datetime | None = None) -> str:
    """Try to send one pending delivery; returns its new status. On failure: retried later (a
    `notify_retry` job after the backoff) or, after MAX_ATTEMPTS, failed with the reason."""
    now = now or utcnow()
    with db.read() as s:
        d = s.get(Delivery, delivery_id)
        if d is None or d.status != "pending":
            return d.status if d else "missing"
        ev = s.get(NotificationEvent, d.event_id)
        user = s.get(User, d.user_id) if d.user_id else None
        flavor = _flavor(s, d) if d.channel == "chat" else ""
        channel, target, gone = d.channel, d.target, d.user_id is not None and (user is None or not user.is_active)
        (subject, body, link), title = _message(ev), ev.title
    error = ""
    if gone:
        status, error = "skipped", "the recipient was deactivated"
    else:
        try:
            if channel == "email":
                send_email(target, subject, body)
            else:
                post_webhook(target, chat_body(flavor, title, link))
            status = "sent"
        except Exception as exc:  # noqa: BLE001 - any failure of the far end is recorded, never raised
            error = f"{type(exc).__name__}: {exc}"[:2000]
            status = "pending"
    return _record(db, delivery_id, status=status, error=error, now=now)


def _record(db: Database, delivery_id: int, *, status: str, error: str, now: datetime) -> str:
    from ..jobs.queue import enqueue

    with db.unit_of_work() as s:
        d = s.get(Delivery, delivery_id)
        if status == "skipped":
            d.status, d.last_error = "skipped", error
        elif status == "sent":
            d.attempts += 1
            d.status, d.sent_at, d.next_attempt_at = "sent", now, None
        else:
            d.attempts += 1
            d.last_error = error
            if d.attempts >= MAX_ATTEMPTS:
                d.status, d.next_attempt_at = "failed", None
            else:
                wait = BACKOFF_SECONDS[min(d.attempts - 1, len(BACKOFF_SECONDS) - 1)]
                d.next_attempt_at = now + timedelta(seconds=wait)
                if not d.digest:
                    enqueue(
                        s,
                        kind="notify_retry",
                        payload={"delivery_id": d.id},
                        available_at=d.next_attempt_at,
                        dedupe_key=f"notify_retry:{d.id}:{d.attempts}",
                    )
        s.add(d)
        return d.status


def send_digests(db: Database, *, now: datetime | None = None) -> int:
    """One email per digest subscriber whose last digest is a day old (or who never had one), listing
    their pending digest deliveries; returns how many emails were sent."""
    now = now or utcnow()
    sent = 0
    with db.read() as s:
        due = [
            st.user_id
            for st in s.exec(select(NotificationSetting).where(NotificationSetting.mode == "digest"))
            if st.last_digest_at is None or now - aware(st.last_digest_at) >= DIGEST_EVERY
        ]
    for user_id in due:
        with db.read() as s:
            user = s.get(User, user_id)
            active = bool(user and user.is_active)
            rows = s.exec(
                select(Delivery, NotificationEvent)
                .join(NotificationEvent, NotificationEvent.id == Delivery.event_id)
                .where(
                    Delivery.user_id == user_id,
                    col(Delivery.digest).is_(True),
                    Delivery.status == "pending",
                    Delivery.channel == "email",
                )
                .order_by(col(Delivery.id))
            ).all()
            ids = [d.id for d, _ in rows]
            target = rows[0][0].target if rows else ""
            lines = [
                f"- {aware(ev.created_at):%Y-%m-%d %H:%M} {ev.title}\n  {link_for(ev.entity_type, ev.entity_id)}"
                for _, ev in rows
            ]
        if not ids:
            continue
        if not active:
            _settle(db, ids, status="skipped", error="the recipient was deactivated", now=now)
            continue
        body = f"Your daily MLOps Hub digest: {len(ids)} update(s).\n\n" + "\n".join(lines) + "\n"
        try:
            send_email(target, f"[MLOps Hub] daily digest: {len(ids)} update(s)", body)
        except Exception as exc:  # noqa: BLE001
            for i in ids:
                _record(db, i, status="pending", error=f"{type(exc).__name__}: {exc}", now=now)
            continue
        _settle(db, ids, status="sent", error="", now=now)
        with db.unit_of_work() as s:
            row = s.get(NotificationSetting, user_id)
            row.last_digest_at = now
            s.add(row)
        sent += 1
    return sent


def _settle(db: Database, ids: list[int], *, status: str, error: str, now: datetime) -> None:
    with db.unit_of_work() as s:
        for d in s.exec(select(Delivery).where(col(Delivery.id).in_(ids))):
            d.status, d.last_error = status, error
            if status == "sent":
                d.sent_at, d.attempts = now, d.attempts + 1
            s.add(d)


def deliver_event(db: Database, event_id: int, *, now: datetime | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for did in fan_out(db, event_id, now=now):
        st = attempt(db, did, now=now)
        counts[st] = counts.get(st, 0) + 1
    return counts


# --- job handlers (registered in mlops_core/jobs/handlers.py) ---------------------------------------


def deliver_job(ctx) -> dict:
    return deliver_event(ctx.db, int(ctx.payload["event_id"]))


def retry_job(ctx) -> dict:
    return {"status": attempt(ctx.db, int(ctx.payload["delivery_id"]))}


def digest_job(ctx) -> dict:
    return {"digests": send_digests(ctx.db)}


# --- the admin's delivery log ----------------------------------------------------------------------


def delivery_log(db: Database, *, actor: Actor, status: str | None = None, limit: int = 200) -> list[DeliveryPublic]:
    require(actor, "notify.delivery_log")
    with db.read() as s:
        q = select(Delivery, User.username).join(User, User.id == Delivery.user_id, isouter=True)
        if status:
            q = q.where(Delivery.status == status)
        rows = s.exec(q.order_by(col(Delivery.id).desc()).limit(max(1, min(int(limit), 1000)))).all()
        return [
            DeliveryPublic(
                id=d.id,
                event_id=d.event_id,
                username=name or "(use case webhook)",
                channel=d.channel,
                target=d.target,
                event_kind=d.event_kind,
                entity_type=d.entity_type,
                entity_id=d.entity_id,
                digest=d.digest,
                status=d.status,
                attempts=d.attempts,
                last_error=d.last_error,
                sent_at=d.sent_at,
                created_at=d.created_at,
            )
            for d, name in rows
        ]
