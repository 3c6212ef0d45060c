"""`init` and `demo`: create or upgrade the schema, seed the demo workspace."""

from __future__ import annotations

from ._common import checked_db, database


def cmd_init(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..db import describe_url, upgrade_schema

    db = database()
    before, after = upgrade_schema(db)
    if before == after:
        print(f"schema already at {after} on {describe_url(db.url)}")
    else:
        print(f"schema upgraded {before or '(empty)'} -> {after} on {describe_url(db.url)}")
    return 0


def cmd_demo(args) -> int:
    from ..demo import seed_demo  # pandas/scikit-learn: kept out of --help

    db = checked_db()
    result = seed_demo(db, scale=args.scale, only_if_empty=args.if_empty, password=args.password)
    for line in result.lines:
        print(line)
    return 0


def register(sub) -> None:
    s = sub.add_parser("init", help="create or upgrade the database schema")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("demo", help="seed the demo workspace")
    s.add_argument(
        "--scale",
        choices=["small", "large"],
        default="small",
        help="small: the demo; large: a company-sized workspace for benchmarks",
    )
    s.add_argument("--if-empty", action="store_true", help="do nothing when the database already has users")
    s.add_argument(
        "--password", default=None, help="password of the demo accounts (default: MLOPS_DEMO_PASSWORD or random)"
    )
    s.set_defaults(func=cmd_demo)
