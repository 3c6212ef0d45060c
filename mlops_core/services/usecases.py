"""Use cases, their lifecycle, and their KPI contracts (stage 1).

Business users create and edit use cases and KPIs (`usecase.write`, `kpi.write`, `kpi.reading`);
everyone reads. Edits are optimistic-locked on `UseCase.version`: a save made on a stale copy
is refused with "changed by X at T, reload" instead of silently overwriting someone else's work.
Read helpers without an actor (`model_kpis`, `evaluate_metrics`, `member_usernames`) are the
seams later stages call (docs/CONTRACTS_INTERNAL.md, "Stage 1").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import Session, col, select

from .. import kpi as kpi_math
from ..db import Database, utcnow
from ..errors import Conflict, NotFound, ValidationError
from ..models.base import ROLES
from ..models.usecases import (
    Kpi,
    KpiCheck,
    KpiPublic,
    KpiReading,
    KpiReadingPublic,
    MemberPublic,
    TransitionPublic,
    UseCase,
    UseCaseMember,
    UseCasePublic,
    UseCaseTag,
    UseCaseTransition,
)
from ..models.users import User
from . import audit
from ._common import get_or_404
from .auth import Actor, require

# --- lifecycle ------------------------------------------------------------------------

STATUSES: tuple[str, ...] = ("proposed", "approved", "data", "experimentation", "deployed", "monitored", "retired")

# Forward one step, back one step (e.g. monitored -> experimentation to retrain), anything -> retired,
# and a retired use case may be proposed again. No jumps: proposed cannot become deployed.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("approved", "retired"),
    "approved": ("data", "proposed", "retired"),
    "data": ("experimentation", "approved", "retired"),
    "experimentation": ("deployed", "data", "retired"),
    "deployed": ("monitored", "experimentation", "retired"),
    "monitored": ("experimentation", "deployed", "retired"),
    "retired": ("proposed",),
}
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
MEMBER_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r != "admin")
# "value": expected value per period >= the champion's (+ target as a margin), checked by the deployment gate
KPI_KINDS: tuple[str, ...] = ("model", "business", "value")
MAX_TAGS = 20


def allowed_transitions(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


# --- helpers -------------------------------------------------------------------------------


def _user_by_name(s: Session, username: str, what: str) -> User:
    username = (username or "").strip()
    u = s.exec(select(User).where(User.username == username)).first()
    if u is None or not u.is_active:
        names = s.exec(select(User.username).where(col(User.is_active).is_(True)).order_by(User.username)).all()
        raise ValidationError(f"{what}: no active user {username!r}; choose one of: {', '.join(names)}")
    return u


def _clean_text(value: str | None, what: str, *, required: bool = False, max_len: int = 5000) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError(f"the {what} is empty; write one")
    if len(text) > max_len:
        raise ValidationError(f"the {what} is {len(text)} characters long; keep it under {max_len}")
    return text


def _clean_tags(tags: Iterable[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for t in tags:
        t = (t or "").strip().lower()
        if not t:
            continue
        if len(t) > 64:
            raise ValidationError(f"the tag {t[:20]!r}... is too long; keep tags under 64 characters")
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise ValidationError(f"{len(out)} tags is too many; keep at most {MAX_TAGS}")
    return out


def _clean_priority(priority: str | None) -> str:
    p = (priority or "medium").strip().lower()
    if p not in PRIORITIES:
        raise ValidationError(f"unknown priority {priority!r}; choose one of: {', '.join(PRIORITIES)}")
    return p


def _clean_date(value: date | str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{what} {value!r} is not a date; use YYYY-MM-DD") from None


def _members_rows(s: Session, members: Mapping[str, Iterable[str]] | None) -> list[tuple[int, str, str]]:
    """(user_id, username, role) for role -> usernames; validates roles and users."""
    rows: list[tuple[int, str, str]] = []
    for role, usernames in (members or {}).items():
        if role not in MEMBER_ROLES:
            raise ValidationError(f"unknown team role {role!r}; choose one of: {', '.join(MEMBER_ROLES)}")
        if isinstance(usernames, str):
            usernames = [usernames]
        for name in usernames:
            if not (name or "").strip():
                continue
            u = _user_by_name(s, name, f"team member ({role})")
            if (u.id, u.username, role) not in rows:
                rows.append((u.id, u.username, role))
    return rows


def _get_row(s: Session, use_case_id: int) -> UseCase:
    return get_or_404(s, UseCase, use_case_id, "use case with id", "pick one from the portfolio")


def _kpi_public(k: Kpi) -> KpiPublic:
    return KpiPublic.model_validate(k, from_attributes=True)


def _publics(s: Session, rows: list[UseCase]) -> list[UseCasePublic]:
    """Use cases with owner, tags, members and KPIs, loaded in four queries for the whole page."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    user_ids = {r.owner_id for r in rows}
    members = s.exec(
        select(UseCaseMember).where(col(UseCaseMember.use_case_id).in_(ids)).order_by(UseCaseMember.id)
    ).all()
    user_ids |= {m.user_id for m in members}
    users = {u.id: u for u in s.exec(select(User).where(col(User.id).in_(user_ids))).all()}
    tags: dict[int, list[str]] = {}
    for t in s.exec(select(UseCaseTag).where(col(UseCaseTag.use_case_id).in_(ids)).order_by(UseCaseTag.id)).all():
        tags.setdefault(t.use_case_id, []).append(t.tag)
    kpis: dict[int, list[KpiPublic]] = {}
    for k in s.exec(select(Kpi).where(col(Kpi.use_case_id).in_(ids)).order_by(Kpi.kind.desc(), Kpi.id)).all():
        kpis.setdefault(k.use_case_id, []).append(_kpi_public(k))
    by_uc: dict[int, list[MemberPublic]] = {}
    for m in members:
        u = users[m.user_id]
        by_uc.setdefault(m.use_case_id, []).append(
            MemberPublic(username=u.username, display_name=u.display_name, role=m.role)
        )
    out = []
    for r in rows:
        out.append(
            UseCasePublic(
                id=r.id,
                title=r.title,
                problem_statement=r.problem_statement,
                objectives=r.objectives,
                status=r.status,
                owner_username=users[r.owner_id].username,
                priority=r.priority,
                target_date=r.target_date,
                tags=tags.get(r.id, []),
                members=by_uc.get(r.id, []),
                kpis=kpis.get(r.id, []),
                version=r.version,
                created_at=r.created_at,
                updated_at=r.updated_at,
                updated_by=r.updated_by,
            )
        )
    return out


