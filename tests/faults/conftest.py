"""Fixtures of the fault suite: Postgres databases for real processes, a shared artifact root, services."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from tests.conftest import PG_ADMIN_URL, _pg_url, _truncate_all, postgres_enabled, skip_or_fail
from tests.faults.world import Services


@pytest.fixture
def artifact_root(tmp_path, monkeypatch):
    """One ARTIFACT_ROOT shared by this test process and the processes it starts (a shared store)."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("ARTIFACT_ROOT", str(root))
    reload_settings()
    yield root
    reload_settings()


@pytest.fixture
def fresh_pg():
    """A brand-new migrated Postgres database of its own (this test may cut all of its connections)."""
    if not postgres_enabled():
        skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
    name = f"mlops_fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        skip_or_fail(f"cannot create a Postgres test database at {PG_ADMIN_URL}: {exc}")
    url = _pg_url(name)
    d = Database(url)
    upgrade_schema(d)
    d.dispose()
    try:
        yield url
    finally:
        forget_database(url)
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_migrated):
    """The session's migrated Postgres database, emptied for this test."""
    d = Database(pg_migrated)
    _truncate_all(d)
    d.dispose()
    return pg_migrated


@pytest.fixture
def services_for(tmp_path, artifact_root):
    made: list[Services] = []

    def make(url: str) -> Services:
        s = Services(url, tmp_path, artifact_root)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop_all()
