"""What each role may do, as a table for people: generated from auth.PERMISSIONS (issue 15, admin).

Rows are actions in plain words grouped by area, columns are roles, a cell is "yes" or empty.
Nothing here is hand-maintained per role: a new action in PERMISSIONS shows up on its own
(under "Other" until its prefix gets an area, with its label from auth.ACTION_LABELS or its name).
"""

from __future__ import annotations

from pydantic import BaseModel

from ..models.base import ROLES
from .auth import ACTION_LABELS, PERMISSIONS, Actor, can

# action prefix -> area, in the order areas are shown
AREAS: dict[str, str] = {
    "user": "Users & audit",
    "audit": "Users & audit",
    "usecase": "Use cases & KPIs",
    "kpi": "Use cases & KPIs",
    "canvas": "Use cases & KPIs",
    "value": "Use cases & KPIs",
    "comment": "Comments & sign-offs",
    "signoff": "Comments & sign-offs",
    "dataset": "Data",
    "ingestion": "Data",
    "run": "Experiments & models",
    "model": "Experiments & models",
    "threshold": "Experiments & models",
    "deployment": "Deployment & serving",
    "apikey": "Deployment & serving",
    "prediction": "Deployment & serving",
    "batch": "Deployment & serving",
    "monitor": "Monitoring",
    "alert": "Monitoring",
    "retraining": "Monitoring",
    "notify": "Notifications",
}

# plain words for the actions auth.ACTION_LABELS does not name (it only names those a page may refuse)
_EXTRA_LABELS: dict[str, str] = {
    "audit.read": "read the activity log",
    "comment.write": "comment",
    "signoff.request": "ask someone for a sign-off",
    "prediction.label": "label predictions with outcomes",
    "batch.score": "score a batch file",
    "notify.watch": "watch things and get notifications",
}

YES = "yes"


class RoleMatrixRow(BaseModel):
    area: str
    action: str  # the PERMISSIONS key, e.g. "dataset.write"
    label: str  # plain words, e.g. "register datasets"
    allowed: dict[str, bool]  # role -> may do it


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or _EXTRA_LABELS.get(action) or action.replace(".", " ").replace("_", " ")


def role_matrix() -> list[RoleMatrixRow]:
    """One row per action in auth.PERMISSIONS, grouped by area (areas in AREAS order, then "Other")."""
    order = list(dict.fromkeys(AREAS.values())) + ["Other"]
    rows = []
    for action in PERMISSIONS:
        area = AREAS.get(action.split(".", 1)[0], "Other")
        allowed = {role: can(Actor(id=None, username=role, role=role), action) for role in ROLES}
        rows.append(RoleMatrixRow(area=area, action=action, label=action_label(action), allowed=allowed))
    return sorted(rows, key=lambda r: order.index(r.area))  # stable: PERMISSIONS order within an area


def role_matrix_table() -> list[dict[str, str]]:
    """The matrix as display rows: Area, What, then one column per role with "yes" or ""."""
    return [
        {"Area": r.area, "What": r.label} | {role.replace("_", " "): YES if r.allowed[role] else "" for role in ROLES}
        for r in role_matrix()
    ]