def _snapshot(s: Session, uc: UseCase) -> dict:
    p = _publics(s, [uc])[0]
    return {
        "title": p.title,
        "status": p.status,
        "owner": p.owner_username,
        "priority": p.priority,
        "target_date": p.target_date.isoformat() if p.target_date else None,
        "tags": p.tags,
        "members": sorted(f"{m.role}:{m.username}" for m in p.members),
        "version": p.version,
    }


def _bump_version(s: Session, uc: UseCase, *, actor: Actor, expected_version: int | None) -> None:
    """Take the optimistic lock: bump `version` only if it is still the one the caller saw.

    A conditional UPDATE (not read-then-write) so two concurrent saves cannot both pass on Postgres.
    """
    now = utcnow()
    stmt = update(UseCase).where(col(UseCase.id) == uc.id)
    if expected_version is not None:
        stmt = stmt.where(col(UseCase.version) == int(expected_version))
    result = s.execute(stmt.values(version=UseCase.version + 1, updated_at=now, updated_by=actor.username))
    if result.rowcount == 0:
        s.refresh(uc)
        raise Conflict(
            f"“{uc.title}” was changed by {uc.updated_by or 'someone'} at "
            f"{uc.updated_at:%Y-%m-%d %H:%M:%S} UTC (now version {uc.version}, you edited version "
            f"{expected_version}); reload to see their changes, then apply yours again"
        )
    s.refresh(uc)


