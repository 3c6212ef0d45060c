"""Accounts: create, list, change role, log in, personal access tokens."""
from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import col, select

from ..db import Database, utcnow
from ..errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied, ValidationError
from ..models.base import ROLES
from ..models.users import PersonalAccessToken, TokenPublic, User, UserPublic
from . import audit
from .auth import Actor, require

_hasher = PasswordHasher()
# Verified when the username does not exist, so that a login for an unknown user takes
# as long as one with a wrong password (no user enumeration by timing).
_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_hasher.hash("not-a-real-password-0123456789"))
    return _DUMMY_HASH[0]

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "mlh_"


def _public(u: User) -> UserPublic:
    return UserPublic.model_validate(u, from_attributes=True)


def _check_role(role: str) -> str:
    role = (role or "").strip()
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    return role


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise ValidationError("the username is empty; choose 2-32 characters: lower-case letters, digits, . _ -")
    if not USERNAME_RE.match(username):
        raise ValidationError(
            f"username {username!r} is not allowed; use 2-32 characters starting with a letter: "
            "lower-case letters, digits, . _ -"
        )
    return username


def check_password(password: str) -> str:
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters (a passphrase works well)"
        )
    if len(set(password)) < 4:
        raise ValidationError("the password is too repetitive; use at least 4 different characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    db: Database,
    *,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    email: str | None = None,
) -> UserPublic:
    require(actor, "user.manage")
    username = check_username(username)
    role = _check_role(role)
    check_password(password)
    email = (email or "").strip().lower() or None
    if email and "@" not in email:
        raise ValidationError(f"{email!r} is not an email address")
    with db.unit_of_work() as s:
        if s.exec(select(User).where(User.username == username)).first():
            raise Conflict(f"the username {username!r} is taken; choose another")
        if email and s.exec(select(User).where(User.email == email)).first():
            raise Conflict(f"the email {email} already belongs to another user")
        user = User(
            username=username,
            display_name=display_name.strip() or username,
            email=email,
            role=role,
            password_hash=hash_password(password),
        )
        s.add(user)
        s.flush()
        audit.record(
            s, actor=actor, action="user.create", entity_type="user", entity_id=user.id,
            summary=f"created user {username} ({role})", after={"username": username, "role": role, "email": email},
        )
        return _public(user)


def list_users(db: Database, *, actor: Actor) -> list[UserPublic]:
    with db.read() as s:
        return [_public(u) for u in s.exec(select(User).order_by(User.username)).all()]


def get_user(db: Database, *, username: str) -> UserPublic:
    with db.read() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}")
        return _public(u)


def set_role(db: Database, *, actor: Actor, username: str, role: str) -> UserPublic:
    require(actor, "user.manage")
    role = _check_role(role)
    with db.unit_of_work() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}; see `python -m mlops_core user list`")
        before = u.role
        if before == "admin" and role != "admin":
            admins = s.exec(select(User).where(User.role == "admin", col(User.is_active).is_(True))).all()
            if len(admins) <= 1:
                raise ValidationError("this is the last active admin; make someone else admin first")
        u.role = role
        u.updated_at = utcnow()
        s.add(u)
        audit.record(
            s, actor=actor, action="user.set_role", entity_type="user", entity_id=u.id,
            summary=f"{username}: {before} -> {role}", before={"role": before}, after={"role": role},
        )
        return _public(u)


def set_active(db: Database, *, actor: Actor, username: str, active: bool) -> UserPublic:
    require(actor, "user.manage")
    with db.unit_of_work() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}")
        if actor.username == username and not active:
            raise ValidationError("you cannot deactivate your own account")
        before = u.is_active
        u.is_active = active
        u.updated_at = utcnow()
        audit.record(
            s, actor=actor, action="user.activate" if active else "user.deactivate", entity_type="user",
            entity_id=u.id, summary=f"{username} {'activated' if active else 'deactivated'}",
            before={"is_active": before}, after={"is_active": active},
        )
        return _public(u)


def change_password(db: Database, *, actor: Actor, username: str, new_password: str) -> None:
    if actor.username != username:
        require(actor, "user.manage")
    check_password(new_password)
    with db.unit_of_work() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}")
        u.password_hash = hash_password(new_password)
        u.updated_at = utcnow()
        audit.record(s, actor=actor, action="user.password", entity_type="user", entity_id=u.id,
                     summary=f"password of {username} changed")


