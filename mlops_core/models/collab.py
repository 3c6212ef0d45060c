"""Collaboration on any entity: threaded comments, inbox items, sign-off requests.

Generic over `(entity_type, entity_id)` ("use_case", "dataset", "run", "model_version",
"deployment", ...); `entity_id` is stored as text so every stage's ids fit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field


class Comment(SQLModel, table=True):
    """A comment on an entity; `parent_id` makes threads (a reply to a comment)."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_entity", "entity_type", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    parent_id: int | None = Field(default=None, foreign_key="comments.id")
    author_id: int | None = Field(default=None, foreign_key="users.id")
    author_username: str = Field(max_length=64)
    body: str = Field(max_length=5000)
    mentions: list[str] = json_field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class InboxItem(SQLModel, table=True):
    """Something a person should look at: a mention, a sign-off waiting for them, a decision."""

    __tablename__ = "inbox_items"
    __table_args__ = (Index("ix_inbox_user_read", "user_id", "read_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=32)  # "mention" | "signoff" | "signoff_decided" | any stage's kind
    title: str = Field(max_length=500)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    from_username: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    read_at: datetime | None = None


class Signoff(SQLModel, table=True):
    """A request to a person or a role to approve something, with the evidence it was asked on."""

    __tablename__ = "signoffs"
    __table_args__ = (Index("ix_signoffs_entity", "entity_type", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    title: str = Field(max_length=300)
    requested_by: str = Field(max_length=64)
    assignee_username: str | None = Field(default=None, max_length=64, index=True)
    assignee_role: str | None = Field(default=None, max_length=32, index=True)
    evidence: dict[str, Any] = json_field(default_factory=dict)
    # sha256 of the canonical JSON of `evidence`: a later stage recomputes it to tell a stale sign-off.
    evidence_hash: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16, index=True)  # pending | approved | rejected
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    reason: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class CommentPublic(BaseModel):
    id: int
    entity_type: str
    entity_id: str
    parent_id: int | None
    author_username: str
    body: str
    mentions: list[str]
    created_at: datetime
    depth: int = 0
    unknown_mentions: list[str] = []


class InboxItemPublic(BaseModel):
    id: int
    kind: str
    title: str
    entity_type: str
    entity_id: str
    from_username: str
    created_at: datetime
    read_at: datetime | None


class SignoffPublic(BaseModel):
    id: int
    entity_type: str
    entity_id: str
    title: str
    requested_by: str
    assignee_username: str | None
    assignee_role: str | None
    evidence: dict[str, Any]
    evidence_hash: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    created_at: datetime

    @property
    def assignee(self) -> str:
        return self.assignee_username or f"any {self.assignee_role}"
