"""Scoring API keys, one set per deployment. Only the SHA-256 of a key is stored; the key itself is
shown once, when it is created (DESIGN.md non-negotiables: API keys are stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import col, select

from ..db import Database, utcnow
from ..errors import Conflict, ValidationError
from ..models.deployments import ApiKey, ApiKeyPublic, DeploymentKeyBase, DeploymentKeyPublic
from . import audit
from ._common import deployment_by_name, get_or_404
from .auth import Actor, require

KEY_PREFIX = "mlk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _public(k: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(k, from_attributes=True)


@dataclass(frozen=True)
class KeyKind:
    """One kind of per-deployment key: its table, its public view, how its keys start and how they are named
    in messages and the audit log. Scoring API keys and bundle upload keys differ only in these."""

    table: type[DeploymentKeyBase]
    public: type[DeploymentKeyPublic]
    key_prefix: str
    noun: str  # "API key", "upload key"
    action: str  # audit action prefix: "apikey", "uploadkey"
    default_name: str  # a key created without a name: "<default_name> for <deployment>"


API_KEYS = KeyKind(ApiKey, ApiKeyPublic, KEY_PREFIX, "API key", "apikey", "key")


def create_kind_key(
    db: Database, kind: KeyKind, *, actor: Actor, deployment_name: str, name: str = ""
) -> tuple[DeploymentKeyPublic, str]:
    """A new key of `kind` for `deployment_name`. Returns (its public view, the key): never shown again."""
    require(actor, "apikey.manage")
    name = (name or "").strip()
    if len(name) > 200:
        raise ValidationError("the key name is too long; keep it under 200 characters")
    key = kind.key_prefix + secrets.token_urlsafe(32)
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        k = kind.table(
            deployment_id=d.id,
            name=name or f"{kind.default_name} for {d.name}",
            key_hash=hash_key(key),
            prefix=key[:10],
            created_by=actor.username,
        )
        s.add(k)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action=f"{kind.action}.create",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"created {kind.noun} {k.prefix}… for {d.name}",
            after={"key_id": k.id, "prefix": k.prefix},
        )
        return kind.public.model_validate(k, from_attributes=True), key


def list_kind_keys(
    db: Database, kind: KeyKind, *, deployment_name: str, include_revoked: bool = True
) -> list[DeploymentKeyPublic]:
    t = kind.table
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        q = select(t).where(t.deployment_id == d.id)
        if not include_revoked:
            q = q.where(col(t.revoked_at).is_(None))
        return [kind.public.model_validate(k, from_attributes=True) for k in s.exec(q.order_by(col(t.id).desc())).all()]


def revoke_kind_key(db: Database, kind: KeyKind, *, actor: Actor, key_id: int) -> DeploymentKeyPublic:
    require(actor, "apikey.manage")
    with db.unit_of_work() as s:
        k = get_or_404(s, kind.table, key_id, kind.noun, f"see the deployment's {kind.noun}s")
        if k.revoked_at is not None:
            raise Conflict(f"{kind.noun} {k.prefix}… was already revoked by {k.revoked_by}")
        k.revoked_at, k.revoked_by = utcnow(), actor.username
        s.add(k)
        audit.record(
            s,
            actor=actor,
            action=f"{kind.action}.revoke",
            entity_type="deployment",
            entity_id=k.deployment_id,
            summary=f"revoked {kind.noun} {k.prefix}…",
            before={"revoked": False},
            after={"revoked": True, "key_id": k.id},
        )
        return kind.public.model_validate(k, from_attributes=True)


def create_key(db: Database, *, actor: Actor, deployment_name: str, name: str = "") -> tuple[ApiKeyPublic, str]:
    """A new scoring key for `deployment_name`. Returns (its public view, the key) — the key is never shown again."""
    return create_kind_key(db, API_KEYS, actor=actor, deployment_name=deployment_name, name=name)  # type: ignore[return-value]


def list_keys(db: Database, *, deployment_name: str, include_revoked: bool = True) -> list[ApiKeyPublic]:
    return list_kind_keys(db, API_KEYS, deployment_name=deployment_name, include_revoked=include_revoked)  # type: ignore[return-value]


def revoke_key(db: Database, *, actor: Actor, key_id: int) -> ApiKeyPublic:
    """Revoke a key; a running scoring service refuses it within a couple of seconds (it polls)."""
    return revoke_kind_key(db, API_KEYS, actor=actor, key_id=key_id)  # type: ignore[return-value]


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
