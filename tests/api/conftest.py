"""Shared fixtures of the Hub API tests: `hub` is a real `python -m mlops_core serve` process (uvicorn) on a
free port against a migrated test database holding the five role users and a personal access token each;
`api(role)` is an httpx.Client for that role's token (`api(None)` sends no token).

`hub` is module-scoped (one process per test module and leg) and runs on SQLite and, when the Postgres leg
is on (tests/conftest.py), on a Postgres database of its own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from mlops_core.services import users
from mlops_core.services.auth import Actor
from tests.api.test_scoring_api import _free_port, start_service, stop_service
from tests.conftest import PG_ADMIN_URL, _pg_url, make_people, postgres_enabled, skip_or_fail


@dataclass
class Hub:
    url: str
    db: Database
    people: dict[str, Actor]
    tokens: dict[str, str]
    env: dict
    proc: object
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None, **kw) -> httpx.Client:
        """An httpx client of the Hub API with `token` (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=kw.pop("timeout", 30), **kw)
        self.clients.append(c)
        return c

    def api(self, role: str | None) -> httpx.Client:
        """A client with the token of the user of `role` (business, data_engineer, data_scientist, ops, admin)."""
        return self.client(self.tokens[role] if role else None)


def _pg_create(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"cannot create a Postgres test database at {PG_ADMIN_URL}: {exc}")
    finally:
        admin.dispose()
    return _pg_url(name)


def _pg_drop(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hub(request, tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("hub")
    pg_name = None
    if request.param == "postgres":
        if not postgres_enabled():
            skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
        pg_name = f"mlops_api_{uuid.uuid4().hex[:10]}"
        url = _pg_create(pg_name)
    else:
        url = f"sqlite:///{tmp / 'hub.db'}"
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "ARTIFACT_ROOT")}
    os.environ.update({"DATABASE_URL": url, "ARTIFACT_ROOT": str(tmp / "artifacts")})
    reload_settings()
    db = Database(url)
    proc = None
    try:
        upgrade_schema(db)
        people = make_people(db)
        tokens = {
            role: users.create_token(db, actor=actor, username=actor.username, name=f"{role} tests")
            for role, actor in people.items()
        }
        env = dict(os.environ)
        port = _free_port()
        proc = start_service(env, port)
        h = Hub(url=f"http://127.0.0.1:{port}", db=db, people=people, tokens=tokens, env=env, proc=proc)
        yield h
        for c in h.clients:
            c.close()
    finally:
        if proc is not None:
            stop_service(proc)
        db.dispose()
        forget_database(url)
        if pg_name:
            _pg_drop(pg_name)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()


@pytest.fixture
def api(hub):
    """`api(role)` -> an httpx.Client of /api/v1 with that role's token (`api(None)`: no token)."""
    return hub.api
