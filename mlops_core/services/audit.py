"""The audit trail: written inside each service's unit of work, listed by the Activity page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
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


# The Activity page's "Logins" filter: the login attempts users.authenticate writes (and an admin's unlock).
LOGIN_ACTIONS: tuple[str, ...] = ("user.login", "user.login_failed", "user.login_locked", "user.login_unlock")
EXPORT_MAX_ROWS = 50_000


def _conditions(
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    actions: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list:
    """The WHERE clauses of a filtered audit listing (shared by the page listing and the CSV export)."""
    conds = []
    if entity_type:
        conds.append(AuditEvent.entity_type == entity_type)
    if entity_id:
        conds.append(AuditEvent.entity_id == str(entity_id))
    if username:
        conds.append(AuditEvent.actor_username == username)
    if action:
        conds.append(col(AuditEvent.action).like(f"{action}%"))
    if actions:
        conds.append(col(AuditEvent.action).in_(list(actions)))
    if since:
        conds.append(AuditEvent.at >= since)
    if until:
        conds.append(AuditEvent.at < until)
    return conds


def list_events(
    db: Database,
    *,
    actor: Actor,
    entity_type: str | None = None,
    entity_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    actions: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    max_limit: int = 500,
) -> AuditPage:
    """Newest first, filtered and paginated in SQL. `action` is a prefix, `actions` exact names (e.g.
    LOGIN_ACTIONS); `since` is inclusive and `until` exclusive."""
    require(actor, "audit.read")
    limit = max(1, min(int(limit), max_limit))
    conds = _conditions(
        entity_type=entity_type,
        entity_id=entity_id,
        username=username,
        action=action,
        actions=actions,
        since=since,
        until=until,
    )
    with db.read() as s:
        q = select(AuditEvent)
        cq = select(func.count()).select_from(AuditEvent)
        for c in conds:
            q = q.where(c)
            cq = cq.where(c)
        total = s.exec(cq).one()
        rows = s.exec(q.order_by(col(AuditEvent.id).desc()).offset(offset).limit(limit)).all()
        return AuditPage(events=[AuditEventPublic.model_validate(r, from_attributes=True) for r in rows], total=total)


def _fmt_value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        v = json.dumps(v, separators=(", ", ": "), default=str)
    text = str(v)
    return text if len(text) <= 80 else text[:77] + "..."


def describe_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Before/after as lines a person reads: "role: data_scientist → ops" for a changed field, "name: churn"
    for a field that only has a new value, "notes: old → (removed)" for one that went away. Unchanged
    fields are left out."""
    before, after = before or {}, after or {}
    lines = []
    for key in list(dict.fromkeys([*before, *after])):
        label = key.replace("_", " ")
        if key in before and key in after:
            if before[key] != after[key]:
                lines.append(f"{label}: {_fmt_value(before[key])} → {_fmt_value(after[key])}")
        elif key in after:
            lines.append(f"{label}: {_fmt_value(after[key])}")
        else:
            lines.append(f"{label}: {_fmt_value(before[key])} → (removed)")
    return lines


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(
    db: Database,
    *,
    actor: Actor,
    labeler: Callable[[list[tuple[str, str]]], dict[tuple[str, str], str]] | None = None,
    **filters: Any,
) -> str:
    """The filtered events (same filters as list_events, read in SQL) as CSV text, newest first, at most
    EXPORT_MAX_ROWS rows. `labeler` names entities ((entity_type, entity_id) -> "churn-classifier v3").
    Cells that a spreadsheet would run as a formula (=, +, -, @) are quoted with a leading apostrophe."""
    page = list_events(db, actor=actor, limit=EXPORT_MAX_ROWS, max_limit=EXPORT_MAX_ROWS, **filters)
    labels = labeler([(e.entity_type, e.entity_id) for e in page.events]) if labeler else {}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["when (UTC)", "who", "action", "entity", "which", "summary", "changes", "before", "after"])
    for e in page.events:
        w.writerow(
            _cell(v)
            for v in [
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor_username,
                e.action,
                e.entity_type,
                labels.get((e.entity_type, e.entity_id), e.entity_id),
                e.summary,
                "; ".join(describe_changes(e.before, e.after)),
                json.dumps(e.before, default=str) if e.before is not None else "",
                json.dumps(e.after, default=str) if e.after is not None else "",
            ]
        )
    return buf.getvalue()


def distinct_values(db: Database, *, actor: Actor) -> dict[str, list[str]]:
    """Filter choices for the Activity page."""
    require(actor, "audit.read")
    with db.read() as s:
        return {
            "entity_type": sorted(s.exec(select(AuditEvent.entity_type).distinct()).all()),
            "username": sorted(s.exec(select(AuditEvent.actor_username).distinct()).all()),
        }