def _set_tags(s: Session, use_case_id: int, tags: list[str]) -> None:
    for t in s.exec(select(UseCaseTag).where(UseCaseTag.use_case_id == use_case_id)).all():
        s.delete(t)
    s.flush()
    for t in tags:
        s.add(UseCaseTag(use_case_id=use_case_id, tag=t))


def _set_members(s: Session, use_case_id: int, rows: list[tuple[int, str, str]]) -> None:
    for m in s.exec(select(UseCaseMember).where(UseCaseMember.use_case_id == use_case_id)).all():
        s.delete(m)
    s.flush()
    for user_id, _name, role in rows:
        s.add(UseCaseMember(use_case_id=use_case_id, user_id=user_id, role=role))


# --- use cases -------------------------------------------------------------------------------


def create_use_case(
    db: Database,
    *,
    actor: Actor,
    title: str,
    problem_statement: str = "",
    objectives: str = "",
    owner_username: str | None = None,
    priority: str = "medium",
    target_date: date | str | None = None,
    tags: Iterable[str] | str | None = None,
    members: Mapping[str, Iterable[str]] | None = None,
    canvas_fields: Mapping[str, Any] | None = None,
    problem_type: str = "",
    positive_class: str = "",
) -> UseCasePublic:
    """A new use case in status "proposed"; the owner defaults to the creator. `canvas_fields`,
    `problem_type`, `positive_class`: the guided ML canvas, saved as its version 1 in the same transaction."""
    from . import canvas  # canvas imports this module's models only; imported here to keep load order simple

    require(actor, "usecase.write")
    canvas_clean = canvas.validate(canvas_fields, problem_type, positive_class)
    title = _clean_text(title, "title", required=True, max_len=200)
    problem_statement = _clean_text(problem_statement, "problem statement")
    objectives = _clean_text(objectives, "objectives")
    priority = _clean_priority(priority)
    target = _clean_date(target_date, "target date")
    tag_list = _clean_tags(tags)
    with db.unit_of_work() as s:
        if s.exec(select(UseCase.id).where(func.lower(UseCase.title) == title.lower())).first() is not None:
            raise Conflict(f"a use case titled “{title}” already exists; choose another title or open that one")
        owner = _user_by_name(s, owner_username or actor.username, "owner")
        member_rows = _members_rows(s, members)
        uc = UseCase(
            title=title,
            problem_statement=problem_statement,
            objectives=objectives,
            status="proposed",
            owner_id=owner.id,
            priority=priority,
            target_date=target,
            created_by_id=actor.id,
            updated_by=actor.username,
        )
        s.add(uc)
        s.flush()
        _set_tags(s, uc.id, tag_list)
        _set_members(s, uc.id, member_rows)
        s.add(
            UseCaseTransition(
                use_case_id=uc.id, from_status=None, to_status="proposed", by_username=actor.username, note="created"
            )
        )
        s.flush()
        after = _snapshot(s, uc)
        canvas.first_version(
            s, actor=actor, uc=uc, fields=canvas_clean[0], problem_type=canvas_clean[1], positive_class=canvas_clean[2]
        )
        audit.record(
            s,
            actor=actor,
            action="usecase.create",
            entity_type="use_case",
            entity_id=uc.id,
            summary=f"created use case “{title}”",
            after=after,
        )
        return _publics(s, [uc])[0]


_UNSET = object()


