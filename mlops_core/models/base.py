"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON
from sqlmodel import Field

from ..db import utcnow


class Role(StrEnum):
    business = "business"
    data_engineer = "data_engineer"
    data_scientist = "data_scientist"
    ops = "ops"
    admin = "admin"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


def created_at_field() -> datetime:
    return Field(default_factory=utcnow, nullable=False, index=True)


def json_field(default_factory=dict, **kw):
    """A JSON column (JSON on SQLite, JSON on Postgres)."""
    return Field(default_factory=default_factory, sa_type=JSON, **kw)
