"""Security tier: each test does what an attacker did (see docs/SECURITY.md) and asserts what a user would
notice: the refusal and its message, nothing stored, monitoring still running, the audit row.
Fixtures come from tests/conftest.py (`db` runs on SQLite and Postgres)."""
