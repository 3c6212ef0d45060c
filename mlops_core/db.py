"""Engine factory, unit of work and schema check.

One `Database` per DATABASE_URL. `db.unit_of_work()` is one transaction: leaving the
block normally commits, an exception rolls back; low-level driver errors come out as
domain errors with a sentence that says what to do (pattern from mlflow's
`mlflow/store/db/utils.py` and cosmicpython's unit of work).

SQLite: WAL (readers never block the writer), foreign keys on, a generous busy timeout,
and write transactions start with BEGIN IMMEDIATE so two writers queue up instead of
deadlocking on a lock upgrade ("database is locked").
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from .config import DATA_DIR, PROJECT_ROOT, get_settings
from .errors import Conflict, DatabaseUnavailable, DomainError, SchemaOutOfDate

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def utcnow() -> datetime:
    """Aware UTC. SQLModel's datetime columns refuse naive values and return UTC on both databases."""
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a Postgres URL and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def describe_url(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is described as-is
        return "<unparseable DATABASE_URL>"


def _create_engine(url: str) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise DatabaseUnavailable(
            f"DATABASE_URL is not a valid database URL ({exc}); "
            "use e.g. sqlite:///data/mlops_hub.db or postgresql://user@host:5432/dbname"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if parent == DATA_DIR.resolve():
                parent.mkdir(parents=True, exist_ok=True)  # the default location: create it on first start
            if not parent.exists():
                raise DatabaseUnavailable(
                    f"the folder for the SQLite database does not exist: {parent}; "
                    "create it or point DATABASE_URL elsewhere"
                )
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            # No pre-ping: a file database has no server to drop the connection (it cost a SELECT 1 per checkout).
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _sqlite_begin).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            pool_recycle=1800,
            connect_args={"connect_timeout": 10},
        )
    raise DatabaseUnavailable(
        f"unsupported database {parsed.get_backend_name()!r} in DATABASE_URL; use sqlite or postgresql"
    )


def translate_db_error(exc: Exception, url: str) -> DomainError:
    """Turn a driver error into a domain error whose message says how to fix it."""
    if isinstance(exc, IntegrityError):
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        return Conflict(f"this would break a uniqueness or reference rule ({detail})")
    if isinstance(exc, OperationalError):
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        if "no such table" in detail or "does not exist" in detail and "relation" in detail:
            return SchemaOutOfDate(
                f"the database at {describe_url(url)} has no MLOps Hub schema ({detail}); "
                "run `python -m mlops_core init`"
            )
        return DatabaseUnavailable(
            f"cannot use the database at {describe_url(url)}: {detail}. "
            "Check that it is running and that DATABASE_URL is right"
        )
    if isinstance(exc, DBAPIError):
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return DatabaseUnavailable(f"database error at {describe_url(url)}: {detail}")
    return DomainError(str(exc))


class Database:
    """Engine + sessions for one DATABASE_URL. Thread-safe; share one per process."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = _create_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction. Commit on normal exit, roll back on an exception."""
        session = Session(self._write_engine if write else self.engine, expire_on_commit=False)
        try:
            yield session
            if write:
                session.commit()
            else:
                session.rollback()
        except DomainError:
            session.rollback()
            raise
        except DBAPIError as exc:
            session.rollback()
            raise translate_db_error(exc, self.url) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def read(self):
        """A read-only unit of work (never takes the SQLite write lock)."""
        return self.unit_of_work(write=False)

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise translate_db_error(exc, self.url) from exc

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def get_database(url: str | None = None) -> Database:
    """The process-wide Database for `url` (default: DATABASE_URL)."""
    url = normalise_url(url or get_settings().database_url)
    with _lock:
        db = _databases.get(url)
        if db is None:
            db = Database(url)
            _databases[url] = db
        return db


def forget_database(url: str) -> None:
    with _lock:
        db = _databases.pop(normalise_url(url), None)
    if db is not None:
        db.dispose()


# --- schema (Alembic) ---------------------------------------------------------


def alembic_config(db: Database):
    # alembic only for schema checks and upgrades, not at every import of db
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def head_revision(db: Database) -> str:
    # alembic only for schema checks and upgrades, not at every import of db
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(db))
    heads = script.get_heads()
    return heads[0]


def current_revision(db: Database) -> str | None:
    # alembic only for schema checks and upgrades, not at every import of db
    from alembic.runtime.migration import MigrationContext

    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise translate_db_error(exc, db.url) from exc


def upgrade_schema(db: Database) -> tuple[str | None, str]:
    """Upgrade to head; returns (revision before, revision after)."""
    # alembic only for schema checks and upgrades, not at every import of db
    from alembic import command

    before = current_revision(db)
    _refuse_newer_schema(db, before)
    cfg = alembic_config(db)
    try:
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except DBAPIError as exc:
        raise translate_db_error(exc, db.url) from exc
    return before, head_revision(db)


def _refuse_newer_schema(db: Database, current: str | None) -> None:
    # alembic only for schema checks and upgrades, not at every import of db
    from alembic.script import ScriptDirectory

    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config(db))
    try:
        script.get_revision(current)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown revisions
        raise SchemaOutOfDate(
            f"the database at {describe_url(db.url)} has schema revision {current}, which this version of "
            "MLOps Hub does not know: it was created by a newer version. Upgrade MLOps Hub, "
            "or point DATABASE_URL at another database"
        ) from None


def check_schema(db: Database) -> None:
    """Raise SchemaOutOfDate unless the database is at the head revision."""
    current = current_revision(db)
    if current is None:
        raise SchemaOutOfDate(
            f"the database at {describe_url(db.url)} is empty; run `python -m mlops_core init` to create the schema"
        )
    _refuse_newer_schema(db, current)
    head = head_revision(db)
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is out of date (at {current}, needs {head}); "
            "run `python -m mlops_core init` to upgrade it"
        )
