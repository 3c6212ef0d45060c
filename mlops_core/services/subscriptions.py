"""Subscriptions (issue 18): watch or unwatch a use case, dataset, model version or deployment; each
person's notification settings (email, immediate or daily digest, chat webhooks); and `emit`, which
records an event inside the action's transaction and enqueues its delivery (mlops_core.services.delivery,
run by the worker: the action is never blocked by a slow or unreachable mail server or webhook).

Role defaults, resolved when an event is delivered: the business owner of a use case watches it (and so
everything of it), ops watch production deployments. Unwatching a default stores a muted row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_
from sqlmodel import Session, col, select

from ..db import Database, utcnow
from ..errors import ValidationError
from ..models.deployments import Deployment
from ..models.subscriptions import (
    CHANNELS,
    WATCHABLE,
    ChatWebhook,
    NotificationEvent,
    NotificationSetting,
    NotificationSettingPublic,
    Subscription,
    SubscriptionPublic,
)
from ..models.users import User
from ..models.usecases import UseCase
from . import audit
from .auth import Actor, can, require

# local@domain.tld, no spaces, no second @, a dot in the domain
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)
MODES = ("immediate", "digest")
FLAVORS = ("slack", "teams")
DIGEST_SCHEDULE = "notify-digest"


def validate_email(address: str | None) -> str | None:
    """The address stripped, or None when empty; a malformed one is refused."""
    a = (address or "").strip()
    if not a:
        return None
    if len(a) > 254 or not EMAIL_RE.match(a):
        raise ValidationError(f"{a[:80]!r} is not an email address (expected name@example.com)")
    return a


def validate_webhook_url(url: str) -> str:
    u = (url or "").strip()
    parts = urlsplit(u)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(u) > 1000:
        raise ValidationError(f"{u[:80]!r} is not a webhook URL (expected https://hooks.example.com/...)")
    return u


def _check_entity(entity_type: str, entity_id: Any) -> tuple[str, str]:
    if entity_type not in WATCHABLE:
        raise ValidationError(f"one can watch a {', '.join(WATCHABLE)}, not a {entity_type!r}")
    eid = str(entity_id).strip() if entity_id is not None else ""
    if not eid:
        raise ValidationError("nothing to watch: no id given")
    return entity_type, eid[:64]


# --- watching ----------------------------------------------------------------------------------


def _role_default(s: Session, user: User, entity_type: str, entity_id: str) -> bool:
    """Does `user` watch this object by their role (business owner of the use case, ops on production)?"""
    if entity_type == "use_case" and entity_id.isdigit():
        uc = s.get(UseCase, int(entity_id))
        return uc is not None and uc.owner_id == user.id
    if entity_type == "deployment" and entity_id.isdigit() and user.role == "ops":
        d = s.get(Deployment, int(entity_id))
        return d is not None and d.environment == "production"
    return False


def is_watching(db: Database, *, actor: Actor, entity_type: str, entity_id: Any) -> bool:
    entity_type, eid = _check_entity(entity_type, entity_id)
    with db.read() as s:
        row = s.exec(
            select(Subscription).where(
                Subscription.user_id == actor.id, Subscription.entity_type == entity_type, Subscription.entity_id == eid
            )
        ).first()
        if row is not None:
            return not row.muted
        user = s.get(User, actor.id) if actor.id is not None else None
        return bool(user and _role_default(s, user, entity_type, eid))


def _set(db: Database, actor: Actor, entity_type: str, entity_id: Any, *, muted: bool, channels=None) -> None:
    require(actor, "notify.watch")
    entity_type, eid = _check_entity(entity_type, entity_id)
    chans = [c for c in (channels or CHANNELS) if c in CHANNELS]
    with db.unit_of_work() as s:
        row = s.exec(
            select(Subscription).where(
                Subscription.user_id == actor.id, Subscription.entity_type == entity_type, Subscription.entity_id == eid
            )
        ).first()
        if row is None:
            row = Subscription(user_id=actor.id, entity_type=entity_type, entity_id=eid)
        row.muted = muted
        row.channels = chans
        s.add(row)
        audit.record(
            s,
            actor=actor,
            action="notify.unwatch" if muted else "notify.watch",
            entity_type=entity_type,
            entity_id=eid,
            summary=("stopped watching" if muted else "watches") + f" {entity_type} {eid}",
        )


def watch(
    db: Database, *, actor: Actor, entity_type: str, entity_id: Any, channels: Iterable[str] | None = None
) -> None:
    _set(db, actor, entity_type, entity_id, muted=False, channels=list(channels) if channels else None)


def unwatch(db: Database, *, actor: Actor, entity_type: str, entity_id: Any) -> None:
    _set(db, actor, entity_type, entity_id, muted=True)


def my_subscriptions(db: Database, *, actor: Actor) -> list[SubscriptionPublic]:
    with db.read() as s:
        rows = s.exec(
            select(Subscription).where(Subscription.user_id == actor.id, col(Subscription.muted).is_(False))
        ).all()
        out = [
            SubscriptionPublic(entity_type=r.entity_type, entity_id=r.entity_id, channels=r.channels, source="watch")
            for r in rows
        ]
        seen = {(o.entity_type, o.entity_id) for o in out}
        muted = {
            (r.entity_type, r.entity_id)
            for r in s.exec(
                select(Subscription).where(Subscription.user_id == actor.id, col(Subscription.muted).is_(True))
            )
        }
        for uc in s.exec(select(UseCase).where(UseCase.owner_id == actor.id)).all():
            key = ("use_case", str(uc.id))
            if key not in seen and key not in muted:
                out.append(
                    SubscriptionPublic(
                        entity_type="use_case", entity_id=str(uc.id), channels=list(CHANNELS), source="role default"
                    )
                )
        if actor.role == "ops":
            for d in s.exec(select(Deployment).where(Deployment.environment == "production")).all():
                key = ("deployment", str(d.id))
                if key not in seen and key not in muted:
                    out.append(
                        SubscriptionPublic(
                            entity_type="deployment",
                            entity_id=str(d.id),
                            channels=list(CHANNELS),
                            source="role default",
                        )
                    )
        return out


# --- settings ----------------------------------------------------------------------------------


def get_notification_settings(db: Database, *, actor: Actor) -> NotificationSettingPublic:
    with db.read() as s:
        row = s.get(NotificationSetting, actor.id) if actor.id is not None else None
        hooks = s.exec(select(ChatWebhook).where(ChatWebhook.user_id == actor.id)).all()
        return NotificationSettingPublic(
            email=row.email if row else None,
            mode=row.mode if row else "immediate",
            webhooks=[{"id": h.id, "url": h.url, "flavor": h.flavor} for h in hooks],
        )


def save_notification_settings(
    db: Database,
    *,
    actor: Actor,
    email: str | None,
    mode: str = "immediate",
    webhook_url: str | None = None,
    webhook_flavor: str = "slack",
) -> NotificationSettingPublic:
    """Save the actor's email (validated), immediate/digest choice and their one chat webhook (empty: none)."""
    require(actor, "notify.watch")
    if actor.id is None:
        raise ValidationError("the system account has no notification settings")
    address = validate_email(email)
    if mode not in MODES:
        raise ValidationError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    if webhook_flavor not in FLAVORS:
        raise ValidationError(
            f"the chat webhook is Slack- or Teams-compatible: {', '.join(FLAVORS)} (got {webhook_flavor!r})"
        )
    url = validate_webhook_url(webhook_url) if (webhook_url or "").strip() else None
    with db.unit_of_work() as s:
        row = s.get(NotificationSetting, actor.id) or NotificationSetting(user_id=actor.id)
        row.email = address
        row.mode = mode
        row.updated_at = utcnow()
        s.add(row)
        for h in s.exec(select(ChatWebhook).where(ChatWebhook.user_id == actor.id)).all():
            s.delete(h)
        if url:
            s.add(ChatWebhook(user_id=actor.id, url=url, flavor=webhook_flavor))
        audit.record(
            s,
            actor=actor,
            action="notify.settings",
            entity_type="user",
            entity_id=actor.id,
            summary=f"notification settings: {mode}, email {'set' if address else 'none'}, chat {'set' if url else 'none'}",
        )
        if mode == "digest":
            from ..jobs import schedules

            schedules.upsert_schedule(s, name=DIGEST_SCHEDULE, kind="notify_digest", interval_seconds=3600)
    return get_notification_settings(db, actor=actor)