def update_use_case(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    expected_version: int | None,
    title: str | None = None,
    problem_statement: str | None = None,
    objectives: str | None = None,
    owner_username: str | None = None,
    priority: str | None = None,
    target_date=_UNSET,
    tags: Iterable[str] | str | None = None,
    members: Mapping[str, Iterable[str]] | None = None,
) -> UseCasePublic:
    """Change the given fields (None: leave as is). `expected_version` is the version the editor saw;
    if someone saved in between, Conflict says who and when."""
    require(actor, "usecase.write")
    changes: dict = {}
    if title is not None:
        changes["title"] = _clean_text(title, "title", required=True, max_len=200)
    if problem_statement is not None:
        changes["problem_statement"] = _clean_text(problem_statement, "problem statement")
    if objectives is not None:
        changes["objectives"] = _clean_text(objectives, "objectives")
    if priority is not None:
        changes["priority"] = _clean_priority(priority)
    if target_date is not _UNSET:
        changes["target_date"] = _clean_date(target_date, "target date")
    tag_list = _clean_tags(tags) if tags is not None else None
    with db.unit_of_work() as s:
        uc = _get_row(s, use_case_id)
        before = _snapshot(s, uc)
        _bump_version(s, uc, actor=actor, expected_version=expected_version)
        if "title" in changes and changes["title"].lower() != uc.title.lower():
            clash = s.exec(
                select(UseCase.id).where(func.lower(UseCase.title) == changes["title"].lower(), UseCase.id != uc.id)
            ).first()
            if clash is not None:
                raise Conflict(f"a use case titled “{changes['title']}” already exists; choose another title")
        if owner_username is not None:
            uc.owner_id = _user_by_name(s, owner_username, "owner").id
        for k, v in changes.items():
            setattr(uc, k, v)
        s.add(uc)
        if tag_list is not None:
            _set_tags(s, uc.id, tag_list)
        if members is not None:
            _set_members(s, uc.id, _members_rows(s, members))
        s.flush()
        after = _snapshot(s, uc)
        changed = {k: v for k, v in after.items() if before.get(k) != v and k != "version"}
        audit.record(
            s,
            actor=actor,
            action="usecase.update",
            entity_type="use_case",
            entity_id=uc.id,
            summary=f"edited “{uc.title}”: {', '.join(changed) or 'no field changed'}",
            before={k: before[k] for k in changed},
            after=changed,
        )
        return _publics(s, [uc])[0]


def transition_use_case(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    to_status: str,
    note: str = "",
    expected_version: int | None = None,
) -> UseCasePublic:
    """Move the lifecycle status along an allowed transition; records who, when and why."""
    require(actor, "usecase.write")
    to_status = (to_status or "").strip().lower()
    if to_status not in STATUSES:
        raise ValidationError(f"unknown status {to_status!r}; the lifecycle is: {' → '.join(STATUSES)}")
    note = _clean_text(note, "note", max_len=1000)
    with db.unit_of_work() as s:
        uc = _get_row(s, use_case_id)
        return _transition(s, uc, actor=actor, to_status=to_status, note=note, expected_version=expected_version)


def _transition(
    s: Session, uc: UseCase, *, actor: Actor, to_status: str, note: str, expected_version: int | None
) -> UseCasePublic:
    current = uc.status
    allowed = allowed_transitions(current)
    if to_status not in allowed:
        raise ValidationError(
            f"“{uc.title}” cannot move from {current} to {to_status}; from {current} it can move to: "
            f"{', '.join(allowed) or 'nothing'}"
        )
    _bump_version(s, uc, actor=actor, expected_version=expected_version)
    uc.status = to_status
    s.add(uc)
    s.add(
        UseCaseTransition(
            use_case_id=uc.id, from_status=current, to_status=to_status, by_username=actor.username, note=note
        )
    )
    s.flush()
    audit.record(
        s,
        actor=actor,
        action="usecase.transition",
        entity_type="use_case",
        entity_id=uc.id,
        summary=f"“{uc.title}”: {current} → {to_status}" + (f" ({note})" if note else ""),
        before={"status": current},
        after={"status": to_status},
    )
    return _publics(s, [uc])[0]


