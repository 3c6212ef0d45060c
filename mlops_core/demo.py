"""The demo workspace (DESIGN.md, "Contracts" -> Demo workspace).

`seed_demo` runs the seeders in STAGE_SEEDERS in order; each stage adds its own
seeder (a function `(db, ctx) -> None` that appends lines to `ctx.lines`).
Everything shown in the demo is computed from what the seeders write.
"""
from __future__ import annotations

import importlib
import importlib.util
import secrets
from dataclasses import dataclass, field
from typing import Any

from .config import get_settings
from .db import Database
from .services import users
from .services.auth import Actor

DEMO_ACCOUNTS = [
    ("alice", "business", "Alice Martin", "alice@example.com"),
    ("dan", "data_engineer", "Dan Okafor", "dan@example.com"),
    ("sara", "data_scientist", "Sara Lindqvist", "sara@example.com"),
    ("omar", "ops", "Omar Haddad", "omar@example.com"),
    ("admin", "admin", "Workspace Admin", "admin@example.com"),
]

# Stage seeders, in order: module path -> function name. Missing modules are skipped.
STAGE_SEEDERS: list[tuple[str, str]] = [
    ("mlops_core.demo_stages.usecases", "seed"),
    ("mlops_core.demo_stages.datasets", "seed"),
    ("mlops_core.demo_stages.experiments", "seed"),
    ("mlops_core.demo_stages.deployments", "seed"),
    ("mlops_core.demo_stages.monitoring", "seed"),
]
LARGE_SEEDER = ("mlops_core.demo_stages.large", "seed_large")


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


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def seed_demo(db: Database, *, scale: str = "small", only_if_empty: bool = False,
              password: str | None = None) -> DemoResult:
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
            users.create_user(db, actor=system, username=username, password=password, role=role,
                              display_name=name, email=email)
    actors = {u: users.actor_for_username(db, username=u) for u, *_ in DEMO_ACCOUNTS}
    ctx = DemoContext(actors=actors, password=password, scale=scale)
    for module, fn in STAGE_SEEDERS:
        if _module_exists(module):
            getattr(importlib.import_module(module), fn)(db, ctx)
    if scale == "large":
        module, fn = LARGE_SEEDER
        if not _module_exists(module):
            raise RuntimeError("the large-workspace generator is not available in this build")
        getattr(importlib.import_module(module), fn)(db, ctx)
    lines = ["demo workspace ready. Log in at the UI with one of:"]
    for username, role, *_ in DEMO_ACCOUNTS:
        lines.append(f"  {username:<6} ({role})")
    if generated:
        lines.append(f"demo password (random, set MLOPS_DEMO_PASSWORD to choose it): {password}")
    else:
        lines.append("demo password: the value of MLOPS_DEMO_PASSWORD")
    lines.extend(ctx.lines)
    return DemoResult(True, lines)
