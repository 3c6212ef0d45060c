"""Workspace overview for the Home page: counts per stage and recent activity, all from SQL.

COUNTERS is the one list of what the Home page counts: (stage, label, function(session) -> int), in the
order of the lifecycle. It reads the tables directly, so it imports no stage service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..db import Database
from ..models.collab import Signoff
from ..models.datasets import TRAINABLE_STATUSES, Dataset, DatasetVersion
from ..models.deployments import Deployment
from ..models.experiments import ModelVersion, Run
from ..models.monitoring import Alert, Monitor
from ..models.usecases import UseCase
from ..models.users import User
from .audit import AuditEventPublic, list_events
from .auth import Actor


def _count(model, *where) -> Callable[[Session], int]:
    return lambda s: s.exec(select(func.count()).select_from(model).where(*where)).one()


COUNTERS: list[tuple[str, str, Callable[[Session], int]]] = [
    ("Workspace", "people", _count(User)),
    ("Use cases", "use cases", _count(UseCase)),
    ("Use cases", "in production", _count(UseCase, col(UseCase.status).in_(("deployed", "monitored")))),
    ("Use cases", "sign-offs pending", _count(Signoff, Signoff.status == "pending")),
    ("Data", "datasets", _count(Dataset)),
    ("Data", "versions ready for training", _count(DatasetVersion, col(DatasetVersion.status).in_(TRAINABLE_STATUSES))),
    ("Experiments", "runs", _count(Run)),
    ("Experiments", "model versions", _count(ModelVersion)),
    ("Deployment", "deployments serving", _count(Deployment, col(Deployment.model_version_id).is_not(None))),
    ("Monitoring", "monitors", _count(Monitor)),
    ("Monitoring", "open alerts", _count(Alert, col(Alert.state) != "resolved")),
]


@dataclass
class Overview:
    counts: list[tuple[str, str, int]]
    recent: list[AuditEventPublic]


def workspace_overview(db: Database, *, actor: Actor, recent: int = 15) -> Overview:
    with db.read() as s:
        counts = [(stage, label, int(fn(s))) for stage, label, fn in COUNTERS]
    return Overview(counts=counts, recent=list_events(db, actor=actor, limit=recent).events)