def note_stage_reached(session: Session, *, actor: Actor, use_case_id: int, status: str, note: str = "") -> bool:
    """For later stages, inside their own transaction: move the use case forward to `status` when that is
    the next step of its lifecycle (e.g. first dataset: approved -> data; first deployment:
    experimentation -> deployed). Does nothing (returns False) otherwise: never jumps, never goes back."""
    uc = session.get(UseCase, use_case_id)
    if uc is None or status not in STATUSES:
        return False
    idx = STATUSES.index
    if uc.status == "retired" or idx(status) != idx(uc.status) + 1:
        return False
    _transition(session, uc, actor=actor, to_status=status, note=note or "reached automatically", expected_version=None)
    return True


def get_use_case(db: Database, *, actor: Actor | None = None, use_case_id: int) -> UseCasePublic:
    with db.read() as s:
        return _publics(s, [_get_row(s, int(use_case_id))])[0]


@dataclass(frozen=True)
class TeamMember:
    """One person of a use case's team, once, with every role they hold there."""

    username: str
    display_name: str | None  # None for an owner who is not also listed as a member
    roles: tuple[str, ...]  # in words: "business owner", "data scientist", ...


def team(uc: UseCasePublic) -> list[TeamMember]:
    """The owner first, then the members, each person once (issue 15: the owner, usually also listed as a
    business member, showed twice). A person in several roles has them all on one line; the owner's
    "business" membership is the ownership itself, not a second role."""
    roles: dict[str, list[str]] = {uc.owner_username: ["business owner"]}
    names: dict[str, str | None] = {uc.owner_username: None}
    for m in uc.members:
        names[m.username] = names.get(m.username) or m.display_name
        if m.username == uc.owner_username and m.role == "business":
            continue
        word = m.role.replace("_", " ")
        if word not in roles.setdefault(m.username, []):
            roles[m.username].append(word)
    return [TeamMember(u, names[u], tuple(r)) for u, r in roles.items()]


def resolve_use_case(db: Database, ref: int | str) -> UseCasePublic:
    """A use case by id or by title (case-insensitive), for the SDK and CLI."""
    with db.read() as s:
        uc = None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            uc = s.get(UseCase, int(ref))
        if uc is None and isinstance(ref, str):
            uc = s.exec(select(UseCase).where(func.lower(UseCase.title) == ref.strip().lower())).first()
        if uc is None:
            titles = s.exec(select(UseCase.title).order_by(UseCase.title).limit(20)).all()
            raise NotFound(f"no use case {ref!r}; known use cases: {', '.join(titles) or 'none yet'}")
        return _publics(s, [uc])[0]


@dataclass
class UseCasePage:
    items: list[UseCasePublic]
    total: int
    by_status: dict[str, int]


