"""`python -m mlops_core ...`: set up, seed, run and administer MLOps Hub.

Every command exits 0 on success and non-zero with a one-line `error: ...` on bad input.
Commands whose output is read by scripts (`user token`, `apikey create`, `monitor run`)
print their machine-readable result as the last line.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable

from .config import get_settings
from .errors import DomainError

log = logging.getLogger("mlops_core")


class CliError(Exception):
    """Bad input on the command line; printed as one line, exit code 2."""


def _db():
    from .db import get_database

    return get_database()


def _checked_db():
    from .db import check_schema

    db = _db()
    check_schema(db)
    return db


# --- init / demo -------------------------------------------------------------------------

def cmd_init(args) -> int:
    from .db import describe_url, upgrade_schema

    db = _db()
    before, after = upgrade_schema(db)
    if before == after:
        print(f"schema already at {after} on {describe_url(db.url)}")
    else:
        print(f"schema upgraded {before or '(empty)'} -> {after} on {describe_url(db.url)}")
    return 0


def cmd_demo(args) -> int:
    from .demo import seed_demo

    db = _checked_db()
    result = seed_demo(db, scale=args.scale, only_if_empty=args.if_empty, password=args.password)
    for line in result.lines:
        print(line)
    return 0


# --- users -------------------------------------------------------------------------------

def _admin_actor():
    from .services.auth import Actor

    return Actor.system()


def cmd_user_add(args) -> int:
    from .services import users

    password = args.password or os.environ.get("MLOPS_NEW_PASSWORD")
    if not password:
        raise CliError("give a password with --password or MLOPS_NEW_PASSWORD (at least 12 characters)")
    u = users.create_user(_checked_db(), actor=_admin_actor(), username=args.username, password=password,
                          role=args.role, display_name=args.name or "", email=args.email)
    print(f"created {u.username} ({u.role})")
    return 0


def cmd_user_list(args) -> int:
    from .services import users

    rows = users.list_users(_checked_db(), actor=_admin_actor())
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows]))
        return 0
    print(f"{'username':<20} {'role':<16} {'active':<7} email")
    for u in rows:
        print(f"{u.username:<20} {u.role:<16} {str(u.is_active).lower():<7} {u.email or ''}")
    return 0


def cmd_user_set_role(args) -> int:
    from .services import users

    u = users.set_role(_checked_db(), actor=_admin_actor(), username=args.username, role=args.role)
    print(f"{u.username} is now {u.role}")
    return 0


def cmd_user_unlock(args) -> int:
    from .services import users

    users.unlock_login(_checked_db(), actor=_admin_actor(), username=args.username)
    print(f"{args.username} may log in again (failed attempts forgotten)")
    return 0


def cmd_user_token(args) -> int:
    from .services import users

    token = users.create_token(_checked_db(), actor=_admin_actor(), username=args.username, name=args.name)
    print(f"personal access token for {args.username} (shown once; export it as MLOPS_TOKEN):")
    print(token)
    return 0


# --- processes ---------------------------------------------------------------------------

def cmd_up(args) -> int:
    from .launcher import run_up

    return run_up(ui_port=args.ui_port, api_port=args.api_port, workers=args.workers, seed=not args.no_demo)


def cmd_ui(args) -> int:
    from .launcher import run_ui

    return run_ui(port=args.port)


COMMANDS: dict[str, Callable] = {}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops_core", description="MLOps Hub command line")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("init", help="create or upgrade the database schema")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("demo", help="seed the demo workspace")
    s.add_argument("--scale", choices=["small", "large"], default="small",
                   help="small: the demo; large: a company-sized workspace for benchmarks")
    s.add_argument("--if-empty", action="store_true", help="do nothing when the database already has users")
    s.add_argument("--password", default=None, help="password of the demo accounts (default: MLOPS_DEMO_PASSWORD or random)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("user", help="manage user accounts")
    us = s.add_subparsers(dest="user_command", metavar="ACTION")
    us.required = True
    a = us.add_parser("add", help="add a user")
    a.add_argument("username")
    a.add_argument("--role", required=True, help="business, data_engineer, data_scientist, ops or admin")
    a.add_argument("--password", help="at least 12 characters (or set MLOPS_NEW_PASSWORD)")
    a.add_argument("--name", help="display name")
    a.add_argument("--email", help="email (used for single sign-on)")
    a.set_defaults(func=cmd_user_add)
    a = us.add_parser("list", help="list users")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_user_list)
    a = us.add_parser("set-role", help="change a user's role")
    a.add_argument("username")
    a.add_argument("role")
    a.set_defaults(func=cmd_user_set_role)
    a = us.add_parser("unlock", help="end a login lock after too many failed attempts")
    a.add_argument("username")
    a.set_defaults(func=cmd_user_unlock)
    a = us.add_parser("token", help="create a personal access token (printed as the last line)")
    a.add_argument("username")
    a.add_argument("--name", default="cli", help="a label for the token")
    a.set_defaults(func=cmd_user_token)

    s = sub.add_parser("up", help="start everything for one machine: UI, worker and scoring service")
    s.add_argument("--ui-port", type=int, default=None)
    s.add_argument("--api-port", type=int, default=None)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--no-demo", action="store_true",
                   help="do not seed the demo when the SQLite database is empty (other databases are never "
                        "seeded by `up`: they need an admin account first)")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("ui", help="start the Streamlit UI only")
    s.add_argument("--port", type=int, default=None)
    s.set_defaults(func=cmd_ui)

    # Stage commands register themselves here (worker, serve, dataset, apikey, monitor).
    from . import cli_stages

    cli_stages.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else get_settings().log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (CliError, DomainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
