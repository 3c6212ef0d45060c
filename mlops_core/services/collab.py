"""Collaboration on any entity (use case, dataset, run, model version, deployment, ...).

Threaded comments with @mentions (a mention puts an item in the person's inbox), an inbox per
user, and sign-off requests to a person or a role, approved or rejected with a reason. A sign-off
stores the evidence it was asked on and the hash of that evidence, so a later stage can tell
whether a sign-off still covers what it is about to do (recompute `evidence_hash(...)` and compare).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from ..db import Database, utcnow
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..models.base import ROLES
from ..models.collab import Comment, CommentPublic, InboxItem, InboxItemPublic, Signoff, SignoffPublic
from ..models.users import User
from . import audit
from ._common import get_or_404
from .auth import Actor, can, require

MAX_COMMENT = 5000
# "@sara" but not "bob@example.com": a mention starts after a non-word character.
MENTION_RE = re.compile(r"(?<![\w@.])@([a-z][a-z0-9_.-]{0,31}[a-z0-9_])")


def _eid(entity_id: Any) -> str:
    text = str(entity_id).strip() if entity_id is not None else ""
    if not text:
        raise ValidationError("no entity given: comments and sign-offs belong to a use case, dataset, run, ...")
    return text[:64]


def _etype(entity_type: str) -> str:
    t = (entity_type or "").strip()
    if not t:
        raise ValidationError("no entity type given (e.g. use_case, dataset, run, model_version, deployment)")
    return t[:64]


def mentions_in(body: str) -> list[str]:
    """The @usernames in a text, in order, without repeats."""
    out: list[str] = []
    for m in MENTION_RE.finditer(body or ""):
        if m.group(1) not in out:
            out.append(m.group(1))
    return out


def evidence_hash(evidence: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `evidence` (sorted keys; non-JSON values as text)."""
    canonical = json.dumps(evidence or {}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- inbox ------------------------------------------------------------------------------


def notify(
    session: Session,
    *,
    usernames: Iterable[str] = (),
    roles: Iterable[str] = (),
    kind: str,
    title: str,
    entity_type: str,
    entity_id: Any,
    from_username: str = "",
    exclude: Iterable[str] = (),
) -> int:
    """Add inbox items inside the caller's transaction: one per active user named or holding one of
    `roles` (each person once; `exclude` skipped). Returns how many were added."""
    names = {u.strip() for u in usernames if u and u.strip()}
    roles = tuple(r for r in roles if r)
    skip = set(exclude)
    # issue 18: every inbox notification point also feeds watchers (email, chat), delivered by the worker
    from . import subscriptions

    subscriptions.emit(
        session,
        kind=kind,
        title=title,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_username=from_username,
        direct_usernames=names - skip,
        direct_roles=roles,
    )
    conds = []
    if names:
        conds.append(col(User.username).in_(names))
    if roles:
        conds.append(col(User.role).in_(roles))
    if not conds:
        return 0
    users = session.exec(select(User).where(col(User.is_active).is_(True), or_(*conds))).all()
    n = 0
    for u in users:
        if u.username in skip:
            continue
        session.add(
            InboxItem(
                user_id=u.id,
                kind=kind[:32],
                title=title[:500],
                entity_type=_etype(entity_type),
                entity_id=_eid(entity_id),
                from_username=from_username[:64],
            )
        )
        n += 1
    return n


@dataclass
class InboxPage:
    items: list[InboxItemPublic]
    total: int
    unread: int


def inbox(db: Database, *, actor: Actor, unread_only: bool = False, limit: int = 50, offset: int = 0) -> InboxPage:
    """The actor's inbox, newest first, paginated in SQL."""
    limit = max(1, min(int(limit), 200))
    with db.read() as s:
        base = select(InboxItem).where(InboxItem.user_id == actor.id)
        unread = s.exec(
            select(func.count())
            .select_from(InboxItem)
            .where(InboxItem.user_id == actor.id, col(InboxItem.read_at).is_(None))
        ).one()
        if unread_only:
            base = base.where(col(InboxItem.read_at).is_(None))
        total = s.exec(select(func.count()).select_from(base.subquery())).one()
        rows = s.exec(base.order_by(col(InboxItem.id).desc()).offset(max(0, offset)).limit(limit)).all()
        return InboxPage(
            items=[InboxItemPublic.model_validate(r, from_attributes=True) for r in rows],
            total=int(total),
            unread=int(unread),
        )


def unread_count(db: Database, *, actor: Actor) -> int:
    with db.read() as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(InboxItem)
                .where(InboxItem.user_id == actor.id, col(InboxItem.read_at).is_(None))
            ).one()
        )


