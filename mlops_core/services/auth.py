"""Who is acting, and what each role may write (DESIGN.md, "Who uses it").

Role checks live here, in the service layer: pages only hide what a role cannot do,
the services refuse it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import PermissionDenied
from ..models.base import Role

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
    # stage 2: data
    "dataset.write": frozenset({DE}),
    "dataset.approve": frozenset({DE}),
    "ingestion.schedule": frozenset({DE}),
    # stage 3: experiments and registry
    "run.start": frozenset({DS}),
    "run.cancel": frozenset({DS}),
    "model.register": frozenset({DS}),
    # stage 4: deployment
    "deployment.request": frozenset({DS}),
    "deployment.deploy": frozenset({OPS}),
    "deployment.signoff": frozenset({B}),
    "apikey.manage": frozenset({OPS}),
    "prediction.label": frozenset({OPS, DS}),
    "batch.score": frozenset({OPS, DS}),
    # stage 5: monitoring
    "monitor.configure": frozenset({OPS}),
    "monitor.run": frozenset({OPS}),
    "alert.ack": frozenset({OPS}),
    "retraining.decide": frozenset({OPS}),
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
    "deployment.request": "request deployments",
    "deployment.deploy": "deploy or roll back",
    "deployment.signoff": "sign off deployments",
    "apikey.manage": "manage API keys",
    "monitor.configure": "configure monitors",
    "monitor.run": "run monitors",
    "alert.ack": "acknowledge alerts",
    "retraining.decide": "decide on retraining proposals",
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
