"""GET /api/v1/me: who the token belongs to, the role, and when the token expires; the caller's personal access
tokens (list, revoke) through the same service rules as My account (an admin may revoke anyone's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from ...services import users
from ...services.users import token_info
from .deps import DB, CurrentActor, Token

router = APIRouter(tags=["me"])


@router.get("/me", summary="Who am I: user, role and this token's expiry")
async def me(actor: CurrentActor, token: Token, db: DB) -> dict:
    info = await run_in_threadpool(token_info, db, token=token)
    return {
        "id": actor.id,
        "username": actor.username,
        "role": actor.role,
        "token": {
            "id": info.id,
            "name": info.name,
            "prefix": info.prefix,
            "created_at": info.created_at.isoformat(),
            "expires_at": info.expires_at.isoformat(),
        },
    }


def _iso(dt) -> str | None:
    return dt.isoformat() if dt is not None else None


@router.get("/me/tokens", summary="My personal access tokens (never their secret); an admin may pass ?username=")
def list_my_tokens(
    actor: CurrentActor,
    token: Token,
    db: DB,
    username: Annotated[str | None, Query(description="another user's tokens (admin only)")] = None,
) -> dict:
    current = token_info(db, token=token).id
    rows = users.list_tokens(db, actor=actor, username=username or actor.username)
    return {
        "items": [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "created_at": _iso(t.created_at),
                "expires_at": _iso(t.expires_at),
                "last_used_at": _iso(t.last_used_at),
                "revoked_at": _iso(t.revoked_at),
                "current": t.id == current,
            }
            for t in rows
        ]
    }


@router.delete(
    "/me/tokens/{token_id}",
    status_code=204,
    summary="Revoke a token (your own; an admin may revoke anyone's); refused from the next request on",
)
def revoke_my_token(token_id: int, actor: CurrentActor, db: DB) -> Response:
    users.revoke_token(db, actor=actor, token_id=token_id)
    return Response(status_code=204)
