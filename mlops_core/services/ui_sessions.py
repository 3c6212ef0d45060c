"""Browser sessions of the UI: a signed, expiring, httpOnly cookie backed by a revocable row (ui_sessions).

The flow (docs/SECURITY.md, "UI sessions"):

1. the login form checks the password (users.authenticate) and calls `begin(...)`: a row with a one-time
   hand-off code (random, 60 seconds, only its SHA-256 stored), no cookie yet;
2. the page asks the browser to POST that code to the UI server's own `/_hub/session` route (same origin);
   `redeem(...)` burns the code and returns the cookie value: a fresh random id (only its SHA-256 stored)
   and an HMAC-SHA256 of it under the session secret. The route sets it HttpOnly, SameSite=Lax (Secure over
   https), Max-Age = the session's absolute lifetime;
3. a new browser tab or a refresh opens a Streamlit session whose `st.context.cookies` carry the cookie;
   `resume(...)` checks the signature, the row (not revoked, not expired, not idle) and the user (active,
   role as stored now) and returns the actor;
4. log out revokes the row (`end(...)`): a copied cookie stops working at once, whatever the browser keeps.

Idle expiry: `last_seen_at` moves on while the person uses the page (`touch`, at most once a minute);
a cookie idle for longer than MLOPS_SESSION_IDLE_HOURS is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from ..config import DATA_DIR, get_settings
from ..db import Database, utcnow
from ..errors import AuthenticationFailed
from ..models.ui import UiSession
from ..models.users import User
from . import audit
from .auth import Actor

COOKIE_NAME = "mlops_hub_session"
HANDOFF_SECONDS = 60
TOUCH_EVERY = timedelta(seconds=60)
SECRET_FILE = "session_secret"  # noqa: S105 - a file name, not a secret
LOGOUT = "user.logout"
_secret_cache: dict[str, bytes] = {}


@dataclass(frozen=True)
class ResumedSession:
    actor: Actor
    session_id: int


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def session_secret(data_dir: Path | None = None) -> bytes:
    """MLOPS_SESSION_SECRET, or a random key made once and kept in the data folder (mode 0600).

    Several UI replicas must share one secret: set MLOPS_SESSION_SECRET for them."""
    configured = get_settings().session_secret
    if configured:
        return configured.encode()
    folder = Path(data_dir or DATA_DIR)
    path = folder / SECRET_FILE
    cached = _secret_cache.get(str(path))
    if cached:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable session key; delete it and restart the UI")
    _secret_cache[str(path)] = key.encode()
    return _secret_cache[str(path)]


def _sign(sid: str) -> str:
    mac = hmac.new(session_secret(), f"mlops-hub-session:{sid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _unsign(cookie: str) -> str | None:
    sid, _, sig = (cookie or "").partition(".")
    if not sid or not sig or len(cookie) > 200:
        return None
    return sid if hmac.compare_digest(_sign(sid), sig) else None


def max_age_seconds() -> int:
    return int(get_settings().session_max_days * 86400)


def begin(db: Database, *, actor: Actor, client: str | None = None) -> str:
    """After a successful login: a session row and its one-time hand-off code (returned, never stored)."""
    if actor.id is None:
        raise AuthenticationFailed("only a stored user can keep a session")
    code = secrets.token_urlsafe(32)
    now = utcnow()
    with db.unit_of_work() as s:
        s.add(
            UiSession(
                user_id=actor.id,
                handoff_hash=_sha(code),
                handoff_expires_at=now + timedelta(seconds=HANDOFF_SECONDS),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=max_age_seconds()),
                client=client[:64] if client else None,
            )
        )
    return code


def session_id_for_code(db: Database, *, code: str) -> int | None:
    """The row a hand-off code belongs to (the UI keeps its id to revoke it on log-out)."""
    with db.read() as s:
        row = s.exec(select(UiSession).where(UiSession.handoff_hash == _sha(code or ""))).first()
        return row.id if row else None


def redeem(db: Database, *, code: str) -> str:
    """Trade a hand-off code (once, within 60 s) for the cookie value."""
    now = utcnow()
    sid = secrets.token_urlsafe(32)
    refused = ""
    with db.unit_of_work() as s:
        row = s.exec(select(UiSession).where(UiSession.handoff_hash == _sha(code or ""))).first()
        if row is None or row.revoked_at is not None or row.handoff_expires_at is None:
            refused = "unknown or used sign-in code"
        else:
            row.handoff_hash = None  # burnt, whatever happens next (committed: the refusal is returned, not raised)
            if row.handoff_expires_at < now:
                refused = "the sign-in code expired"
            else:
                row.handoff_expires_at = None
                row.token_hash = _sha(sid)
                row.last_seen_at = now
    if refused:
        raise AuthenticationFailed(refused)
    return f"{sid}.{_sign(sid)}"


def resume(db: Database, *, cookie: str) -> ResumedSession:
    """The actor of a session cookie, with its role as stored now; AuthenticationFailed says why not."""
    sid = _unsign(cookie)
    if sid is None:
        raise AuthenticationFailed("the session cookie is not valid; please log in")
    now = utcnow()
    idle_hours = get_settings().session_idle_hours
    refused = ""
    with db.unit_of_work() as s:
        row = s.exec(select(UiSession).where(UiSession.token_hash == _sha(sid))).first()
        u = s.get(User, row.user_id) if row is not None else None
        if row is None or row.revoked_at is not None:
            refused = "you logged out of this session; please log in again"
        elif row.expires_at < now:
            refused = "your session reached its maximum length; please log in again"
        elif now - row.last_seen_at > timedelta(hours=idle_hours):
            refused = f"your session expired after {idle_hours:g} hours without activity; please log in again"
        elif u is None:
            refused = "your account no longer exists; log in with another account"
        elif not u.is_active:
            refused = f"your account was deactivated; ask an admin to reactivate {u.username}"
        if refused:
            if row is not None and row.revoked_at is None:
                row.revoked_at = now  # committed: the refusal is raised after the unit of work
        else:
            row.last_seen_at = now
            resumed = ResumedSession(Actor(id=u.id, username=u.username, role=u.role), row.id)
    if refused:
        raise AuthenticationFailed(refused)
    return resumed


def touch(db: Database, *, session_id: int) -> None:
    """The person is active: move last_seen_at (one write a minute at most)."""
    now = utcnow()
    with db.unit_of_work() as s:
        row = s.get(UiSession, session_id)
        if row is not None and row.revoked_at is None and now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now


def end(db: Database, *, actor: Actor | None, session_id: int | None = None, cookie: str | None = None) -> bool:
    """Log out: revoke the session (by id from the UI, or by cookie from the log-out route). Audited."""
    sid = _unsign(cookie) if cookie else None
    with db.unit_of_work() as s:
        row = None
        if session_id is not None:
            row = s.get(UiSession, session_id)
        elif sid is not None:
            row = s.exec(select(UiSession).where(UiSession.token_hash == _sha(sid))).first()
        if row is None or row.revoked_at is not None or (actor is not None and actor.id != row.user_id):
            return False
        row.revoked_at = utcnow()
        u = s.get(User, row.user_id)
        if u is not None and u.is_active:  # the audit refuses a deactivated actor; the revocation still counts
            who = Actor(id=u.id, username=u.username, role=u.role)  # as stored now: a stale tab may log out too
            audit.record(s, actor=who, action=LOGOUT, entity_type="login", entity_id=u.username, summary="logged out")
        return True