def close_inbox_items(session: Session, *, kinds: Iterable[str], entity_type: str, entity_id: Any) -> int:
    """Mark read, for everyone, the unread inbox items of `kinds` about one entity, inside the caller's
    transaction: what they asked for was decided or withdrawn, so they no longer wait for anyone."""
    res = session.execute(
        update(InboxItem)
        .where(
            col(InboxItem.kind).in_(list(kinds)),
            InboxItem.entity_type == _etype(entity_type),
            InboxItem.entity_id == _eid(entity_id),
            col(InboxItem.read_at).is_(None),
        )
        .values(read_at=utcnow())
    )
    return int(res.rowcount or 0)


def _close_signoff_items(session: Session, entity_type: str, entity_id: str) -> None:
    """The "please sign off" items of an entity are read once no sign-off on it is pending any more."""
    still = session.exec(
        select(func.count())
        .select_from(Signoff)
        .where(Signoff.entity_type == entity_type, Signoff.entity_id == entity_id, Signoff.status == "pending")
    ).one()
    if not still:
        close_inbox_items(session, kinds=("signoff",), entity_type=entity_type, entity_id=entity_id)


def _settle(session: Session, r: Signoff, *, status: str, actor: Actor, reason: str) -> bool:
    """Move a pending sign-off to `status` with a conditional update (two people deciding at once cannot
    both win) and refresh `r`; its "please sign off" items are read once none is pending. False when it
    was no longer pending."""
    res = session.execute(
        update(Signoff)
        .where(col(Signoff.id) == r.id, Signoff.status == "pending")
        .values(status=status, decided_by=actor.username, decided_at=utcnow(), reason=reason)
    )
    session.refresh(r)
    if not res.rowcount:
        return False
    _close_signoff_items(session, r.entity_type, r.entity_id)
    return True


def withdraw_signoff(session: Session, *, signoff_id: int, actor: Actor, reason: str) -> bool:
    """Inside the caller's transaction: a pending sign-off whose request was decided or withdrawn is
    closed ("withdrawn", with the reason), and its inbox items are marked read. False if not pending."""
    r = session.get(Signoff, signoff_id)
    if r is None or not _settle(session, r, status="withdrawn", actor=actor, reason=reason[:2000]):
        return False
    audit.record(
        session,
        actor=actor,
        action="signoff.withdraw",
        entity_type=r.entity_type,
        entity_id=r.entity_id,
        summary=f"sign-off “{r.title}” withdrawn: {reason}",
        before={"status": "pending"},
        after={"status": "withdrawn", "signoff_id": r.id, "reason": reason},
    )
    return True


# Checks run before a sign-off is approved, by entity type: fn(db, signoff) -> sentences of what the
# approver must confirm (e.g. a missed KPI). Later stages register theirs (deployments: "model_version").
APPROVAL_CHECKS: dict[str, Any] = {}


def approval_warnings(db: Database, signoff: SignoffPublic) -> list[str]:
    """What approving this sign-off would accept although it falls short (empty when nothing)."""
    if signoff.entity_type == "model_version" and "model_version" not in APPROVAL_CHECKS:
        from . import deployments  # noqa: F401 - registers its check (a later stage; read-only hook)
    check = APPROVAL_CHECKS.get(signoff.entity_type)
    return list(check(db, signoff)) if check else []


def mark_read(db: Database, *, actor: Actor, item_ids: Iterable[int] | None = None) -> int:
    """Mark the actor's items read (all unread when `item_ids` is None). Only their own."""
    with db.unit_of_work() as s:
        stmt = update(InboxItem).where(InboxItem.user_id == actor.id, col(InboxItem.read_at).is_(None))
        if item_ids is not None:
            stmt = stmt.where(col(InboxItem.id).in_(list(item_ids)))
        return int(s.execute(stmt.values(read_at=utcnow())).rowcount or 0)


# --- comments ---------------------------------------------------------------------------


