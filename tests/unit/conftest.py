"""Unit tier: fast, with no subprocess, no database and no demo seed (`make check` runs it in the edit
loop). Both rules are enforced here so a slow test cannot drift in: move such a test to tests/integration."""

from __future__ import annotations

import subprocess

import pytest

DATABASE_FIXTURES = {"db", "sqlite_db", "people", "pg_database_url", "pg_migrated", "sqlite_template"}


class _RefusedPopen(subprocess.Popen):
    # A subclass, not a function: libraries (evidently) use subprocess.Popen as a type annotation.
    def __init__(self, *args, **kwargs):
        raise AssertionError("unit tests start no process: move this test to tests/integration")


@pytest.fixture(autouse=True)
def _unit_tier_rules(request, monkeypatch):
    used = DATABASE_FIXTURES.intersection(request.fixturenames)
    if used:
        pytest.fail(f"unit tests use no database (fixtures {sorted(used)}): move this test to tests/integration")
    monkeypatch.setattr(subprocess, "Popen", _RefusedPopen)