def authenticate(db: Database, *, username: str, password: str) -> Actor:
    """Check a username and password; raise AuthenticationFailed with one message for every failure."""
    username = (username or "").strip().lower()
    with db.unit_of_work() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            try:
                _hasher.verify(_dummy_hash(), password or "")
            except VerificationError:
                pass
            raise AuthenticationFailed("wrong username or password")
        try:
            _hasher.verify(u.password_hash, password or "")
        except (VerificationError, InvalidHashError):
            raise AuthenticationFailed("wrong username or password") from None
        if not u.is_active:
            raise AuthenticationFailed("this account is deactivated; ask an admin")
        if _hasher.check_needs_rehash(u.password_hash):
            u.password_hash = _hasher.hash(password)
        u.last_login_at = utcnow()
        return Actor(id=u.id, username=u.username, role=u.role)


def actor_for_email(db: Database, *, email: str) -> Actor:
    """OIDC sign-in: map the identity provider's email to an existing, active user."""
    email = (email or "").strip().lower()
    with db.read() as s:
        u = s.exec(select(User).where(User.email == email)).first()
        if u is None or not u.is_active:
            raise AuthenticationFailed(
                f"no active MLOps Hub account has the email {email}; ask an admin to add it to your user"
            )
        return Actor(id=u.id, username=u.username, role=u.role)


def actor_for_username(db: Database, *, username: str) -> Actor:
    with db.read() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None or not u.is_active:
            raise AuthenticationFailed(f"no active user {username!r}")
        return Actor(id=u.id, username=u.username, role=u.role)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, *, actor: Actor, username: str, name: str = "") -> str:
    """A new personal access token for `username` (yourself, or anyone if admin). Shown once."""
    if actor.username != username:
        require(actor, "user.manage")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.unit_of_work() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}; see `python -m mlops_core user list`")
        if not u.is_active:
            raise ValidationError(f"{username} is deactivated")
        pat = PersonalAccessToken(user_id=u.id, name=name or "token", token_hash=_hash_token(token), prefix=token[:10])
        s.add(pat)
        s.flush()
        audit.record(s, actor=actor, action="token.create", entity_type="user", entity_id=u.id,
                     summary=f"personal access token {pat.prefix}… created for {username}")
    return token


def list_tokens(db: Database, *, actor: Actor, username: str) -> list[TokenPublic]:
    if actor.username != username:
        require(actor, "user.manage")
    with db.read() as s:
        u = s.exec(select(User).where(User.username == username)).first()
        if u is None:
            raise NotFound(f"no user named {username!r}")
        rows = s.exec(select(PersonalAccessToken).where(PersonalAccessToken.user_id == u.id)
                      .order_by(col(PersonalAccessToken.id).desc())).all()
        return [TokenPublic.model_validate(r, from_attributes=True) for r in rows]


def revoke_token(db: Database, *, actor: Actor, token_id: int) -> None:
    with db.unit_of_work() as s:
        pat = s.get(PersonalAccessToken, token_id)
        if pat is None:
            raise NotFound(f"no token {token_id}")
        owner = s.get(User, pat.user_id)
        if owner is None or owner.username != actor.username:
            require(actor, "user.manage")
        pat.revoked_at = utcnow()
        audit.record(s, actor=actor, action="token.revoke", entity_type="user", entity_id=pat.user_id,
                     summary=f"token {pat.prefix}… revoked")


def authenticate_token(db: Database, *, token: str) -> Actor:
    if not token:
        raise AuthenticationFailed(
            "no personal access token: set MLOPS_TOKEN (create one with `python -m mlops_core user token USERNAME`)"
        )
    with db.unit_of_work() as s:
        pat = s.exec(select(PersonalAccessToken).where(PersonalAccessToken.token_hash == _hash_token(token))).first()
        if pat is None or pat.revoked_at is not None:
            raise AuthenticationFailed("the personal access token is unknown or revoked; create a new one")
        u = s.get(User, pat.user_id)
        if u is None or not u.is_active:
            raise AuthenticationFailed("the token's user is deactivated")
        pat.last_used_at = utcnow()
        return Actor(id=u.id, username=u.username, role=u.role)


def count_users(db: Database) -> int:
    from sqlalchemy import func

    with db.read() as s:
        return s.exec(select(func.count()).select_from(User)).one()


def bootstrap_admin_actor() -> Actor:
    """The CLI acts as the system when creating the very first accounts."""
    return Actor.system()


__all__ = [
    "PermissionDenied", "authenticate", "authenticate_token", "create_token", "create_user",
    "list_users", "set_role",
]