def add_comment(
    db: Database,
    *,
    actor: Actor,
    entity_type: str,
    entity_id: Any,
    body: str,
    parent_id: int | None = None,
) -> CommentPublic:
    """A comment (or a reply to `parent_id`); every @mentioned user gets an inbox item."""
    require(actor, "comment.write")
    entity_type, entity_id = _etype(entity_type), _eid(entity_id)
    body = (body or "").strip()
    if not body:
        raise ValidationError("the comment is empty; write something first")
    if len(body) > MAX_COMMENT:
        raise ValidationError(f"the comment is {len(body)} characters long; keep it under {MAX_COMMENT}")
    mentioned = mentions_in(body)
    with db.unit_of_work() as s:
        if parent_id is not None:
            parent = s.get(Comment, parent_id)
            if parent is None or (parent.entity_type, parent.entity_id) != (entity_type, entity_id):
                raise NotFound(f"no comment {parent_id} on this {entity_type} to reply to; reload the discussion")
        known = (
            set(
                s.exec(
                    select(User.username).where(col(User.username).in_(mentioned), col(User.is_active).is_(True))
                ).all()
            )
            if mentioned
            else set()
        )
        found = [m for m in mentioned if m in known]
        c = Comment(
            entity_type=entity_type,
            entity_id=entity_id,
            parent_id=parent_id,
            author_id=actor.id,
            author_username=actor.username,
            body=body,
            mentions=found,
        )
        s.add(c)
        s.flush()
        snippet = body if len(body) <= 120 else body[:117] + "..."
        notify(
            s,
            usernames=found,
            kind="mention",
            title=f"{actor.username} mentioned you: {snippet}",
            entity_type=entity_type,
            entity_id=entity_id,
            from_username=actor.username,
            exclude={actor.username},
        )
        audit.record(
            s,
            actor=actor,
            action="comment.add",
            entity_type=entity_type,
            entity_id=entity_id,
            summary=f"comment by {actor.username}" + (f" mentioning {', '.join(found)}" if found else ""),
            after={"comment_id": c.id, "parent_id": parent_id, "mentions": found},
        )
        pub = CommentPublic.model_validate(c, from_attributes=True)
        pub.unknown_mentions = [m for m in mentioned if m not in known]
        return pub


def list_comments(db: Database, *, actor: Actor | None = None, entity_type: str, entity_id: Any) -> list[CommentPublic]:
    """The discussion in thread order: each comment followed by its replies (depth set), oldest first."""
    return list_comments_many(db, actor=actor, entity_type=entity_type, entity_ids=[entity_id])[_eid(entity_id)]


def list_comments_many(
    db: Database, *, actor: Actor | None = None, entity_type: str, entity_ids: Iterable[Any]
) -> dict[str, list[CommentPublic]]:
    """`list_comments` of many entities of one type in one query (a list page showing a discussion per
    row): entity id (as text, the way comments store it) -> its discussion in thread order."""
    entity_type = _etype(entity_type)
    ids = list(dict.fromkeys(_eid(e) for e in entity_ids))
    by_entity: dict[str, list[CommentPublic]] = {e: [] for e in ids}
    if not ids:
        return by_entity
    with db.read() as s:
        for start in range(0, len(ids), 500):
            rows = s.exec(
                select(Comment)
                .where(Comment.entity_type == entity_type, col(Comment.entity_id).in_(ids[start : start + 500]))
                .order_by(Comment.id)
            ).all()
            for r in rows:
                by_entity[r.entity_id].append(CommentPublic.model_validate(r, from_attributes=True))
    return {e: _thread_order(comments) for e, comments in by_entity.items()}


def _thread_order(comments: list[CommentPublic]) -> list[CommentPublic]:
    children: dict[int | None, list[CommentPublic]] = {}
    for c in comments:
        children.setdefault(c.parent_id, []).append(c)
    out: list[CommentPublic] = []

    def walk(parent: int | None, depth: int) -> None:
        for c in children.get(parent, []):
            c.depth = depth
            out.append(c)
            walk(c.id, depth + 1)

    walk(None, 0)
    return out


def count_comments(db: Database, *, entity_type: str, entity_id: Any) -> int:
    with db.read() as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(Comment)
                .where(Comment.entity_type == _etype(entity_type), Comment.entity_id == _eid(entity_id))
            ).one()
        )


