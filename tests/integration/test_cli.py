"""The CLI contract: --help lists the commands; bad input exits non-zero with a one-line reason."""

import os
import subprocess
import sys

import pytest

from mlops_core.config import PROJECT_ROOT


def run_cli(*args, env=None, check=False):
    e = {**os.environ, **(env or {})}
    p = subprocess.run(
        [sys.executable, "-m", "mlops_core", *args],
        cwd=PROJECT_ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def cli_env(tmp_path):
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ARTIFACT_ROOT": str(tmp_path / "art"),
        "MLOPS_DEMO_PASSWORD": "demo-password-123",
    }


def test_help_lists_the_contract_commands():
    out = run_cli("--help", check=True).stdout
    for cmd in ("init", "demo", "user", "up"):
        assert cmd in out
    assert all(a in run_cli("user", "--help", check=True).stdout for a in ("add", "list", "set-role", "token"))


def test_init_demo_and_token_print_the_token_as_the_last_line(cli_env):
    run_cli("init", env=cli_env, check=True)
    out = run_cli("demo", env=cli_env, check=True).stdout
    assert "alice" in out and "admin" in out
    token = run_cli("user", "token", "sara", env=cli_env, check=True).stdout.strip().splitlines()[-1]
    assert token.startswith("mlh_") and len(token) > 30
    listed = run_cli("user", "list", env=cli_env, check=True).stdout
    for name in ("alice", "dan", "sara", "omar", "admin"):
        assert name in listed


def test_demo_without_a_password_prints_a_random_one(cli_env):
    env = {**cli_env, "MLOPS_DEMO_PASSWORD": ""}
    run_cli("init", env=env, check=True)
    out = run_cli("demo", env=env, check=True).stdout
    line = [ln for ln in out.splitlines() if "demo password (random" in ln]
    assert line and len(line[0].rsplit(": ", 1)[1]) >= 12


@pytest.mark.parametrize(
    "args, message",
    [
        (("user", "add", "bob", "--role", "wizard", "--password", "long-enough-pass"), "unknown role"),
        (("user", "add", "Bad Name", "--role", "ops", "--password", "long-enough-pass"), "username"),
        (("user", "add", "bob", "--role", "ops", "--password", "short"), "too short"),
        (("user", "set-role", "nobody", "ops"), "no user named"),
        (("user", "token", "nobody"), "no user named"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(cli_env, args, message):
    run_cli("init", env=cli_env, check=True)
    p = run_cli(*args, env=cli_env)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    p = run_cli("init", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith("error: cannot use the database")
    p = run_cli("user", "list", env={"DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_commands_on_an_uninitialised_database_say_to_run_init(cli_env):
    p = run_cli("user", "list", env=cli_env)
    assert p.returncode != 0 and "python -m mlops_core init" in p.stderr


def test_unknown_command_exits_non_zero():
    assert run_cli("frobnicate").returncode != 0