def list_use_cases(
    db: Database,
    *,
    actor: Actor | None = None,
    owner: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> UseCasePage:
    """Filtered, ordered by lifecycle stage then title, paginated in SQL; `by_status` counts the filtered set."""
    limit = max(1, min(int(limit), 500))
    offset = max(0, int(offset))
    with db.read() as s:
        conds = []
        if owner:
            conds.append(col(UseCase.owner_id).in_(select(User.id).where(User.username == owner)))
        if status:
            conds.append(UseCase.status == status)
        if tag:
            conds.append(
                col(UseCase.id).in_(select(UseCaseTag.use_case_id).where(UseCaseTag.tag == tag.strip().lower()))
            )
        if search:
            conds.append(func.lower(UseCase.title).contains(search.strip().lower()))
        stage_order = case({s_: i for i, s_ in enumerate(STATUSES)}, value=UseCase.status, else_=99)
        q = select(UseCase)
        cq = select(UseCase.status, func.count()).group_by(UseCase.status)
        for c in conds:
            q = q.where(c)
            cq = cq.where(c)
        by_status = {st_: 0 for st_ in STATUSES}
        for st_, n in s.exec(cq).all():
            by_status[st_] = int(n)
        rows = s.exec(q.order_by(stage_order, func.lower(UseCase.title), UseCase.id).offset(offset).limit(limit)).all()
        return UseCasePage(items=_publics(s, list(rows)), total=sum(by_status.values()), by_status=by_status)


def filter_choices(db: Database) -> dict[str, list[str]]:
    """Owners and tags in use, for the portfolio filters."""
    with db.read() as s:
        owners = s.exec(
            select(User.username).where(col(User.id).in_(select(UseCase.owner_id))).order_by(User.username)
        ).all()
        tags = s.exec(select(UseCaseTag.tag).distinct().order_by(UseCaseTag.tag)).all()
        return {"owner": list(owners), "tag": list(tags), "status": list(STATUSES)}


def history(db: Database, *, actor: Actor | None = None, use_case_id: int) -> list[TransitionPublic]:
    """Lifecycle moves, oldest first."""
    with db.read() as s:
        rows = s.exec(
            select(UseCaseTransition).where(UseCaseTransition.use_case_id == use_case_id).order_by(UseCaseTransition.id)
        ).all()
        return [TransitionPublic.model_validate(r, from_attributes=True) for r in rows]


def member_usernames(db: Database, use_case_id: int, roles: Iterable[str] = ("ops", "data_scientist")) -> list[str]:
    """Usernames of the team members in `roles` (plus the owner when "business" is asked for)."""
    roles = tuple(roles)
    with db.read() as s:
        names = set(
            s.exec(
                select(User.username)
                .join(UseCaseMember, col(UseCaseMember.user_id) == User.id)
                .where(UseCaseMember.use_case_id == use_case_id, col(UseCaseMember.role).in_(roles))
            ).all()
        )
        if "business" in roles:
            uc = s.get(UseCase, use_case_id)
            if uc is not None:
                owner = s.get(User, uc.owner_id)
                names.add(owner.username)
        return sorted(names)


# --- KPIs ----------------------------------------------------------------------------------


def add_kpi(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    kind: str,
    target,
    name: str | None = None,
    metric: str | None = None,
    direction: str | None = None,
    warning=None,
    unit: str = "",
    baseline=None,
) -> KpiPublic:
    """A model KPI (metric, direction, target, optional warning band) or a business KPI
    (name, unit, baseline, target, direction)."""
    require(actor, "kpi.write")
    kind = (kind or "").strip().lower()
    if kind not in KPI_KINDS:
        raise ValidationError(
            f"unknown KPI kind {kind!r}; use model (a model metric), business (readings over time) "
            "or value (expected value >= the champion's)"
        )
    if kind == "value":
        metric, direction = None, ">="
        name = _clean_text(name, "KPI name", max_len=200) or "expected value ≥ champion's"
    elif kind == "model":
        metric = kpi_math.check_metric(metric)
        name = _clean_text(name, "KPI name", max_len=200) or metric
        direction = kpi_math.check_direction(direction or kpi_math.KNOWN_METRICS[metric][1])
    else:
        metric = None
        name = _clean_text(name, "KPI name", required=True, max_len=200)
        if not direction:
            raise ValidationError("a business KPI needs a direction: >= (higher is better) or <= (lower is better)")
        direction = kpi_math.check_direction(direction)
    target_v = kpi_math.to_number(target, f"the target of “{name}”")
    warning_v = None if warning in (None, "") else kpi_math.to_number(warning, f"the warning band of “{name}”")
    if warning_v is not None and warning_v < 0:
        raise ValidationError(f"the warning band of “{name}” is negative; give its width, e.g. 0.05")
    baseline_v = None if baseline in (None, "") else kpi_math.to_number(baseline, f"the baseline of “{name}”")
    unit = _clean_text(unit, "unit", max_len=32)
    with db.unit_of_work() as s:
        uc = _get_row(s, use_case_id)
        if s.exec(select(Kpi.id).where(Kpi.use_case_id == uc.id, Kpi.name == name)).first() is not None:
            raise Conflict(f"“{uc.title}” already has a KPI named “{name}”; edit that one or choose another name")
        k = Kpi(
            use_case_id=uc.id,
            kind=kind,
            name=name,
            metric=metric,
            direction=direction,
            target=target_v,
            warning=warning_v,
            unit=unit,
            baseline=baseline_v,
            created_by=actor.username,
        )
        s.add(k)
        s.flush()
        pub = _kpi_public(k)
        audit.record(
            s,
            actor=actor,
            action="kpi.create",
            entity_type="use_case",
            entity_id=uc.id,
            summary=f"KPI on “{uc.title}”: {pub.label}",
            after=pub.model_dump(),
        )
        return pub


def update_kpi(
    db: Database,
    *,
    actor: Actor,
    kpi_id: int,
    target=None,
    warning=_UNSET,
    direction: str | None = None,
    baseline=_UNSET,
    unit: str | None = None,
) -> KpiPublic:
    require(actor, "kpi.write")
    with db.unit_of_work() as s:
        k = get_or_404(s, Kpi, kpi_id, "KPI with id")
        before = _kpi_public(k).model_dump()
        if target is not None:
            k.target = kpi_math.to_number(target, f"the target of “{k.name}”")
        if warning is not _UNSET:
            k.warning = (
                None if warning in (None, "") else kpi_math.to_number(warning, f"the warning band of “{k.name}”")
            )
        if direction is not None:
            k.direction = kpi_math.check_direction(direction)
        if baseline is not _UNSET:
            k.baseline = None if baseline in (None, "") else kpi_math.to_number(baseline, f"the baseline of “{k.name}”")
        if unit is not None:
            k.unit = _clean_text(unit, "unit", max_len=32)
        s.add(k)
        s.flush()
        pub = _kpi_public(k)
        audit.record(
            s,
            actor=actor,
            action="kpi.update",
            entity_type="use_case",
            entity_id=k.use_case_id,
            summary=f"KPI “{k.name}” is now {pub.label}",
            before=before,
            after=pub.model_dump(),
        )
        return pub


def delete_kpi(db: Database, *, actor: Actor, kpi_id: int) -> None:
    require(actor, "kpi.write")
    with db.unit_of_work() as s:
        k = get_or_404(s, Kpi, kpi_id, "KPI with id")
        before = _kpi_public(k).model_dump()
        for r in s.exec(select(KpiReading).where(KpiReading.kpi_id == k.id)).all():
            s.delete(r)
        s.flush()
        s.delete(k)
        audit.record(
            s,
            actor=actor,
            action="kpi.delete",
            entity_type="use_case",
            entity_id=before["use_case_id"],
            summary=f"KPI “{before['name']}” removed",
            before=before,
        )


def list_kpis(db: Database, use_case_id: int, kind: str | None = None) -> list[KpiPublic]:
    with db.read() as s:
        q = select(Kpi).where(Kpi.use_case_id == use_case_id)
        if kind:
            q = q.where(Kpi.kind == kind)
        return [_kpi_public(k) for k in s.exec(q.order_by(Kpi.id)).all()]


def model_kpis(db: Database, use_case_id: int) -> list[KpiPublic]:
    """The model KPIs later stages check runs, gates and live performance against."""
    return list_kpis(db, use_case_id, kind="model")


def add_reading(
    db: Database, *, actor: Actor, kpi_id: int, value, measured_on: date | str | None = None, note: str = ""
) -> KpiReadingPublic:
    """A business KPI reading (value on a date, with a note); model KPIs are measured from runs."""
    require(actor, "kpi.reading")
    with db.unit_of_work() as s:
        k = get_or_404(s, Kpi, kpi_id, "KPI with id")
        if k.kind != "business":
            raise ValidationError(
                f"“{k.name}” is a model KPI: it is measured from runs and monitoring, "
                "not entered by hand; add readings to a business KPI"
            )
        v = kpi_math.to_number(value, f"the reading of “{k.name}”")
        on = _clean_date(measured_on, "the reading date") or utcnow().date()
        r = KpiReading(
            kpi_id=k.id,
            value=v,
            measured_on=on,
            note=_clean_text(note, "note", max_len=1000),
            by_username=actor.username,
        )
        s.add(r)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="kpi.reading",
            entity_type="use_case",
            entity_id=k.use_case_id,
            summary=f"“{k.name}” = {v:g}{(' ' + k.unit) if k.unit else ''} on {on.isoformat()}",
            after={"kpi_id": k.id, "value": v, "on": on.isoformat()},
        )
        return KpiReadingPublic.model_validate(r, from_attributes=True)