def set_use_case_webhook(
    db: Database, *, actor: Actor, use_case_id: int, url: str | None, flavor: str = "slack"
) -> None:
    """The use case's chat webhook (one; empty url removes it): every event of the use case is posted there."""
    require(actor, "notify.usecase_webhook")
    if flavor not in FLAVORS:
        raise ValidationError(f"flavor must be one of {', '.join(FLAVORS)}")
    clean = validate_webhook_url(url) if (url or "").strip() else None
    with db.unit_of_work() as s:
        if s.get(UseCase, use_case_id) is None:
            raise ValidationError(f"no use case {use_case_id}")
        for h in s.exec(select(ChatWebhook).where(ChatWebhook.use_case_id == use_case_id)).all():
            s.delete(h)
        if clean:
            s.add(ChatWebhook(use_case_id=use_case_id, url=clean, flavor=flavor))
        audit.record(
            s,
            actor=actor,
            action="notify.usecase_webhook",
            entity_type="use_case",
            entity_id=use_case_id,
            summary="chat webhook " + ("set" if clean else "removed"),
        )


def get_use_case_webhook(db: Database, *, actor: Actor, use_case_id: int) -> dict[str, str] | None:
    """The use case's chat webhook as {"url", "flavor"} (None when none is set). The URL is a credential:
    only those who may set it (`notify.usecase_webhook`) see it; for others it is blanked."""
    with db.read() as s:
        h = s.exec(
            select(ChatWebhook.url, ChatWebhook.flavor)
            .where(ChatWebhook.use_case_id == use_case_id)
            .order_by(col(ChatWebhook.id))
        ).first()
    if h is None:
        return None
    return {"url": h[0] if can(actor, "notify.usecase_webhook") else "", "flavor": h[1]}


