"""Shared fixtures.

`db` runs each service test twice: on SQLite and on Postgres (one fixture, two legs,
as in mlflow's tests/db). The Postgres leg is on when MLOPS_TEST_POSTGRES=1 (CI sets it);
it creates its own database on the server at MLOPS_TEST_PG_ADMIN_URL and drops it after.
With MLOPS_TEST_STRICT=1 (CI) a leg that cannot run fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from mlops_core.services.auth import Actor

PG_ADMIN_URL = os.environ.get("MLOPS_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STRICT = os.environ.get("MLOPS_TEST_STRICT") == "1"
TEST_PASSWORD = "correct-horse-battery"
ROLE_USERS = {"business": "alice", "data_engineer": "dan", "data_scientist": "sara", "ops": "omar", "admin": "admin"}


def skip_or_fail(reason: str):
    if STRICT:
        pytest.fail(f"{reason} (MLOPS_TEST_STRICT=1: a leg may not be skipped)")
    pytest.skip(reason)


CHROMIUM = os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium")
_LEGS: dict[str, bool] = {}


def _leg_setting(name: str) -> bool | None:
    """MLOPS_TEST_<NAME>=1 forces a leg on, =0 off; unset means "on when its service is there"."""
    value = os.environ.get(f"MLOPS_TEST_{name}")
    return None if value in (None, "") else value == "1"


def postgres_enabled() -> bool:
    """The Postgres leg: forced by MLOPS_TEST_POSTGRES, else on when a server answers at the admin URL."""
    if "postgres" not in _LEGS:
        forced = _leg_setting("POSTGRES")
        if forced is not None:
            _LEGS["postgres"] = forced
        else:
            try:
                probe = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
                with probe.connect() as c:
                    c.execute(text("SELECT 1"))
                probe.dispose()
                _LEGS["postgres"] = True
            except Exception:  # noqa: BLE001 - any failure means "no server here": the leg stays off
                _LEGS["postgres"] = False
    return _LEGS["postgres"]


def browser_enabled() -> bool:
    """The browser leg: forced by MLOPS_TEST_BROWSER, else on when Debian's chromium is installed."""
    if "browser" not in _LEGS:
        forced = _leg_setting("BROWSER")
        _LEGS["browser"] = forced if forced is not None else Path(CHROMIUM).exists()
    return _LEGS["browser"]


def pytest_terminal_summary(terminalreporter):
    """One closing line: which legs ran, and how to switch on the others."""
    legs = {"SQLite": True, "Postgres": postgres_enabled(), "browser": browser_enabled()}
    ran = ", ".join(k for k, v in legs.items() if v)
    off = [k for k, v in legs.items() if not v]
    hint = {
        "Postgres": f"a Postgres at {PG_ADMIN_URL} (or MLOPS_TEST_PG_ADMIN_URL), or MLOPS_TEST_POSTGRES=1",
        "browser": f"chromium at {CHROMIUM} (apt-get install chromium), or MLOPS_TEST_BROWSER=1",
    }
    line = f"legs run: {ran}"
    if off:
        line += "; off: " + "; ".join(f"{k} (needs {hint[k]})" for k in off)
    terminalreporter.write_line(line)


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh Postgres database for this test session, dropped at the end."""
    if not postgres_enabled():
        skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
    name = f"mlops_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        skip_or_fail(f"cannot create a Postgres test database at {PG_ADMIN_URL}: {exc}")
    url = _pg_url(name)
    try:
        yield url
    finally:
        forget_database(url)
        with admin.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade_schema(db)
    with db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_database_url) -> str:
    db = Database(pg_database_url)
    upgrade_schema(db)
    db.dispose()
    return pg_database_url


def _truncate_all(db: Database) -> None:
    from sqlmodel import SQLModel

    import mlops_core.models  # noqa: F401

    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with db.engine.begin() as c:
        c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path, sqlite_template, monkeypatch):
    """A migrated, empty database; each test runs once per backend."""
    monkeypatch.setenv("ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    database = Database(url)
    if request.param == "postgres":
        _truncate_all(database)
    try:
        yield database
    finally:
        database.dispose()
        forget_database(url)
        reload_settings()


@pytest.fixture
def sqlite_db(tmp_path, sqlite_template, monkeypatch):
    """SQLite only (for tests about SQLite behaviour, pages and processes)."""
    monkeypatch.setenv("ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    database = Database(url)
    yield database
    database.dispose()
    forget_database(url)
    reload_settings()


@pytest.fixture
def system() -> Actor:
    return Actor.system()


@pytest.fixture
def people(db, system) -> dict[str, Actor]:
    """One user per role, keyed by role: business=alice, data_engineer=dan, ... admin=admin."""
    return make_people(db)


_HASH_CACHE: dict[str, str] = {}


def make_people(database: Database) -> dict[str, Actor]:
    """Insert the five role users directly (hashing once per session keeps the suite fast;
    `create_user` itself is covered by tests/services/test_users.py)."""
    from mlops_core.models.users import User
    from mlops_core.services.users import hash_password

    pw_hash = _HASH_CACHE.setdefault("h", hash_password(TEST_PASSWORD))
    out = {}
    with database.unit_of_work() as s:
        rows = []
        for role, username in ROLE_USERS.items():
            u = User(
                username=username,
                display_name=username.title(),
                email=f"{username}@example.com",
                role=role,
                password_hash=pw_hash,
            )
            s.add(u)
            rows.append(u)
        s.flush()
        for u in rows:
            out[u.role] = Actor(id=u.id, username=u.username, role=u.role)
    return out


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest replaces sys.modules["__main__"] with app.py and leaves it there; a process
    started later with multiprocessing "spawn" would then run app.py. Put the real one back after each test."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
