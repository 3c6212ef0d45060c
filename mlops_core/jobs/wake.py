"""Waking idle workers when a job is enqueued.

An idle worker polls the queue every MLOPS_WORKER_POLL_SECONDS; on top of that, enqueue wakes it at
once, so a job starts within milliseconds instead of half a poll interval on average. Best effort:
a lost wake-up only means the next poll finds the job. Postgres: NOTIFY on a channel the worker
LISTENs to (delivered at commit, dropped on rollback). SQLite (one machine): after the commit,
enqueue bumps the modification time of a small file next to the database, which the waiting
worker checks every WAKE_CHECK_S (a stat, not a query).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session as _OrmSession
from sqlmodel import Session

if TYPE_CHECKING:  # pragma: no cover
    from ..db import Database

log = logging.getLogger(__name__)

WAKE_CHANNEL = "mlops_jobs"
WAKE_CHECK_S = 0.02
_WAKE_KEY = "mlops_jobs_wake_file"


def wake_file_for(url) -> str | None:
    """The wake-up file of a SQLite database URL (None for an in-memory or non-SQLite database)."""
    url = make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(os.path.expanduser(database)) + "-jobs-wake"


def wake_workers_on_commit(session: Session) -> None:
    """Called by `enqueue` inside its transaction: wake the idle workers once it commits."""
    try:
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})
        else:
            path = wake_file_for(bind.url)
            if path:
                session.info[_WAKE_KEY] = path
    except Exception as exc:  # noqa: BLE001 - the poll finds the job anyway
        log.debug("could not arrange to wake the workers: %s", exc)


@event.listens_for(_OrmSession, "after_commit")
def _wake_after_commit(session) -> None:
    path = session.info.pop(_WAKE_KEY, None)
    if path:
        _touch(path)


@event.listens_for(_OrmSession, "after_rollback")
def _no_wake_after_rollback(session) -> None:
    session.info.pop(_WAKE_KEY, None)


def _touch(path: str) -> None:
    now = time.time_ns()  # an explicit timestamp: two wake-ups never share a (coarse) mtime
    try:
        try:
            os.utime(path, ns=(now, now))
        except FileNotFoundError:
            with open(path, "a", encoding="utf-8"):
                pass
            os.utime(path, ns=(now, now))
    except OSError as exc:
        log.debug("could not touch the job wake-up file %s: %s", path, exc)


class EnqueueListener:
    """What an idle worker watches to learn that a job was enqueued (see above).

    `fileno()`: a descriptor to wait on (Postgres: the LISTEN connection), or None (SQLite: call
    `check()` every WAKE_CHECK_S). `check()` -> True when a job may have been enqueued since the
    last call. Never raises: on any error it falls back to "no news" and the worker's poll.
    """

    RECONNECT_S = 10.0

    def __init__(self, db: Database):
        self.db = db
        self.path = wake_file_for(db.engine.url) if db.is_sqlite else None
        self._stamp = self._file_stamp()
        self._conn = None
        self._retry_at = 0.0
        self.enabled = (self.path is not None) or db.dialect == "postgresql"

    def _file_stamp(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_ino)
        except (OSError, TypeError):
            return None

    def connect(self) -> bool:
        """Postgres: open the LISTEN connection if it is not open (True when it just opened: whatever
        was enqueued while it was closed must be looked for)."""
        if self.db.dialect != "postgresql" or self._conn is not None or time.monotonic() < self._retry_at:
            return False
        try:
            import psycopg

            conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {WAKE_CHANNEL}")
            self._conn = conn
            return True
        except Exception as exc:  # noqa: BLE001 - the database may be away; the poll goes on
            log.debug("could not LISTEN for enqueued jobs: %s", exc)
            self._retry_at = time.monotonic() + self.RECONNECT_S
            return False

    def fileno(self) -> int | None:
        if self._conn is None:
            return None
        try:
            return self._conn.fileno()
        except Exception:  # noqa: BLE001
            self.close()
            return None

    def check(self) -> bool:
        if self.path is not None:
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                return True
            return False
        if self._conn is None:
            return False
        try:
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            woken = False
            while pgconn.notifies() is not None:
                woken = True
            return woken
        except Exception as exc:  # noqa: BLE001 - the connection broke: reconnect later, poll meanwhile
            log.debug("the LISTEN connection broke: %s", exc)
            self.close()
            self._retry_at = time.monotonic() + self.RECONNECT_S
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
                pass
