"""Fixtures of the fault suite: Postgres databases for real processes, a shared artifact root, services."""

from __future__ import annotations

import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from tests.conftest import PG_ADMIN_URL, _pg_url, _truncate_all, postgres_enabled, skip_or_fail
from tests.faults import workers
from tests.faults.world import Deployed, Services, seed_deployment


@pytest.fixture
def artifact_root(tmp_path, monkeypatch):
    """One ARTIFACT_ROOT shared by this test process and the processes it starts (a shared store)."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("ARTIFACT_ROOT", str(root))
    reload_settings()
    yield root
    reload_settings()


def _create_database(template: str | None = None) -> str:
    if not postgres_enabled():
        skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
    name = f"mlops_fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if template:
                c.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": template}
                )
                c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            else:
                c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"cannot create a Postgres test database at {PG_ADMIN_URL}: {exc}")
    finally:
        admin.dispose()
    return name


def _drop_database(name: str) -> None:
    url = _pg_url(name)
    forget_database(url)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture
def fresh_pg():
    """A brand-new migrated Postgres database of its own (this test may cut all of its connections)."""
    name = _create_database()
    d = Database(_pg_url(name))
    upgrade_schema(d)
    d.dispose()
    try:
        yield _pg_url(name)
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory):
    """Seeded once per session (training a model is the slow part): a Postgres database with a deployed
    `churn` model and an API key, and its artifact store. Tests get copies (`seeded_pg`)."""
    import os

    name = _create_database()
    url = _pg_url(name)
    store = tmp_path_factory.mktemp("fault_tpl") / "artifacts"
    old = os.environ.get("ARTIFACT_ROOT")
    os.environ["ARTIFACT_ROOT"] = str(store)
    reload_settings()
    try:
        d = Database(url)
        upgrade_schema(d)
        dep = seed_deployment(d)
        d.dispose()
        forget_database(url)
    finally:
        if old is None:
            os.environ.pop("ARTIFACT_ROOT", None)
        else:
            os.environ["ARTIFACT_ROOT"] = old
        reload_settings()
    try:
        yield name, store, dep
    finally:
        _drop_database(name)


@pytest.fixture
def seeded_pg(deployed_template, artifact_root) -> "tuple[str, Deployed]":
    """A fresh Postgres database of this test's own, copied from the seeded template (CREATE DATABASE ...
    TEMPLATE), with its artifact store copied to this test's ARTIFACT_ROOT. Returns (url, deployment)."""
    template, store, dep = deployed_template
    name = _create_database(template=template)
    shutil.copytree(store, artifact_root, dirs_exist_ok=True)
    try:
        yield _pg_url(name), dep
    finally:
        _drop_database(name)


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


# --- real worker processes (tests/faults/workers.py) ---------------------------------------------


@pytest.fixture(params=["postgres"] if postgres_enabled() else ["sqlite"])
def db_url(request, tmp_path, sqlite_template):
    """Postgres when its leg is on (several workers on one server: the production shape), else SQLite."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_migrated")
    d = Database(url)
    _truncate_all(d)
    d.dispose()
    yield url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def workers_for(tmp_path):
    made: list[workers.Workers] = []

    def make(url: str) -> workers.Workers:
        w = workers.Workers(url, tmp_path)
        made.append(w)
        workers._current.append(w)
        return w

    yield make
    for w in made:
        w.stop_all()
        workers._current.remove(w)
