"""Hub API dependencies: the database, the caller's Actor from its personal access token, pagination.

Every route depends on `current_actor`: the token is looked up in the database on every request (no cache),
so a revoked or expired token is refused on the very next request on every replica."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Iterable

from fastapi import Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ...db import Database
from ...errors import AuthenticationFailed
from ...services.auth import Actor
from ...services.users import authenticate_token

MAX_LIMIT = 500
DEFAULT_LIMIT = 50

# auto_error=False: a missing header gets our sentence (401), not FastAPI's bare 403.
_bearer = HTTPBearer(
    auto_error=False, description="A personal access token (My account, or `python -m mlops_core user token USERNAME`)"
)


def get_db(request: Request) -> Database:
    """The process's Database (the one the scoring state polls)."""
    return request.app.state.serving.db


def bearer_token(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if creds is None or not creds.credentials.strip():
        raise AuthenticationFailed(
            "no personal access token: send 'Authorization: Bearer <token>' (create one on My account or with "
            "`python -m mlops_core user token USERNAME`)"
        )
    return creds.credentials.strip()


async def current_actor(
    token: Annotated[str, Depends(bearer_token)], db: Annotated[Database, Depends(get_db)]
) -> Actor:
    """The token's actor, checked against the database now (in a worker thread: the lookup blocks)."""
    return await run_in_threadpool(authenticate_token, db, token=token)


DB = Annotated[Database, Depends(get_db)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
Token = Annotated[str, Depends(bearer_token)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="items to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


Pagination = Annotated[Page, Depends(page_params)]


def dump(value: Any) -> Any:
    """A service result as JSON-ready data, whatever it is (pydantic model, SQLModel, dataclass, dict, list):
    routes never pick fields by hand, so a service that changes its return type keeps working."""
    return jsonable_encoder(value)


def paginate(items: Iterable[Any], page: Page) -> dict[str, Any]:
    """`{"items": [...], "next_offset": N|null}` from a full list (for services that return everything)."""
    items = list(items)
    window = items[page.offset : page.offset + page.limit]
    more = page.offset + page.limit < len(items)
    return {"items": dump(window), "next_offset": page.offset + page.limit if more else None}


def page_of(items: list[Any], page: Page) -> dict[str, Any]:
    """The same from a service that was asked for limit + 1 rows at offset (the extra row only says "more")."""
    more = len(items) > page.limit
    return {"items": dump(items[: page.limit]), "next_offset": page.offset + page.limit if more else None}
