"""GET /api/v1/me: who the token belongs to, the role, and when the token expires."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

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