# --- sign-offs ----------------------------------------------------------------------------


def _signoff_public(r: Signoff) -> SignoffPublic:
    return SignoffPublic.model_validate(r, from_attributes=True)


def request_signoff(
    db: Database,
    *,
    actor: Actor,
    entity_type: str,
    entity_id: Any,
    title: str,
    assignee_username: str | None = None,
    assignee_role: str | None = None,
    evidence: dict[str, Any] | None = None,
    attach_report: bool = False,
) -> SignoffPublic:
    """Ask one person or anyone holding a role to approve something; stores the evidence and its hash.

    `attach_report`: the use case report is stored as an artifact and its sha256 joins the evidence (under
    "report", services/signoff_report.py), so the evidence hash covers the document the approver reads."""
    require(actor, "signoff.request")
    entity_type, entity_id = _etype(entity_type), _eid(entity_id)
    title = (title or "").strip()
    if not title:
        raise ValidationError("the sign-off needs a title saying what is to be approved")
    if len(title) > 300:
        raise ValidationError("the sign-off title is too long; keep it under 300 characters")
    assignee_username = (assignee_username or "").strip() or None
    assignee_role = (assignee_role or "").strip() or None
    if bool(assignee_username) == bool(assignee_role):
        raise ValidationError("ask exactly one person or one role to sign off (not both, not neither)")
    if assignee_role and assignee_role not in ROLES:
        raise ValidationError(f"unknown role {assignee_role!r}; choose one of: {', '.join(ROLES)}")
    evidence = dict(evidence or {})
    try:
        json.dumps(evidence, default=str)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the evidence cannot be stored as JSON ({exc})") from None
    evidence = json.loads(json.dumps(evidence, default=str))
    if attach_report:
        from . import signoff_report  # imports report, which imports this module

        evidence[signoff_report.EVIDENCE_KEY] = signoff_report.attach(db, entity_type=entity_type, entity_id=entity_id)
    with db.unit_of_work() as s:
        if assignee_username:
            u = s.exec(select(User).where(User.username == assignee_username)).first()
            if u is None or not u.is_active:
                names = s.exec(select(User.username).where(col(User.is_active).is_(True)).order_by(User.username)).all()
                raise ValidationError(f"no active user {assignee_username!r} to ask; choose one of: {', '.join(names)}")
        ev_hash = evidence_hash(evidence)
        # The same request still pending (e.g. a double click) is returned as is, not asked twice.
        same = s.exec(
            select(Signoff).where(
                Signoff.entity_type == entity_type,
                Signoff.entity_id == entity_id,
                Signoff.status == "pending",
                Signoff.title == title,
                Signoff.requested_by == actor.username,
                Signoff.evidence_hash == ev_hash,
                Signoff.assignee_username == assignee_username
                if assignee_username
                else Signoff.assignee_role == assignee_role,
            )
        ).first()
        if same is not None:
            return _signoff_public(same)
        r = Signoff(
            entity_type=entity_type,
            entity_id=entity_id,
            title=title,
            requested_by=actor.username,
            assignee_username=assignee_username,
            assignee_role=assignee_role,
            evidence=evidence,
            evidence_hash=ev_hash,
        )
        s.add(r)
        s.flush()
        notify(
            s,
            usernames=[assignee_username] if assignee_username else (),
            roles=[assignee_role] if assignee_role else (),
            kind="signoff",
            title=f"{actor.username} asks you to sign off: {title}",
            entity_type=entity_type,
            entity_id=entity_id,
            from_username=actor.username,
            exclude={actor.username},
        )
        audit.record(
            s,
            actor=actor,
            action="signoff.request",
            entity_type=entity_type,
            entity_id=entity_id,
            summary=f"sign-off requested from {assignee_username or 'role ' + assignee_role}: {title}",
            after={
                "signoff_id": r.id,
                "assignee": assignee_username or assignee_role,
                "evidence_hash": r.evidence_hash,
            },
        )
        return _signoff_public(r)


def may_decide(actor: Actor, signoff: SignoffPublic | Signoff) -> bool:
    """The person asked, anyone holding the role asked, or an admin; never the requester themself
    (four eyes), unless an admin."""
    if can(actor, "signoff.decide_any"):
        return True
    if actor.username == signoff.requested_by:
        return False
    if signoff.assignee_username:
        return actor.username == signoff.assignee_username
    return actor.role == signoff.assignee_role


