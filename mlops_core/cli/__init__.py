"""`python -m mlops_core ...`: set up, seed, run and administer MLOps Hub.

Every command exits 0 on success and non-zero with a one-line `error: ...` on bad input.
Commands whose output is read by scripts (`user token`, `apikey create`, `monitor run`)
print their machine-readable result as the last line.

One module per command group, each with `register(sub)`. Their top level imports nothing heavier
than the settings: `--help` must stay fast, so database, services, pandas and scikit-learn are
imported inside the command functions.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import get_settings
from ..errors import DomainError
from . import datasets, db, monitor, pipeline, report, serve, up, users, worker
from ._common import CliError

# Order of the groups in `--help`.
GROUPS = (db, users, up, worker, serve, datasets, monitor, pipeline, report)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops_core", description="MLOps Hub command line")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else get_settings().log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (CliError, DomainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
