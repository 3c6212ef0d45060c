"""20 concurrent writers on SQLite (WAL): no "database is locked" reaches a user, no lost update."""

import multiprocessing as mp

from sqlalchemy import text

from mlops_core.db import Database
from mlops_core.services import audit, users
from mlops_core.services.auth import Actor

WRITERS = 20
WRITES_EACH = 10


def _writer(url: str, n: int, errors) -> None:
    db = Database(url)
    system = Actor.system()
    try:
        users.create_user(db, actor=system, username=f"writer{n}", password="a-long-enough-pass", role="ops")
    except Exception as exc:  # noqa: BLE001
        errors.put(f"writer {n}: {type(exc).__name__}: {exc}")
    for i in range(WRITES_EACH):
        try:
            users.set_role(db, actor=system, username=f"writer{n}", role="business" if i % 2 == 0 else "ops")
            # A read-modify-write on one shared row: every increment must survive.
            with db.unit_of_work() as s:
                value = s.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
                s.execute(text("UPDATE counter SET value = :v WHERE id = 1"), {"v": value + 1})
        except Exception as exc:  # noqa: BLE001 - every error is a failure of this test
            errors.put(f"writer {n}: {type(exc).__name__}: {exc}")
    db.dispose()


def test_twenty_concurrent_writers_lose_nothing_and_never_see_database_is_locked(sqlite_db):
    with sqlite_db.engine.begin() as c:
        c.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        c.execute(text("INSERT INTO counter VALUES (1, 0)"))
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(sqlite_db.url, n, errors)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert users.count_users(sqlite_db) == WRITERS
    assert audit.list_events(sqlite_db, actor=Actor.system(), action="user.set_role").total == WRITERS * WRITES_EACH
    with sqlite_db.engine.connect() as c:
        assert c.execute(text("SELECT value FROM counter")).scalar_one() == WRITERS * WRITES_EACH
