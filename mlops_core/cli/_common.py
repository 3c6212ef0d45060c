"""What every command module shares: the one-line error, the checked database, the system actor.

Database and service imports happen inside the functions: importing SQLAlchemy and the models costs
about a second, and `python -m mlops_core --help` must not pay for it.
"""

from __future__ import annotations


class CliError(Exception):
    """Bad input on the command line; printed as one line, exit code 2."""


def database():
    """The configured database, schema not checked (for `init`, which creates or upgrades it)."""
    # kept out of the CLI's top level so --help stays fast
    from ..db import get_database

    return get_database()


def checked_db():
    """The configured database; refuses a missing or old schema with the command that fixes it."""
    # kept out of the CLI's top level so --help stays fast
    from ..db import check_schema

    db = database()
    check_schema(db)
    return db


def system_actor():
    """The CLI acts as the system account of this machine (whoever can run it can read the database)."""
    # kept out of the CLI's top level so --help stays fast
    from ..services.auth import Actor

    return Actor.system()
