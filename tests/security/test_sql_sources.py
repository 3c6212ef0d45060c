"""Issue 12, finding 5: "read-only" SQL sources were read-write.

`WITH x AS (SELECT 1) DELETE ...` passed the SELECT/WITH text check and changed the source table; the app's own
database configured as a source gave away password hashes; on Postgres a superuser URL read server files and
pg_sleep ran without a limit. Each test does what the attacker did and asserts what a data engineer sees: the
refusal, its message, the source table unchanged and nothing registered.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from mlops_core import data_io
from mlops_core.config import reload_settings
from mlops_core.errors import ValidationError
from mlops_core.services import datasets
from tests.conftest import PG_ADMIN_URL, postgres_enabled, skip_or_fail

WRITES = {
    "delete": "WITH x AS (SELECT 1) DELETE FROM customers",
    "update": "WITH x AS (SELECT 1) UPDATE customers SET age = 0",
    "insert": "WITH x AS (SELECT 1) INSERT INTO customers (name, age) SELECT name, age FROM customers",
}
ROWS = [("ann", 31), ("bob", 45), ("cem", 27)]


@pytest.fixture
def dan(people):
    return people["data_engineer"]


def _connections(monkeypatch, **urls) -> None:
    monkeypatch.setenv("MLOPS_SQL_CONNECTIONS", json.dumps(urls))


@pytest.fixture
def sqlite_source(tmp_path, monkeypatch):
    """A warehouse file with one table, configured as the connection "warehouse"."""
    path = tmp_path / "warehouse.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (name TEXT, age INTEGER)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", ROWS)
    con.commit()
    con.close()
    _connections(monkeypatch, warehouse=f"sqlite:///{path}")
    return path


def _sqlite_rows(path):
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute("SELECT name, age FROM customers").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_a_cte_that_writes_to_a_sqlite_source_is_refused_and_the_table_is_unchanged(db, dan, sqlite_source, kind):
    with pytest.raises(ValidationError, match="read-only") as err:
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="customers", connection="warehouse", query=WRITES[kind]
        )
    assert "nothing was changed" in str(err.value)
    assert _sqlite_rows(sqlite_source) == sorted(ROWS)
    assert datasets.list_datasets(db) == []


def test_a_sqlite_source_still_answers_a_plain_select(db, dan, sqlite_source):
    v = datasets.register_version_from_sql(
        db,
        actor=dan,
        dataset_name="customers",
        connection="warehouse",
        query="WITH adults AS (SELECT * FROM customers WHERE age >= 30) SELECT * FROM adults",
    )
    assert v.n_rows == 2


def test_a_sqlite_query_past_the_timeout_is_stopped(db, dan, sqlite_source, monkeypatch):
    monkeypatch.setenv("MLOPS_SQL_TIMEOUT_SECONDS", "1")
    reload_settings()
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
        "SELECT count(*) AS c FROM n"
    )
    started = time.monotonic()
    with pytest.raises(ValidationError, match=r"longer than the 1 s limit \(MLOPS_SQL_TIMEOUT_SECONDS\)"):
        datasets.register_version_from_sql(db, actor=dan, dataset_name="customers", connection="warehouse", query=slow)
    assert time.monotonic() - started < 5
    assert datasets.list_datasets(db) == []


def test_the_apps_own_database_as_a_source_is_refused_when_the_setting_is_read_and_when_used(db, dan, monkeypatch):
    _connections(monkeypatch, hub=os.environ["DATABASE_URL"])
    with pytest.raises(ValidationError, match="points at MLOps Hub's own database") as err:
        data_io.sql_connections()
    assert "\n" not in str(err.value) and "'hub'" in str(err.value)
    with pytest.raises(ValidationError, match="own database"):
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="stolen", connection="hub", query="SELECT username, password_hash FROM users"
        )
    assert datasets.list_datasets(db) == []


def test_a_symlink_to_the_apps_sqlite_file_is_refused_too(sqlite_db, tmp_path, monkeypatch):
    app_file = sqlite_db.engine.url.database
    link = tmp_path / "innocent-looking.db"
    link.symlink_to(app_file)
    _connections(monkeypatch, reports=f"sqlite:///{link}")
    with pytest.raises(ValidationError, match="own database"):
        data_io.sql_connections()


def test_a_source_that_reaches_the_apps_database_under_another_url_is_refused_when_used(db, monkeypatch, tmp_path):
    """The setting is checked by URL; at use the database is compared by identity (file, or server + dbname),
    so a spelling the URL check does not know (another host name for the same server) is caught too."""
    app_url = os.environ["DATABASE_URL"]
    _connections(monkeypatch, hub=app_url)
    # Make the URL comparison miss, as another host name for the same server would.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    reload_settings()
    assert "hub" in data_io.sql_connections()
    with pytest.raises(ValidationError, match="own database"):
        data_io.query_to_parquet("hub", "SELECT * FROM users", app_db=db)


def test_a_connection_of_another_kind_is_refused_with_a_one_line_reason(monkeypatch):
    _connections(monkeypatch, legacy="mysql://reader@127.0.0.1/shop")
    with pytest.raises(ValidationError, match="PostgreSQL or SQLite"):
        data_io.sql_connections()


# --- Postgres source ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_source():
    """A source database with a `customers` table and two logins: `reader` (not a superuser, but with every
    table privilege, so only read-only mode can stop a write) and the superuser admin URL."""
    if not postgres_enabled():
        skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
    suffix = uuid.uuid4().hex[:10]
    dbname, role = f"mlops_src_{suffix}", f"mlops_reader_{suffix}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{dbname}"'))
            c.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        skip_or_fail(f"cannot create a Postgres source database at {PG_ADMIN_URL}: {exc}")
    owner = create_engine(f"{base}/{dbname}")
    with owner.begin() as c:
        c.execute(text("CREATE TABLE customers (id serial PRIMARY KEY, name text, age integer)"))
        for name, age in ROWS:
            c.execute(text("INSERT INTO customers (name, age) VALUES (:n, :a)"), {"n": name, "a": age})
        c.execute(text(f'GRANT ALL ON customers TO "{role}"'))
        c.execute(text(f'GRANT USAGE ON SEQUENCE customers_id_seq TO "{role}"'))
    owner.dispose()
    reader_url = f"postgresql://{role}@{base.split('@', 1)[1]}/{dbname}"
    try:
        yield {"reader": reader_url, "superuser": f"{base}/{dbname}", "owner": f"{base}/{dbname}"}
    finally:
        with admin.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": dbname},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}"'))
            c.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def _pg_rows(url):
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return sorted(tuple(r) for r in c.execute(text("SELECT name, age FROM customers")))
    finally:
        eng.dispose()


def test_a_postgres_reader_role_registers_a_select(db, dan, pg_source, monkeypatch):
    _connections(monkeypatch, warehouse=pg_source["reader"])
    v = datasets.register_version_from_sql(
        db,
        actor=dan,
        dataset_name="customers",
        connection="warehouse",
        query="SELECT name, age FROM customers ORDER BY name",
    )
    assert v.n_rows == 3


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_a_cte_that_writes_to_a_postgres_source_is_refused_and_the_table_is_unchanged(
    db, dan, pg_source, monkeypatch, kind
):
    # The reader role has INSERT/UPDATE/DELETE rights: only the read-only transaction stands in the way.
    _connections(monkeypatch, warehouse=pg_source["reader"])
    with pytest.raises(ValidationError, match="read-only"):
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="customers", connection="warehouse", query=WRITES[kind] + " RETURNING name, age"
        )
    assert _pg_rows(pg_source["owner"]) == sorted(ROWS)
    assert datasets.list_datasets(db) == []


def test_a_select_that_writes_through_a_function_is_refused_by_the_read_only_transaction(
    db, dan, pg_source, monkeypatch
):
    """A plain SELECT can still write (nextval, or any function with side effects): the transaction refuses it."""
    _connections(monkeypatch, warehouse=pg_source["reader"])
    with pytest.raises(ValidationError, match="read-only"):
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="ids", connection="warehouse", query="SELECT nextval('customers_id_seq') AS id"
        )
    eng = create_engine(pg_source["owner"])
    try:
        with eng.connect() as c:
            assert c.execute(text("SELECT last_value FROM customers_id_seq")).scalar() == len(ROWS)
    finally:
        eng.dispose()
    assert datasets.list_datasets(db) == []


def test_pg_sleep_past_the_timeout_setting_is_cut_off(db, dan, pg_source, monkeypatch):
    _connections(monkeypatch, warehouse=pg_source["reader"])
    monkeypatch.setenv("MLOPS_SQL_TIMEOUT_SECONDS", "1")
    reload_settings()
    started = time.monotonic()
    with pytest.raises(ValidationError, match=r"longer than the 1 s limit"):
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="sleepy", connection="warehouse", query="SELECT pg_sleep(6) AS slept"
        )
    assert time.monotonic() - started < 4
    assert datasets.list_datasets(db) == []


def test_a_superuser_connection_is_refused_before_its_query_runs(db, dan, pg_source, monkeypatch):
    """Read-only does not stop pg_read_file (it is a read): the role must not be a superuser."""
    _connections(monkeypatch, warehouse=pg_source["superuser"])
    with pytest.raises(ValidationError, match="superuser"):
        datasets.register_version_from_sql(
            db,
            actor=dan,
            dataset_name="files",
            connection="warehouse",
            query="SELECT pg_read_file('/etc/hostname') AS f",
        )
    assert datasets.list_datasets(db) == []


def test_a_reader_role_cannot_read_server_files(db, dan, pg_source, monkeypatch):
    _connections(monkeypatch, warehouse=pg_source["reader"])
    with pytest.raises(ValidationError, match="permission denied"):
        datasets.register_version_from_sql(
            db,
            actor=dan,
            dataset_name="files",
            connection="warehouse",
            query="SELECT pg_read_file('/etc/hostname') AS f",
        )
    assert datasets.list_datasets(db) == []
