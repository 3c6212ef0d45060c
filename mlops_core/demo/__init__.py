"""The demo workspace (DESIGN.md, "Contracts" -> Demo workspace).

`seed_demo` creates the demo accounts, then runs one seeder per stage, in order (each a function
`seed(db, ctx) -> None` in this package that appends lines to `ctx.lines`), and for `--scale large`
the company-sized workspace of `large.py`. Everything shown in the demo is computed from what the
seeders write; `customers.py` generates the data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import get_settings
from ..db import Database
from ..services import users
from ..services.auth import Actor
from . import datasets, deployments, experiments, large, monitoring, usecases
from . import value as value_demo

DEMO_ACCOUNTS = [
    ("alice", "business", "Alice Martin", "alice@example.com"),
    ("dan", "data_engineer", "Dan Okafor", "dan@example.com"),
    ("sara", "data_scientist", "Sara Lindqvist", "sara@example.com"),
    ("omar", "ops", "Omar Haddad", "omar@example.com"),
    ("admin", "admin", "Workspace Admin", "admin@example.com"),
]

# Stage seeders, in order: each reads what the previous ones left in ctx.data.
STAGE_SEEDERS: list[Callable[[Database, "DemoContext"], None]] = [
    usecases.seed,
    datasets.seed,
    experiments.seed,
    deployments.seed,
    monitoring.seed,
    value_demo.seed,  # the churn use case's canvas and value model (issue 20)
]


@dataclass
class DemoContext:
    """What seeders share: the demo actors by username, the password, and output lines."""

    actors: dict[str, Actor]
    password: str
    scale: str = "small"
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoResult:
    seeded: bool
    lines: list[str]


def seed_demo(
    db: Database, *, scale: str = "small", only_if_empty: bool = False, password: str | None = None
) -> DemoResult:
    if only_if_empty and users.count_users(db) > 0:
        return DemoResult(False, ["database already has users: demo not seeded"])
    generated = False
    password = password or get_settings().mlops_demo_password
    if not password:
        password = secrets.token_urlsafe(12)
        generated = True
    system = Actor.system()
    existing = {u.username for u in users.list_users(db, actor=system)}
    for username, role, name, email in DEMO_ACCOUNTS:
        if username not in existing:
            users.create_user(
                db, actor=system, username=username, password=password, role=role, display_name=name, email=email
            )
    actors = {u: users.actor_for_username(db, username=u) for u, *_ in DEMO_ACCOUNTS}
    ctx = DemoContext(actors=actors, password=password, scale=scale)
    for seed in STAGE_SEEDERS:
        seed(db, ctx)
    if scale == "large":
        large.seed_large(db, ctx)
    lines = ["demo workspace ready. Log in at the UI with one of:"]
    for username, role, *_ in DEMO_ACCOUNTS:
        lines.append(f"  {username:<6} ({role})")
    if generated:
        lines.append(f"demo password (random, set MLOPS_DEMO_PASSWORD to choose it): {password}")
    else:
        lines.append("demo password: the value of MLOPS_DEMO_PASSWORD")
    lines.extend(ctx.lines)
    return DemoResult(True, lines)
