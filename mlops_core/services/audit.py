"""The audit trail: written inside each service's unit of work, listed by the Activity page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..db import Database
from ..models.audit import AuditEvent, AuditEventPublic
from .auth import Actor, bind_actor, require

_SECRET_KEYS = {"password", "password_hash", "token", "token_hash", "key", "key_hash", "api_key", "secret"}


def _scrub(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop secrets, make values JSON-safe, and keep the summary small."""
    if data is None:
        return None
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in _SECRET_KEYS:
            continue
        if isinstance(v, datetime):
            v = v.isoformat(timespec="seconds")
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        if isinstance(v, str) and len(v) > 500:
            v = v[:497] + "..."
        out[k] = v
    return out


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: Any = "",
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the caller's transaction (it commits or rolls back with it)."""
    bind_actor(session, actor)  # the transaction re-checks the actor's current role before it writes
    session.add(
        AuditEvent(
            actor_id=actor.id,
            actor_username=actor.username,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id) if entity_id is not None else "",
            summary=summary[:500],
            before=_scrub(before),
            after=_scrub(after),
        )
    )


@dataclass
class AuditPage:
    events: list[AuditEventPublic]
    total: int


def list_events(
    db: Database,
    *,
    actor: Actor,
    entity_type: str | None = None,
    entity_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> AuditPage:
    """Newest first, filtered and paginated in SQL."""
    require(actor, "audit.read")
    limit = max(1, min(int(limit), 500))
    with db.read() as s:
        q = select(AuditEvent)
        cq = select(func.count()).select_from(AuditEvent)
        conds = []
        if entity_type:
            conds.append(AuditEvent.entity_type == entity_type)
        if entity_id:
            conds.append(AuditEvent.entity_id == str(entity_id))
        if username:
            conds.append(AuditEvent.actor_username == username)
        if action:
            conds.append(col(AuditEvent.action).like(f"{action}%"))
        if since:
            conds.append(AuditEvent.at >= since)
        for c in conds:
            q = q.where(c)
            cq = cq.where(c)
        total = s.exec(cq).one()
        rows = s.exec(q.order_by(col(AuditEvent.id).desc()).offset(offset).limit(limit)).all()
        return AuditPage(events=[AuditEventPublic.model_validate(r, from_attributes=True) for r in rows], total=total)


def distinct_values(db: Database, *, actor: Actor) -> dict[str, list[str]]:
    """Filter choices for the Activity page."""
    require(actor, "audit.read")
    with db.read() as s:
        return {
            "entity_type": sorted(s.exec(select(AuditEvent.entity_type).distinct()).all()),
            "username": sorted(s.exec(select(AuditEvent.actor_username).distinct()).all()),
        }
