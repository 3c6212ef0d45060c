"""Scoring API keys, one set per deployment. Only the SHA-256 of a key is stored; the key itself is
shown once, when it is created (DESIGN.md non-negotiables: API keys are stored hashed)."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import col, select

from ..db import Database, utcnow
from ..errors import Conflict, ValidationError
from ..models.deployments import ApiKey, ApiKeyPublic
from . import audit
from ._common import deployment_by_name, get_or_404
from .auth import Actor, require

KEY_PREFIX = "mlk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _public(k: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(k, from_attributes=True)


def create_key(db: Database, *, actor: Actor, deployment_name: str, name: str = "") -> tuple[ApiKeyPublic, str]:
    """A new key for `deployment_name`. Returns (its public view, the key) — the key is never shown again."""
    require(actor, "apikey.manage")
    name = (name or "").strip()
    if len(name) > 200:
        raise ValidationError("the key name is too long; keep it under 200 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        k = ApiKey(
            deployment_id=d.id,
            name=name or f"key for {d.name}",
            key_hash=hash_key(key),
            prefix=key[:10],
            created_by=actor.username,
        )
        s.add(k)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="apikey.create",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"created API key {k.prefix}… for {d.name}",
            after={"key_id": k.id, "prefix": k.prefix},
        )
        return _public(k), key


def list_keys(db: Database, *, deployment_name: str, include_revoked: bool = True) -> list[ApiKeyPublic]:
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        q = select(ApiKey).where(ApiKey.deployment_id == d.id)
        if not include_revoked:
            q = q.where(col(ApiKey.revoked_at).is_(None))
        return [_public(k) for k in s.exec(q.order_by(col(ApiKey.id).desc())).all()]


def revoke_key(db: Database, *, actor: Actor, key_id: int) -> ApiKeyPublic:
    """Revoke a key; a running scoring service refuses it within a couple of seconds (it polls)."""
    require(actor, "apikey.manage")
    with db.unit_of_work() as s:
        k = get_or_404(s, ApiKey, key_id, "API key", "see the deployment's API keys")
        if k.revoked_at is not None:
            raise Conflict(f"API key {k.prefix}… was already revoked by {k.revoked_by}")
        k.revoked_at, k.revoked_by = utcnow(), actor.username
        s.add(k)
        audit.record(
            s,
            actor=actor,
            action="apikey.revoke",
            entity_type="deployment",
            entity_id=k.deployment_id,
            summary=f"revoked API key {k.prefix}…",
            before={"revoked": False},
            after={"revoked": True},
        )
        return _public(k)


def deployment_for_key(db: Database, key: str) -> int | None:
    """The deployment id a valid (unrevoked) key belongs to, or None."""
    if not key:
        return None
    with db.read() as s:
        row = s.exec(
            select(ApiKey.deployment_id).where(ApiKey.key_hash == hash_key(key), col(ApiKey.revoked_at).is_(None))
        ).first()
        return row


def active_key_hashes(db: Database) -> dict[str, int]:
    """key hash -> deployment id for every unrevoked key (the scoring service caches and re-polls this)."""
    with db.read() as s:
        return dict(s.exec(select(ApiKey.key_hash, ApiKey.deployment_id).where(col(ApiKey.revoked_at).is_(None))).all())
