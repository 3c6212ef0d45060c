"""Migrations and models agree; the app refuses an empty, old or newer schema with a fix."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import mlops_core.models  # noqa: F401
from mlops_core.db import Database, check_schema, upgrade_schema
from mlops_core.errors import SchemaOutOfDate


def test_migrated_schema_matches_the_models(db):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == [], (
        "the models and the migrations disagree.\nHOW TO FIX: MLOps Hub has shipped, so never rewrite an "
        "applied revision; add the change to a new revision in migrations/versions/ (the newest one, if it has "
        "not landed yet).\nDifferences: " + repr(diff)
    )


def test_check_schema_passes_on_a_migrated_database(db):
    check_schema(db)


def test_an_empty_database_is_refused_with_the_init_command(tmp_path):
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaOutOfDate, match="python -m mlops_core init"):
        check_schema(empty)


def test_a_database_from_a_newer_version_is_refused_not_downgraded(tmp_path):
    newer = Database(f"sqlite:///{tmp_path / 'newer.db'}")
    upgrade_schema(newer)
    with newer.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaOutOfDate, match="newer version"):
        check_schema(newer)
    with pytest.raises(SchemaOutOfDate, match="newer version"):
        upgrade_schema(newer)


def test_init_is_idempotent(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert upgrade_schema(d)[0] is None
    before, after = upgrade_schema(d)
    assert before == after


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(sqlite_db):
    with sqlite_db.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
