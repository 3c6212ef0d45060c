"""Finding 9: `make run` on a team database seeded five demo accounts with one printed password and served
the UI on every interface. Now `up` seeds the demo only on SQLite, refuses a team database without an
active admin (one line saying how to create one), and the UI and API listen on 127.0.0.1 by default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mlops_core.config import PROJECT_ROOT
from mlops_core.db import Database, forget_database
from mlops_core.services import users
from tests.conftest import PG_ADMIN_URL, _pg_url, postgres_enabled, skip_or_fail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fresh_pg_url():
    """A brand-new, empty Postgres database (no schema, no users), dropped afterwards."""
    if not postgres_enabled():
        skip_or_fail("Postgres leg off (set MLOPS_TEST_POSTGRES=1)")
    name = f"mlops_up_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    try:
        yield url
    finally:
        forget_database(url)
        with admin.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _env(tmp_path: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_DEMO_PASSWORD", "MLOPS_UI_HOST", "MLOPS_API_HOST")}
    env.update(
        DATABASE_URL=url,
        ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        MLOPS_UI_PORT=str(free_port()),
        MLOPS_API_PORT=str(free_port()),
    )
    return env


def _up_until(env: dict, marker: str, log: Path, timeout: float = 180) -> str:
    """Start `up`, wait until its output shows `marker`, then stop it (and its children); returns the output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "up", "--workers", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = log.read_text()
            if marker in out:
                return out
            if proc.poll() is not None:
                raise AssertionError(f"`up` exited with {proc.returncode} before {marker!r}:\n{out[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"`up` did not print {marker!r} within {timeout:g} s:\n{log.read_text()[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=40)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_up_on_a_postgres_database_without_an_admin_refuses_in_one_line_and_seeds_nothing(fresh_pg_url, tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "mlops_core", "up"],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, fresh_pg_url),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: no active admin account")
    assert "python -m mlops_core user add NAME --role admin --password" in lines[0]
    assert "[up] started" not in p.stdout  # no UI, worker or scoring service
    db = Database(fresh_pg_url)
    try:
        assert users.count_users(db) == 0  # no demo accounts, no shared password
    finally:
        db.dispose()


def test_up_on_a_postgres_database_with_an_admin_starts_without_the_demo_on_loopback(fresh_pg_url, tmp_path):
    env = _env(tmp_path, fresh_pg_url)
    for args in (["init"], ["user", "add", "root", "--role", "admin", "--password", "a-long-admin-passphrase"]):
        subprocess.run(
            [sys.executable, "-m", "mlops_core", *args],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    out = _up_until(env, "[up] started ui", tmp_path / "up.log")
    assert f"UI on http://127.0.0.1:{env['MLOPS_UI_PORT']}" in out
    assert f"scoring API on http://127.0.0.1:{env['MLOPS_API_PORT']}" in out
    assert "demo password" not in out
    db = Database(fresh_pg_url)
    try:
        assert [u.username for u in users.list_users(db, actor=users.bootstrap_admin_actor())] == ["root"]
    finally:
        db.dispose()


def test_up_on_an_empty_sqlite_database_seeds_the_demo(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    out = _up_until(_env(tmp_path, url), "[up] started ui", tmp_path / "up.log")
    assert "demo workspace ready" in out and "demo password (random" in out
    db = Database(url)
    try:
        names = {u.username for u in users.list_users(db, actor=users.bootstrap_admin_actor())}
    finally:
        db.dispose()
        forget_database(url)
    assert names == {"alice", "dan", "sara", "omar", "admin"}


def test_the_ui_listens_on_loopback_unless_configured(monkeypatch):
    from mlops_core.config import reload_settings
    from mlops_core.cli.up import streamlit_argv

    monkeypatch.delenv("MLOPS_UI_HOST", raising=False)
    reload_settings()
    argv = streamlit_argv(8501)
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    monkeypatch.setenv("MLOPS_UI_HOST", "localhost")
    reload_settings()
    argv = streamlit_argv(8501)
    assert argv[argv.index("--server.address") + 1] == "localhost"
    monkeypatch.delenv("MLOPS_UI_HOST")
    reload_settings()
