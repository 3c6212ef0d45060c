"""Accounts, login, tokens and the audit trail, on SQLite and Postgres."""

import pytest

from mlops_core.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied, ValidationError
from mlops_core.models.users import User
from mlops_core.services import audit, users
from tests.conftest import TEST_PASSWORD


def test_created_user_can_log_in_and_password_is_stored_as_argon2(db, system):
    users.create_user(db, actor=system, username="bob", password="a-long-enough-pass", role="ops")
    actor = users.authenticate(db, username="bob", password="a-long-enough-pass")
    assert (actor.username, actor.role) == ("bob", "ops")
    with db.read() as s:
        row = s.query(User).filter_by(username="bob").one()
        assert row.password_hash.startswith("$argon2")
        assert "a-long-enough-pass" not in row.password_hash


def test_wrong_password_and_unknown_user_fail_with_the_same_message(db, system):
    users.create_user(db, actor=system, username="bob", password="a-long-enough-pass", role="ops")
    with pytest.raises(AuthenticationFailed) as wrong:
        users.authenticate(db, username="bob", password="nope-nope-nope")
    with pytest.raises(AuthenticationFailed) as unknown:
        users.authenticate(db, username="nobody", password="nope-nope-nope")
    assert str(wrong.value) == str(unknown.value) == "wrong username or password"


@pytest.mark.parametrize("username", ["", "   ", "A", "Bob", "x" * 40, "bad name", "../etc"])
def test_bad_usernames_are_refused_with_what_to_fix(db, system, username):
    with pytest.raises(ValidationError, match="username"):
        users.create_user(db, actor=system, username=username, password="a-long-enough-pass", role="ops")


def test_duplicate_username_is_refused(db, system):
    users.create_user(db, actor=system, username="bob", password="a-long-enough-pass", role="ops")
    with pytest.raises(Conflict, match="taken"):
        users.create_user(db, actor=system, username="bob", password="another-long-pass", role="business")


@pytest.mark.parametrize("password", ["", "short", "elevenchars", "aaaaaaaaaaaaaaa"])
def test_weak_passwords_are_refused(db, system, password):
    with pytest.raises(ValidationError, match="password"):
        users.create_user(db, actor=system, username="bob", password=password, role="ops")
    assert users.count_users(db) == 0


def test_unknown_role_is_refused_naming_the_roles(db, system):
    with pytest.raises(ValidationError, match="business, data_engineer, data_scientist, ops, admin"):
        users.create_user(db, actor=system, username="bob", password="a-long-enough-pass", role="wizard")


def test_set_role_changes_role_and_is_audited_with_before_and_after(db, people):
    admin = people["admin"]
    users.set_role(db, actor=admin, username="alice", role="ops")
    assert users.authenticate(db, username="alice", password=TEST_PASSWORD).role == "ops"
    ev = audit.list_events(db, actor=admin, action="user.set_role").events[0]
    assert ev.actor_username == "admin"
    assert ev.before == {"role": "business"} and ev.after == {"role": "ops"}


def test_set_role_of_unknown_user_says_so(db, people):
    with pytest.raises(NotFound, match="nobody"):
        users.set_role(db, actor=people["admin"], username="nobody", role="ops")


def test_last_admin_cannot_be_demoted(db, people):
    with pytest.raises(ValidationError, match="last active admin"):
        users.set_role(db, actor=people["admin"], username="admin", role="ops")


def test_deactivated_user_cannot_log_in(db, people):
    users.set_active(db, actor=people["admin"], username="omar", active=False)
    with pytest.raises(AuthenticationFailed, match="deactivated"):
        users.authenticate(db, username="omar", password=TEST_PASSWORD)


def test_personal_access_token_authenticates_until_revoked_and_is_stored_hashed(db, people):
    sara = people["data_scientist"]
    token = users.create_token(db, actor=sara, username="sara", name="nb")
    assert users.authenticate_token(db, token=token).username == "sara"
    with db.read() as s:
        from mlops_core.models.users import PersonalAccessToken

        stored = s.query(PersonalAccessToken).one()
        assert token not in (stored.token_hash, stored.prefix)
    tokens = users.list_tokens(db, actor=sara, username="sara")
    users.revoke_token(db, actor=sara, token_id=tokens[0].id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        users.authenticate_token(db, token=token)


def test_a_user_cannot_create_a_token_for_someone_else(db, people):
    with pytest.raises(PermissionDenied):
        users.create_token(db, actor=people["data_scientist"], username="alice")


def test_missing_token_says_how_to_get_one(db):
    with pytest.raises(AuthenticationFailed, match="MLOPS_TOKEN"):
        users.authenticate_token(db, token="")


def test_every_user_write_leaves_an_audit_event_without_secrets(db, people):
    admin = people["admin"]
    users.create_user(db, actor=admin, username="bob", password="a-long-enough-pass", role="ops")
    token = users.create_token(db, actor=admin, username="bob")
    page = audit.list_events(db, actor=admin, username="admin")
    actions = [e.action for e in page.events]
    assert "user.create" in actions and "token.create" in actions
    for e in page.events:
        blob = str(e.before) + str(e.after) + e.summary
        assert "a-long-enough-pass" not in blob and token not in blob


def test_audit_list_is_paginated_and_filtered_in_sql(db, people):
    admin = people["admin"]
    for i in range(7):
        users.create_user(db, actor=admin, username=f"user{i}", password="a-long-enough-pass", role="ops")
    first = audit.list_events(db, actor=admin, action="user.create", limit=3)
    second = audit.list_events(db, actor=admin, action="user.create", limit=3, offset=3)
    assert first.total == 7
    assert len(first.events) == 3 and len(second.events) == 3
    assert {e.id for e in first.events}.isdisjoint({e.id for e in second.events})
    assert first.events[0].id > first.events[-1].id  # newest first


def test_oidc_email_maps_to_an_existing_active_user_only(db, people):
    assert users.actor_for_email(db, email="Alice@Example.com").username == "alice"
    with pytest.raises(AuthenticationFailed, match="no active MLOps Hub account"):
        users.actor_for_email(db, email="stranger@example.com")


def test_a_failed_write_leaves_nothing_half_written(db, people):
    # The second create fails inside its unit of work; neither the user nor its audit event stays.
    before = audit.list_events(db, actor=people["admin"]).total
    with pytest.raises(Conflict):
        users.create_user(
            db,
            actor=people["admin"],
            username="carol",
            password="a-long-enough-pass",
            role="ops",
            email="alice@example.com",
        )
    assert audit.list_events(db, actor=people["admin"]).total == before
    assert users.count_users(db) == 5
