"""UI state kept per person: browser sessions (the signed session cookie's server side) and table preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field


class UiSession(SQLModel, table=True):
    """One logged-in browser. The cookie carries a random id (only its SHA-256 is stored here) signed with the
    session secret; logging out revokes the row, so a copied cookie stops working at once.

    Between the login form and the cookie there is a one-time hand-off code (60 seconds, hashed) that the
    browser trades for the httpOnly cookie in one same-origin request (hub_ui/session_routes.py)."""

    __tablename__ = "ui_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    client: str | None = Field(default=None, max_length=64)


class UiPreference(SQLModel, table=True):
    """A person's remembered choice for one screen element (e.g. the run table's columns), as JSON."""

    __tablename__ = "ui_preferences"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_ui_preference"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    key: str = Field(max_length=100)
    value: dict = json_field()
    updated_at: datetime = Field(default_factory=utcnow)
