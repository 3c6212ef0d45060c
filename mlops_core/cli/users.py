"""`user add|list|set-role|unlock|token`: manage accounts as the system account of this machine."""

from __future__ import annotations

import json
import os

from ._common import CliError, checked_db, system_actor


def cmd_user_add(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import users

    password = args.password or os.environ.get("MLOPS_NEW_PASSWORD")
    if not password:
        raise CliError("give a password with --password or MLOPS_NEW_PASSWORD (at least 12 characters)")
    u = users.create_user(
        checked_db(),
        actor=system_actor(),
        username=args.username,
        password=password,
        role=args.role,
        display_name=args.name or "",
        email=args.email,
    )
    print(f"created {u.username} ({u.role})")
    return 0


def cmd_user_list(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import users

    rows = users.list_users(checked_db(), actor=system_actor())
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows]))
        return 0
    print(f"{'username':<20} {'role':<16} {'active':<7} email")
    for u in rows:
        print(f"{u.username:<20} {u.role:<16} {str(u.is_active).lower():<7} {u.email or ''}")
    return 0


def cmd_user_set_role(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import users

    u = users.set_role(checked_db(), actor=system_actor(), username=args.username, role=args.role)
    print(f"{u.username} is now {u.role}")
    return 0


def cmd_user_unlock(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import users

    users.unlock_login(checked_db(), actor=system_actor(), username=args.username)
    print(f"{args.username} may log in again (failed attempts forgotten)")
    return 0


def cmd_user_token(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import users

    token = users.create_token(checked_db(), actor=system_actor(), username=args.username, name=args.name)
    print(f"personal access token for {args.username} (shown once; export it as MLOPS_TOKEN):")
    print(token)
    return 0


def register(sub) -> None:
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
