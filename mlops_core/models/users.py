"""People, their roles, and their personal access tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from ..config import get_settings
from ..db import utcnow


class User(SQLModel, table=True):
    """A person who logs in; `role` decides what they may write."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320, unique=True)
    role: str = Field(max_length=32, index=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class UserPublic(BaseModel):
    """What pages and the CLI see of a user (never the hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


def _default_expiry() -> datetime:
    return utcnow() + timedelta(days=get_settings().token_days)


class PersonalAccessToken(SQLModel, table=True):
    """A token for the tracking SDK and CI; only its SHA-256 is stored."""

    __tablename__ = "personal_access_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(default="", max_length=200)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # Refused from this moment on (checked on every request); MLOPS_TOKEN_DAYS after creation by default.
    expires_at: datetime = Field(default_factory=_default_expiry)


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime
