"""Workspace overview for the Home page: counts per stage and recent activity, all from SQL.

Each stage adds a counter to COUNTERS: (stage, label, function(session) -> int).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func
from sqlmodel import Session, select

from ..db import Database
from ..models.users import User
from .audit import AuditEventPublic, list_events
from .auth import Actor


def _count(model) -> Callable[[Session], int]:
    return lambda s: s.exec(select(func.count()).select_from(model)).one()


COUNTERS: list[tuple[str, str, Callable[[Session], int]]] = [
    ("Workspace", "people", _count(User)),
]


def register_counter(stage: str, label: str, fn: Callable[[Session], int]) -> None:
    if not any(st == stage and lb == label for st, lb, _ in COUNTERS):
        COUNTERS.append((stage, label, fn))


@dataclass
class Overview:
    counts: list[tuple[str, str, int]]
    recent: list[AuditEventPublic]


def _load_stage_counters() -> None:
    # Importing a stage's service module registers its counters.
    import importlib
    import importlib.util

    for name in ("usecases", "datasets", "experiments", "deployments", "monitoring"):
        mod = f"mlops_core.services.{name}"
        try:
            if importlib.util.find_spec(mod) is not None:
                importlib.import_module(mod)
        except ModuleNotFoundError:
            pass


def workspace_overview(db: Database, *, actor: Actor, recent: int = 15) -> Overview:
    _load_stage_counters()
    with db.read() as s:
        counts = [(stage, label, int(fn(s))) for stage, label, fn in COUNTERS]
    return Overview(counts=counts, recent=list_events(db, actor=actor, limit=recent).events)
