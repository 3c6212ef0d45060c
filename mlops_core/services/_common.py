"""Small helpers every service module shares, so each rule is written once.

- `get_or_404`: the "load a row by id or refuse with a sentence" step.
- `deployment_by_name`: the one lookup (and the one message) for a deployment named by a user.
- `aware`: SQLite hands back naive datetimes; every stored time is UTC, so make them aware before comparing.
- `Progress` / `noop_progress`: the progress-callback type long-running services accept, and its default.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar, overload

from sqlmodel import Session, SQLModel, select

from ..errors import NotFound
from ..models.deployments import Deployment

T = TypeVar("T", bound=SQLModel)

# progress(fraction in [0, 1], message shown to the user)
Progress = Callable[[float, str], None]


def noop_progress(fraction: float, message: str) -> None:  # noqa: ARG001 - default when nobody listens
    """Progress callback that ignores its calls."""


def get_or_404(s: Session, model: type[T], id_: int | None, what: str, hint: str = "") -> T:
    """Row `id_` of `model`, or NotFound "no <what> <id>[; hint]" (hint says where to find a valid one)."""
    row = s.get(model, id_) if id_ is not None else None
    if row is None:
        raise NotFound(f"no {what} {id_}" + (f"; {hint}" if hint else ""))
    return row


def deployment_by_name(s: Session, name: str) -> Deployment:
    """The deployment called `name`, or NotFound listing the existing names (or saying how to create one)."""
    d = s.exec(select(Deployment).where(Deployment.name == name)).first()
    if d is None:
        names = s.exec(select(Deployment.name).order_by(Deployment.name)).all()
        hint = f"; existing deployments: {', '.join(names)}" if names else "; none exists yet: request one first"
        raise NotFound(f"no deployment named {name!r}{hint}")
    return d


@overload
def aware(dt: datetime) -> datetime: ...
@overload
def aware(dt: None) -> None: ...
def aware(dt: datetime | None) -> datetime | None:
    """`dt` with UTC attached when the database returned it naive (SQLite does); None stays None."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
