"""UI sessions (issue 15, problem 2): the signed cookie's server side — one-time hand-off, signature, revocation
on log-out, idle and absolute expiry, the current role on resume, and the secret kept 0600 in the data folder."""

import stat
from datetime import timedelta

import pytest

from mlops_core.config import reload_settings
from mlops_core.db import utcnow
from mlops_core.errors import AuthenticationFailed
from mlops_core.models.ui import UiSession
from mlops_core.services import audit, ui_sessions, users


def _cookie(db, actor):
    return ui_sessions.redeem(db, code=ui_sessions.begin(db, actor=actor, client="10.0.0.9"))


def _age(db, **delta):
    with db.unit_of_work() as s:
        for row in s.query(UiSession).all():
            row.last_seen_at = row.last_seen_at - timedelta(**delta)


def test_a_cookie_resumes_its_user_with_the_role_stored_now_and_log_out_revokes_it(db, people):
    alice, admin = people["business"], people["admin"]
    cookie = _cookie(db, alice)
    resumed = ui_sessions.resume(db, cookie=cookie)
    assert resumed.actor == alice
    users.set_role(db, actor=admin, username="alice", role="ops")
    assert ui_sessions.resume(db, cookie=cookie).actor.role == "ops"
    assert not ui_sessions.end(db, actor=people["data_scientist"], session_id=resumed.session_id)  # not theirs
    assert ui_sessions.end(db, actor=alice, session_id=resumed.session_id)  # a stale tab (role changed) too
    with pytest.raises(AuthenticationFailed, match="logged out"):
        ui_sessions.resume(db, cookie=cookie)
    assert audit.list_events(db, actor=admin, action=ui_sessions.LOGOUT).total == 1


def test_a_handoff_code_works_once_and_a_forged_or_tampered_cookie_is_refused(db, people):
    code = ui_sessions.begin(db, actor=people["business"])
    cookie = ui_sessions.redeem(db, code=code)
    with pytest.raises(AuthenticationFailed, match="unknown or used"):
        ui_sessions.redeem(db, code=code)
    sid, sig = cookie.split(".")
    for bad in (f"{sid}.{sig[:-2]}AA", f"{sid[:-1]}x.{sig}", sid, "", "a.b"):
        with pytest.raises(AuthenticationFailed, match="not valid"):
            ui_sessions.resume(db, cookie=bad)
    assert not ui_sessions.end(db, actor=None, cookie=f"{sid}.{sig[:-2]}AA")
    assert ui_sessions.resume(db, cookie=cookie).actor.username == "alice"  # the forgery revoked nothing


def test_an_expired_handoff_code_is_burnt(db, people):
    code = ui_sessions.begin(db, actor=people["business"])
    with db.unit_of_work() as s:
        row = s.query(UiSession).one()
        row.handoff_expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        ui_sessions.redeem(db, code=code)
    with pytest.raises(AuthenticationFailed, match="unknown or used"):
        ui_sessions.redeem(db, code=code)


def test_an_idle_session_and_a_deactivated_user_are_refused_and_revoked(db, people, monkeypatch):
    monkeypatch.setenv("MLOPS_SESSION_IDLE_HOURS", "2")
    reload_settings()
    try:
        idle = _cookie(db, people["business"])
        _age(db, hours=3)
        with pytest.raises(AuthenticationFailed, match="2 hours without activity"):
            ui_sessions.resume(db, cookie=idle)
        _age(db, hours=-3)  # even if it were fresh again: revoked
        with pytest.raises(AuthenticationFailed, match="logged out"):
            ui_sessions.resume(db, cookie=idle)
        dan = _cookie(db, people["data_engineer"])
        users.set_active(db, actor=people["admin"], username="dan", active=False)
        with pytest.raises(AuthenticationFailed, match="deactivated"):
            ui_sessions.resume(db, cookie=dan)
    finally:
        monkeypatch.delenv("MLOPS_SESSION_IDLE_HOURS")
        reload_settings()


def test_the_generated_secret_is_made_once_with_owner_only_permissions(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_SESSION_SECRET", raising=False)
    reload_settings()
    first = ui_sessions.session_secret(tmp_path)
    ui_sessions._secret_cache.clear()
    assert ui_sessions.session_secret(tmp_path) == first and len(first) >= 32
    assert stat.S_IMODE((tmp_path / ui_sessions.SECRET_FILE).stat().st_mode) == 0o600