def decide_signoff(
    db: Database, *, actor: Actor, signoff_id: int, approve: bool, reason: str = "", confirm_shortfalls: bool = False
) -> SignoffPublic:
    """Approve or reject a pending sign-off (a rejection needs a reason); the requester is told.
    Approving evidence that falls short (a missed KPI: `approval_warnings`) needs `confirm_shortfalls`."""
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ValidationError("say why you reject it: the reason is required")
    if len(reason) > 2000:
        raise ValidationError("the reason is too long; keep it under 2000 characters")
    if approve and not confirm_shortfalls:
        warnings = approval_warnings(db, get_signoff(db, signoff_id))
        if warnings:
            raise ValidationError(
                "the evidence falls short: "
                + "; ".join(warnings)
                + ". Confirm that you approve it anyway, or reject it"
            )
    with db.unit_of_work() as s:
        r = get_or_404(s, Signoff, signoff_id, "sign-off request")
        if not may_decide(actor, r):
            who = r.assignee_username or f"someone with the role {r.assignee_role}"
            if actor.username == r.requested_by:
                raise PermissionDenied(f"{actor.username} requested this sign-off and cannot decide it; {who} does")
            raise PermissionDenied(f"{actor.username} ({actor.role}) may not decide this sign-off; it is for {who}")
        if r.status != "pending":
            raise Conflict(
                f"this sign-off was already {r.status} by {r.decided_by} at "
                f"{r.decided_at:%Y-%m-%d %H:%M} UTC; reload the page"
            )
        if not _settle(s, r, status="approved" if approve else "rejected", actor=actor, reason=reason):
            raise Conflict(f"this sign-off was just {r.status} by {r.decided_by}; reload the page")
        verb = "approved" if approve else "rejected"
        notify(
            s,
            usernames=[r.requested_by],
            kind="signoff_decided",
            title=f"{actor.username} {verb}: {r.title}" + (f" — {reason}" if reason else ""),
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            from_username=actor.username,
            exclude={actor.username},
        )
        audit.record(
            s,
            actor=actor,
            action=f"signoff.{'approve' if approve else 'reject'}",
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            summary=f"{verb} “{r.title}”" + (f": {reason}" if reason else ""),
            before={"status": "pending"},
            after={
                "status": r.status,
                "reason": reason,
                "signoff_id": r.id,
                "confirmed_shortfalls": confirm_shortfalls,
            },
        )
        return _signoff_public(r)


def get_signoff(db: Database, signoff_id: int) -> SignoffPublic:
    with db.read() as s:
        r = get_or_404(s, Signoff, signoff_id, "sign-off request")
        return _signoff_public(r)


def _signoffs(db: Database, *where: Any, newest_first: bool = True, limit: int | None = None) -> list[SignoffPublic]:
    """The sign-offs matching `where`, by id (newest first unless told otherwise)."""
    with db.read() as s:
        q = select(Signoff).where(*where).order_by(col(Signoff.id).desc() if newest_first else col(Signoff.id))
        rows = s.exec(q if limit is None else q.limit(limit)).all()
        return [_signoff_public(r) for r in rows]


def signoffs_for(db: Database, entity_type: str, entity_id: Any) -> list[SignoffPublic]:
    """Every sign-off of an entity, newest first (the history: pending, approved, rejected)."""
    return _signoffs(db, Signoff.entity_type == _etype(entity_type), Signoff.entity_id == _eid(entity_id))


def pending_for(db: Database, *, actor: Actor, limit: int = 100) -> list[SignoffPublic]:
    """Pending sign-offs this actor may decide (asked of them or of their role), oldest first."""
    where: list[Any] = [Signoff.status == "pending"]
    if not can(actor, "signoff.decide_any"):
        where += [
            or_(Signoff.assignee_username == actor.username, Signoff.assignee_role == actor.role),
            Signoff.requested_by != actor.username,
        ]
    return _signoffs(db, *where, newest_first=False, limit=limit)


def requested_by_me(db: Database, *, actor: Actor, limit: int = 50) -> list[SignoffPublic]:
    return _signoffs(db, Signoff.requested_by == actor.username, limit=limit)
