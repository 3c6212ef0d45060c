"""Who is acting, and what each role may write (DESIGN.md, "Who uses it").

Role checks live here, in the service layer: pages only hide what a role cannot do,
the services refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event, select
from sqlmodel import Session

from ..errors import PermissionDenied
from ..models.audit import AuditEvent
from ..models.base import Role
from ..models.users import User

B, DE, DS, OPS, ADMIN = Role.business, Role.data_engineer, Role.data_scientist, Role.ops, Role.admin
EVERYONE = frozenset(Role)

# action -> roles allowed (admin is allowed everything, see `can`).
PERMISSIONS: dict[str, frozenset[str]] = {
    # foundation
    "user.manage": frozenset({ADMIN}),
    "audit.read": EVERYONE,
    # stage 1: use cases and KPIs
    "usecase.write": frozenset({B}),
    "kpi.write": frozenset({B}),
    "kpi.reading": frozenset({B}),
    "comment.write": EVERYONE,
    "signoff.request": EVERYONE,
    # decide a sign-off asked of someone else, or one you requested yourself (four eyes: admin only)
    "signoff.decide_any": frozenset({ADMIN}),
    # stage 2: data
    "dataset.write": frozenset({DE}),
    "dataset.approve": frozenset({DE}),
    "ingestion.schedule": frozenset({DE}),
    # stage 3: experiments and registry
    "run.start": frozenset({DS}),
    "run.cancel": frozenset({DS}),
    "model.register": frozenset({DS}),
    # log to, or end, an SDK run someone else started
    "run.write_any": frozenset({ADMIN}),
    # edit the notes and tags of someone else's run (the run's owner may always edit their own)
    "run.annotate": frozenset({DS}),
    # stage 4: deployment
    "deployment.request": frozenset({DS}),
    "deployment.create": frozenset({OPS, DS}),  # an empty endpoint (data scientists also create one by requesting)
    "deployment.reevaluate": frozenset({OPS, DS}),  # re-check a pending request's gates after a fix
    "deployment.deploy": frozenset({OPS}),
    "deployment.override_gates": frozenset({ADMIN}),  # deploy despite failed gates, with a reason
    "deployment.signoff": frozenset({B}),
    "apikey.manage": frozenset({OPS}),
    "prediction.label": frozenset({OPS, DS}),
    "batch.score": frozenset({OPS, DS}),
    # stage 5: monitoring
    "monitor.configure": frozenset({OPS}),
    "monitor.run": frozenset({OPS}),
    "alert.ack": frozenset({OPS}),
    "retraining.decide": frozenset({OPS}),
    # ML canvas and value model (issue 20)
    "canvas.write": frozenset({B, DS}),  # both sides agree on the canvas
    "value.write": frozenset({B}),
    "threshold.set": frozenset({DS}),
    # subscriptions and notifications (issue 18)
    "notify.watch": EVERYONE,
    "notify.usecase_webhook": frozenset({B, OPS}),
    "notify.delivery_log": frozenset({ADMIN}),
}

ACTION_LABELS: dict[str, str] = {
    "user.manage": "manage users",
    "usecase.write": "create or edit use cases",
    "kpi.write": "define KPIs",
    "kpi.reading": "enter KPI readings",
    "dataset.write": "register datasets",
    "dataset.approve": "approve or waive dataset versions",
    "ingestion.schedule": "schedule ingestion",
    "run.start": "start experiments",
    "run.cancel": "cancel runs",
    "model.register": "register models",
    "run.write_any": "log to someone else's run",
    "run.annotate": "edit the notes and tags of someone else's run",
    "signoff.decide_any": "decide a sign-off asked of someone else",
    "deployment.create": "create deployments",
    "deployment.reevaluate": "re-evaluate deployment gates",
    "deployment.override_gates": "override failed gates",
    "deployment.request": "request deployments",
    "deployment.deploy": "deploy or roll back",
    "deployment.signoff": "sign off deployments",
    "apikey.manage": "manage API keys",
    "monitor.configure": "configure monitors",
    "monitor.run": "run monitors",
    "alert.ack": "acknowledge alerts",
    "retraining.decide": "decide on retraining proposals",
    "canvas.write": "edit the ML canvas",
    "value.write": "set the value model",
    "threshold.set": "choose a decision threshold",
    "notify.usecase_webhook": "set a use case's chat webhook",
    "notify.delivery_log": "read the notification delivery log",
}


@dataclass(frozen=True)
class Actor:
    """The person (or the system) on whose behalf a service call runs."""

    id: int | None
    username: str
    role: str

    @classmethod
    def system(cls) -> "Actor":
        """The worker and scheduler act as `system` (allowed everything, audited as such)."""
        return cls(id=None, username="system", role=ADMIN.value)


def can(actor: Actor, action: str) -> bool:
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    return actor.role == ADMIN or actor.role in PERMISSIONS[action]


def require(actor: Actor | None, action: str) -> Actor:
    """Raise PermissionDenied unless `actor` may do `action`."""
    if actor is None:
        raise PermissionDenied("you must be logged in to do this")
    if not can(actor, action):
        allowed = sorted(r for r in PERMISSIONS[action]) + ["admin"]
        label = ACTION_LABELS.get(action, action)
        raise PermissionDenied(
            f"{actor.username} ({actor.role}) may not {label}; this needs the role: {', '.join(dict.fromkeys(allowed))}"
        )
    return actor


# --- the write path re-checks the actor --------------------------------------------------------------------
# A UI session keeps its Actor between reruns, so the role it carries can be stale (an admin demoted or
# deactivated the person after the page was loaded). Every write records an audit event through
# audit.record in the same transaction, which calls `bind_actor`; just before that transaction flushes,
# `_check_bound_actors` reads each person's current role and active flag (one primary-key read per actor
# per transaction) and refuses the whole write when they no longer match. Inside the write transaction the
# read is serialised with the admin's change on SQLite (BEGIN IMMEDIATE), so there is no window between
# the check and the write. The system actor (id None) is not a person and is not checked.

_BOUND = "mlops_actor_roles"
_CHECKED = "mlops_actors_checked"


def bind_actor(session: Session, actor: Actor) -> None:
    """Remember which role `actor` acted under in this transaction (called by audit.record)."""
    if actor.id is not None:
        session.info.setdefault(_BOUND, {})[actor.id] = (actor.username, actor.role)


def stale_actor_reason(row, username: str, role: str) -> str | None:
    """Why an actor loaded as (username, role) may no longer act, given its current row (None: it may)."""
    if row is None:
        return f"the account {username} no longer exists; log in with another account"
    if not row.is_active:
        return f"your account was deactivated; nothing was changed: ask an admin to reactivate {username}"
    if row.role != role:
        return (
            f"your role is now {row.role} (this page was loaded as {role}); "
            "nothing was changed: reload the page to see what you may do"
        )
    return None


@event.listens_for(Session, "before_flush")
def _check_bound_actors(session: Session, _flush_context, _instances) -> None:
    bound: dict[int, tuple[str, str]] = dict(session.info.get(_BOUND) or {})
    # Events added without bind_actor (audit rows written by hand) are checked for being active at least.
    for obj in session.new:
        if isinstance(obj, AuditEvent) and obj.actor_id is not None and obj.actor_id not in bound:
            bound[obj.actor_id] = (obj.actor_username, "")
    checked: set[int] = session.info.setdefault(_CHECKED, set())
    todo = [i for i in bound if i not in checked]
    if not todo:
        return
    # A Core select, not session.get: the row as committed, not as this transaction may be changing it
    # (an admin changing their own role in this very write still acted as the role they had).
    rows = {r.id: r for r in session.execute(select(User.id, User.role, User.is_active).where(User.id.in_(todo))).all()}
    for actor_id in todo:
        username, role = bound[actor_id]
        row = rows.get(actor_id)
        if row is not None and role == "":
            role = row.role  # unknown role: only the active flag can be checked
        reason = stale_actor_reason(row, username, role)
        if reason:
            raise PermissionDenied(reason)
        checked.add(actor_id)