def list_readings(db: Database, kpi_id: int) -> list[KpiReadingPublic]:
    """Readings of one business KPI, oldest first."""
    with db.read() as s:
        rows = s.exec(
            select(KpiReading).where(KpiReading.kpi_id == kpi_id).order_by(KpiReading.measured_on, KpiReading.id)
        ).all()
        return [KpiReadingPublic.model_validate(r, from_attributes=True) for r in rows]


def evaluate_metrics(db: Database, use_case_id: int, metrics: Mapping[str, float]) -> list[KpiCheck]:
    """Each model KPI of the use case checked against `metrics` (metric name -> value; "test_<metric>"
    keys are accepted too). A metric that is absent is "unknown"."""
    checks = []
    for k in model_kpis(db, use_case_id):
        value = metrics.get(k.metric)
        if value is None:
            value = metrics.get(f"test_{k.metric}")
        value = None if value is None else float(value)
        checks.append(KpiCheck(kpi=k, value=value, status=kpi_math.evaluate(k.direction, k.target, k.warning, value)))
    return checks


def kpi_status(db: Database, use_case: UseCasePublic) -> list[KpiCheck]:
    """Status lights of every KPI: model KPIs against the best run so far, business KPIs against
    their latest reading."""
    return kpi_status_many(db, [use_case])[use_case.id]


