"""Finding 4: a demoted or deactivated person kept acting in a tab opened before the change, and sessions
never expired. Now every rerun re-reads the role and the active flag, the services re-check them on every
write, and an idle session ends."""

import time

import pytest

from mlops_core.demo.customers import make_customers
from mlops_core.errors import PermissionDenied
from mlops_core.services import audit, datasets, users
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts

REASON = "refunds booked as negative charges; accepted by billing"


def _failed_version(db, dan):
    # The first version sets the expectations; the second breaks them.
    datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=make_customers(300, seed=1))
    bad = make_customers(300, seed=2)
    bad.loc[:3, "monthly_charges"] = -9.5
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=bad)
    assert v.status == "failed"
    return v


def _waivers(db, admin) -> int:
    return audit.list_events(db, actor=admin, action="dataset.waive").total


# --- the service layer: a stale Actor is refused on the write path ------------------------------------------


def test_a_stale_actor_whose_role_changed_cannot_waive_and_is_told_its_new_role(db, people):
    dan, admin = people["data_engineer"], people["admin"]
    v = _failed_version(db, dan)
    users.set_role(db, actor=admin, username="dan", role="business")
    with pytest.raises(PermissionDenied, match="your role is now business"):
        datasets.waive_version(db, actor=dan, version_id=v.id, reason=REASON)  # dan still says data_engineer
    assert datasets.get_version(db, v.id).status == "failed"
    assert _waivers(db, admin) == 0


def test_a_stale_actor_of_a_deactivated_account_cannot_write_and_is_told_why(db, people):
    dan, admin = people["data_engineer"], people["admin"]
    v = _failed_version(db, dan)
    users.create_token(db, actor=dan, username="dan")
    token = users.list_tokens(db, actor=admin, username="dan")[0]
    users.set_active(db, actor=admin, username="dan", active=False)
    with pytest.raises(PermissionDenied, match="your account was deactivated"):
        datasets.waive_version(db, actor=dan, version_id=v.id, reason=REASON)
    with pytest.raises(PermissionDenied, match="your account was deactivated"):
        users.revoke_token(db, actor=dan, token_id=token.id)  # self-service writes too, not only role-gated ones
    assert datasets.get_version(db, v.id).status == "failed"
    assert users.list_tokens(db, actor=admin, username="dan")[0].revoked_at is None
    assert _waivers(db, admin) == 0


def test_a_current_actor_still_writes(db, people):
    dan = people["data_engineer"]
    v = _failed_version(db, dan)
    assert datasets.waive_version(db, actor=dan, version_id=v.id, reason=REASON).status == "waived"


def test_an_admin_who_demotes_themself_finishes_that_one_change(db, people):
    # The role checked is the one the write started with, not the one this very write sets.
    users.create_user(db, actor=people["admin"], username="root2", password="a-long-enough-pass", role="admin")
    assert users.set_role(db, actor=people["admin"], username="admin", role="ops").role == "ops"
    with pytest.raises(PermissionDenied, match="your role is now ops"):
        users.set_role(db, actor=people["admin"], username="alice", role="ops")


# --- the UI: the next rerun of an open tab ------------------------------------------------------------------


@pytest.fixture
def ui_people(sqlite_db, monkeypatch):
    # The real server runs app.py on every rerun (st.navigation turns off the pages/ folder mode for good);
    # AppTest resets that mode before each run, so its later runs would execute the page file alone and
    # skip app.py, which is exactly the code under test here. Keep the server's behaviour.
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_like_the_server(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_like_the_server)
    return make_people(sqlite_db)


def _dan_on_the_failed_version(sqlite_db, ui_people):
    v = _failed_version(sqlite_db, ui_people["data_engineer"])
    at = app_as(ui_people["data_engineer"], page="pages/dataset.py")
    by_label(at.selectbox, "Version").select(v.id)
    at.run()
    no_exceptions(at)
    at.text_area(key=f"waive_reason_{v.id}").input(REASON)
    return at, v


def test_a_deactivated_user_clicking_waive_in_an_open_tab_gets_the_login_form_and_waives_nothing(sqlite_db, ui_people):
    at, v = _dan_on_the_failed_version(sqlite_db, ui_people)
    users.set_active(sqlite_db, actor=ui_people["admin"], username="dan", active=False)
    at.button(key=f"FormSubmitter:waive_{v.id}-Waive and allow training").click()
    at.run()
    no_exceptions(at)
    assert "actor" not in at.session_state
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert "Your account was deactivated" in texts(at)
    assert datasets.get_version(sqlite_db, v.id).status == "failed"
    assert _waivers(sqlite_db, ui_people["admin"]) == 0


def test_a_demoted_user_clicking_waive_in_an_open_tab_loses_the_action_and_waives_nothing(sqlite_db, ui_people):
    at, v = _dan_on_the_failed_version(sqlite_db, ui_people)
    users.set_role(sqlite_db, actor=ui_people["admin"], username="dan", role="business")
    at.button(key=f"FormSubmitter:waive_{v.id}-Waive and allow training").click()
    at.run()
    no_exceptions(at)
    assert at.session_state["actor"].role == "business"
    assert not any(w.label.startswith("Reason for the waiver") for w in at.text_area)
    assert any("Your role is now business" in t.value for t in at.toast)
    assert datasets.get_version(sqlite_db, v.id).status == "failed"
    assert _waivers(sqlite_db, ui_people["admin"]) == 0


@pytest.mark.parametrize("idle_hours, expired", [(9, True), (7, False)])
def test_a_session_idle_longer_than_the_limit_shows_the_login_form_with_session_expired(ui_people, idle_hours, expired):
    at = app_as(ui_people["business"])
    at.session_state["_last_seen"] = time.time() - idle_hours * 3600  # default limit: 8 hours
    at.run()
    no_exceptions(at)
    assert ("actor" not in at.session_state) == expired
    assert ("session expired" in texts(at)) == expired
    if not expired:
        assert "Workspace overview" in texts(at)