# --- events ------------------------------------------------------------------------------------


def emit(
    session: Session,
    *,
    kind: str,
    title: str,
    entity_type: str,
    entity_id: Any,
    actor_username: str = "",
    direct_usernames: Iterable[str] = (),
    direct_roles: Iterable[str] = (),
) -> int:
    """Record an event inside the caller's transaction and enqueue its delivery; returns the event id.
    Cheap: two inserts (and one lookup of the named people); fan-out and sending happen in the worker."""
    from ..jobs.queue import enqueue

    names = [n for n in direct_usernames if n]
    roles = [r for r in direct_roles if r]
    direct: list[int] = []
    if names or roles:
        conds = []
        if names:
            conds.append(col(User.username).in_(names))
        if roles:
            conds.append(col(User.role).in_(roles))
        direct = [int(i) for i in s_ids(session, or_(*conds))]
    ev = NotificationEvent(
        kind=(kind or "event")[:32],
        title=(title or "")[:500],
        entity_type=(entity_type or "")[:64],
        entity_id=str(entity_id)[:64],
        actor_username=(actor_username or "")[:64],
        direct_user_ids=direct,
    )
    session.add(ev)
    session.flush()
    if _anyone_reachable(session):  # no email or webhook set anywhere: nothing to deliver, no job
        enqueue(session, kind="notify_deliver", payload={"event_id": ev.id}, max_attempts=3)
    return int(ev.id)


def _anyone_reachable(session: Session) -> bool:
    """Has anyone set an email address or a chat webhook? (two indexed one-row reads)"""
    if session.exec(select(ChatWebhook.id).limit(1)).first() is not None:
        return True
    from ..models.ops_settings import OpsSettings  # a deployment's alert webhook (issue 15)

    if session.exec(select(OpsSettings.id).where(OpsSettings.webhook_url != "").limit(1)).first() is not None:
        return True
    return (
        session.exec(
            select(NotificationSetting.user_id).where(col(NotificationSetting.email).is_not(None)).limit(1)
        ).first()
        is not None
    )


def s_ids(session: Session, cond) -> list[int]:
    return list(session.exec(select(User.id).where(col(User.is_active).is_(True), cond)).all())
