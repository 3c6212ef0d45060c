"""Subscriptions and notification delivery (issue 18): who watches what, how each person wants to
hear about it (email immediately or as a daily digest, chat webhooks), the events, and one delivery
record per (event, recipient, channel) with its status, attempts and last error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field

WATCHABLE = ("use_case", "dataset", "model_version", "deployment")
CHANNELS = ("email", "chat")


class Subscription(SQLModel, table=True):
    """A person watching one object. `muted` rows opt out of a role default (unwatch of a default)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("user_id", "entity_type", "entity_id", name="uq_subscription"),
        Index("ix_subscriptions_entity", "entity_type", "entity_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    channels: list[str] = json_field(default_factory=lambda: ["email", "chat"])
    muted: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)


class NotificationSetting(SQLModel, table=True):
    """One person's delivery preferences (no row: inbox only)."""

    __tablename__ = "notification_settings"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    email: str | None = Field(default=None, max_length=254)
    mode: str = Field(default="immediate", max_length=16)  # immediate | digest
    last_digest_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class ChatWebhook(SQLModel, table=True):
    """A chat webhook (Slack- or Teams-compatible) of one person or of one use case."""

    __tablename__ = "chat_webhooks"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    use_case_id: int | None = Field(default=None, foreign_key="use_cases.id", index=True)
    url: str = Field(max_length=1000)
    flavor: str = Field(default="slack", max_length=16)  # slack | teams
    created_at: datetime = Field(default_factory=utcnow)


class NotificationEvent(SQLModel, table=True):
    """Something that happened to an object, recorded inside the action's transaction."""

    __tablename__ = "notification_events"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    title: str = Field(max_length=500)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    use_case_id: int | None = Field(default=None, index=True)
    actor_username: str = Field(default="", max_length=64)
    # people the action named directly (mentions, sign-off assignees): they hear of it like watchers
    direct_user_ids: list[int] = json_field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Delivery(SQLModel, table=True):
    """One message to one recipient on one channel: pending -> sent | failed | skipped (cooldown)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_cooldown", "user_id", "entity_type", "entity_id", "event_kind", "created_at"),
        Index("ix_deliveries_status", "status", "digest"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="notification_events.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    channel: str = Field(max_length=16)  # email | chat
    target: str = Field(max_length=1000)  # address or webhook URL
    event_kind: str = Field(max_length=32)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    digest: bool = Field(default=False)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed | skipped
    attempts: int = Field(default=0)
    last_error: str = Field(default="", max_length=2000)
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SubscriptionPublic(BaseModel):
    entity_type: str
    entity_id: str
    channels: list[str]
    source: str  # "watch" | "role default"


class NotificationSettingPublic(BaseModel):
    email: str | None
    mode: str
    webhooks: list[dict[str, Any]]


class DeliveryPublic(BaseModel):
    id: int
    event_id: int
    username: str
    channel: str
    target: str
    event_kind: str
    entity_type: str
    entity_id: str
    digest: bool
    status: str
    attempts: int
    last_error: str
    sent_at: datetime | None
    created_at: datetime