def kpi_status_many(db: Database, use_cases: Iterable[UseCasePublic]) -> dict[int, list[KpiCheck]]:
    """`kpi_status` of many use cases (use case id -> its checks) in two queries in all, not a few per use
    case: the best runs' metrics of every model KPI grouped by use case, and the latest reading of every
    business KPI."""
    cases = list(use_cases)
    directions = {uc.id: {k.metric: k.direction for k in uc.kpis if k.kind == "model" and k.metric} for uc in cases}
    directions = {u: d for u, d in directions.items() if d}
    best: dict[int, dict[str, float]] = {}
    if directions:
        from . import experiments  # upward read (stage 3's runs): experiments imports this module at its top

        best = experiments.best_metrics_many(db, directions)
    latest = latest_readings(db, [k.id for uc in cases for k in uc.kpis if k.kind == "business"])
    out: dict[int, list[KpiCheck]] = {}
    for uc in cases:
        checks = []
        for k in uc.kpis:
            if k.kind == "value":
                continue  # checked against the champion by the deployment gate, not a light of its own
            value = best.get(uc.id, {}).get(k.metric) if k.kind == "model" else latest.get(k.id)
            checks.append(
                KpiCheck(kpi=k, value=value, status=kpi_math.evaluate(k.direction, k.target, k.warning, value))
            )
        out[uc.id] = checks
    return out


def latest_readings(db: Database, kpi_ids: list[int]) -> dict[int, float]:
    """kpi id -> the value of its most recent reading, in one query."""
    if not kpi_ids:
        return {}
    with db.read() as s:
        last = (
            select(KpiReading.kpi_id, func.max(KpiReading.measured_on).label("on"))
            .where(col(KpiReading.kpi_id).in_(kpi_ids))
            .group_by(KpiReading.kpi_id)
            .subquery()
        )
        rows = s.exec(
            select(KpiReading.kpi_id, KpiReading.value, KpiReading.id)
            .join(last, (col(KpiReading.kpi_id) == last.c.kpi_id) & (col(KpiReading.measured_on) == last.c.on))
            .order_by(KpiReading.id)
        ).all()
        return {kid: float(v) for kid, v, _ in rows}
