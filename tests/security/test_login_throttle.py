"""Finding 6: 50 wrong admin passwords in 18 s met no delay, no lock and no audit row; finding 10: changing
your own password did not ask for the current one. Now failed logins are audited and counted, each failure
makes the next attempt wait longer, and after login_max_failures (default 5) the account is locked for
login_lock_minutes (default 15)."""

from datetime import timedelta

import pytest
from sqlmodel import select

from mlops_core.errors import AuthenticationFailed, PermissionDenied
from mlops_core.models.audit import AuditEvent
from mlops_core.services import audit, users
from tests.conftest import TEST_PASSWORD, make_people
from tests.pages.helpers import app_as, by_label, no_exceptions

LOCKED = "too many failed attempts for admin; try again in 15 minutes or ask an admin to unlock"


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The delays the throttle asked for, recorded instead of slept."""
    seen: list[float] = []
    monkeypatch.setattr(users, "_sleep", seen.append)
    return seen


def _fail(db, username="admin", password="wrong-guess-0000", client=None):
    with pytest.raises(AuthenticationFailed) as exc:
        users.authenticate(db, username=username, password=password, client=client)
    return str(exc.value)


def _events(db, admin, action):
    return [e for e in audit.list_events(db, actor=admin, action=action, limit=500).events if e.action == action]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(db, people, waits):
    for _ in range(5):
        assert _fail(db) == "wrong username or password"
    assert _fail(db, password=TEST_PASSWORD) == LOCKED
    failed = [e for e in _events(db, people["admin"], "user.login_failed") if e.entity_id == "admin"]
    assert len(failed) == 5
    assert any(e.entity_id == "admin" for e in _events(db, people["admin"], "user.login_locked"))
    for e in failed:
        assert "wrong-guess" not in f"{e.summary} {e.before} {e.after}"  # never the password


def test_each_failure_makes_the_next_attempt_wait_longer_up_to_a_cap(db, people, waits):
    for _ in range(5):
        _fail(db)
    assert waits == [0.25, 0.5, 1.0, 2.0]  # nothing before the first attempt; doubling after each failure
    _fail(db)
    assert waits[-1] == 3.0  # capped: a Streamlit session thread never sleeps longer


def test_other_accounts_are_not_locked_or_slowed_by_someone_elses_failures(db, people, waits):
    for _ in range(5):
        _fail(db)
    assert users.authenticate(db, username="alice", password=TEST_PASSWORD).username == "alice"
    assert waits[-1:] == [2.0]  # the last admin attempt's wait; alice's login added none


def test_many_accounts_tried_from_one_address_lock_that_address_only(db, people, waits):
    for name in ["alice", "dan", "sara", "omar", "admin", "alice", "dan", "sara", "omar", "admin"]:
        _fail(db, username=name, client="203.0.113.9")
    msg = _fail(db, username="alice", password=TEST_PASSWORD, client="203.0.113.9")
    assert msg.startswith("too many failed attempts from your address; try again in 15 minutes")
    assert users.authenticate(db, username="alice", password=TEST_PASSWORD, client="198.51.100.7").username == "alice"


def test_the_lock_ends_after_the_lock_time(db, people, waits):
    for _ in range(5):
        _fail(db)
    with db.unit_of_work() as s:  # move the clock: the failures happened 16 minutes ago
        for ev in s.exec(select(AuditEvent).where(AuditEvent.action == "user.login_failed")).all():
            ev.at = ev.at - timedelta(minutes=16)
    assert users.authenticate(db, username="admin", password=TEST_PASSWORD).username == "admin"


def test_an_admin_unlocks_a_locked_account_and_only_an_admin_may(db, people, waits):
    for _ in range(5):
        _fail(db, username="alice")
    with pytest.raises(PermissionDenied):
        users.unlock_login(db, actor=people["ops"], username="alice")
    users.unlock_login(db, actor=people["admin"], username="alice")
    assert users.authenticate(db, username="alice", password=TEST_PASSWORD).username == "alice"
    assert _events(db, people["admin"], "user.login_unlock")[0].actor_username == "admin"


def test_a_successful_login_is_audited_and_starts_the_count_again(db, people, waits):
    for _ in range(4):
        _fail(db)
    users.authenticate(db, username="admin", password=TEST_PASSWORD, client="192.0.2.1")
    ok = _events(db, people["admin"], "user.login")
    assert [(e.action, e.actor_username, e.after) for e in ok] == [("user.login", "admin", {"client": "192.0.2.1"})]
    for _ in range(4):
        assert _fail(db) == "wrong username or password"  # 4 more are not a lock: the count restarted


def test_changing_your_own_password_needs_the_current_one(db, people, waits):
    sara = people["data_scientist"]
    with pytest.raises(AuthenticationFailed, match="current password is wrong"):
        users.change_password(
            db, actor=sara, username="sara", new_password="a-brand-new-passphrase", current_password="not-my-password"
        )
    assert users.authenticate(db, username="sara", password=TEST_PASSWORD).username == "sara"  # unchanged
    failed = [e for e in _events(db, people["admin"], "user.login_failed") if e.entity_id == "sara"]
    assert len(failed) == 1 and failed[0].actor_username == "sara"
    users.change_password(
        db, actor=sara, username="sara", new_password="a-brand-new-passphrase", current_password=TEST_PASSWORD
    )
    assert users.authenticate(db, username="sara", password="a-brand-new-passphrase").username == "sara"


def test_wrong_current_passwords_count_towards_the_lock(db, people, waits):
    sara = people["data_scientist"]
    for _ in range(5):
        with pytest.raises(AuthenticationFailed, match="current password is wrong"):
            users.change_password(
                db,
                actor=sara,
                username="sara",
                new_password="a-brand-new-passphrase",
                current_password="guess-guess-guess",
            )
    with pytest.raises(AuthenticationFailed, match="too many failed attempts for sara"):
        users.change_password(
            db, actor=sara, username="sara", new_password="a-brand-new-passphrase", current_password=TEST_PASSWORD
        )


def test_an_admin_resets_someone_elses_password_without_theirs(db, people, waits):
    users.change_password(db, actor=people["admin"], username="omar", new_password="reset-by-the-admin")
    assert users.authenticate(db, username="omar", password="reset-by-the-admin").username == "omar"
    with pytest.raises(PermissionDenied):
        users.change_password(db, actor=people["ops"], username="alice", new_password="taken-over-account")


# --- the login page -----------------------------------------------------------------------------------------


def test_the_login_page_shows_the_lock_message_and_logs_nobody_in(sqlite_db, waits):
    make_people(sqlite_db)
    for _ in range(5):
        _fail(sqlite_db)
    at = app_as(None)
    by_label(at.text_input, "Username").input("admin")
    by_label(at.text_input, "Password").input(TEST_PASSWORD)
    at.button[0].click()
    at.run()
    no_exceptions(at)
    assert [e.value for e in at.error] == [LOCKED]
    assert "actor" not in at.session_state
