"""The login page and the per-role navigation, through Streamlit's AppTest."""

import pytest

from tests.conftest import TEST_PASSWORD, make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts

EXPECTED_ONLY_FOR_ADMIN = "Users & roles"


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def _log_in(at, username, password):
    by_label(at.text_input, "Username").input(username)
    by_label(at.text_input, "Password").input(password)
    at.button[0].click()
    at.run()
    if "actor" in at.session_state:
        # The page calls st.rerun() after login; AppTest needs the next run and the landing page explicitly.
        at.switch_page("pages/home.py")
        at.run()
    return at


def test_login_page_is_shown_to_a_visitor(people):
    at = app_as(None)
    no_exceptions(at)
    assert at.title[0].value == "MLOps Hub"
    assert [w.label for w in at.text_input] == ["Username", "Password"]


def test_correct_password_logs_in_and_shows_the_overview(people):
    at = _log_in(app_as(None), "alice", TEST_PASSWORD)
    no_exceptions(at)
    assert at.session_state["actor"].username == "alice"
    assert "Workspace overview" in texts(at)


def test_wrong_password_shows_an_error_and_logs_nobody_in(people):
    at = _log_in(app_as(None), "alice", "not-the-password")
    assert "wrong username or password" in at.error[0].value
    assert "actor" not in at.session_state


def test_unknown_user_gets_the_same_error(people):
    at = _log_in(app_as(None), "mallory", TEST_PASSWORD)
    assert "wrong username or password" in at.error[0].value
    assert "actor" not in at.session_state


@pytest.mark.parametrize("role", ["business", "data_engineer", "data_scientist", "ops", "admin"])
def test_each_role_sees_its_own_navigation(people, role):
    at = app_as(people[role])
    no_exceptions(at)
    titles = at.session_state["nav_titles"]
    assert "Overview" in titles and "Activity" in titles and "My account" in titles
    assert (EXPECTED_ONLY_FOR_ADMIN in titles) == (role == "admin")


def test_a_non_admin_cannot_reach_the_users_page_by_url(people):
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app_as(people["business"], page="pages/admin_users.py")


def test_admin_adds_a_user_from_the_users_page(people, sqlite_db):
    from mlops_core.services import users

    at = app_as(people["admin"], page="pages/admin_users.py")
    no_exceptions(at)
    by_label(at.text_input, "Username").input("newcomer")
    by_label(at.text_input, "Initial password (12+ characters)").input("a-long-enough-pass")
    by_label(at.selectbox, "Role").select("ops")
    at.button(key="FormSubmitter:add_user-Add user").click()
    at.run()
    no_exceptions(at)
    assert "Added newcomer." in [s.value for s in at.success]
    assert users.get_user(sqlite_db, username="newcomer").role == "ops"


def test_admin_page_shows_a_weak_password_error_and_adds_nobody(people, sqlite_db):
    from mlops_core.services import users

    at = app_as(people["admin"], page="pages/admin_users.py")
    by_label(at.text_input, "Username").input("newcomer")
    by_label(at.text_input, "Initial password (12+ characters)").input("short")
    at.button(key="FormSubmitter:add_user-Add user").click()
    at.run()
    assert "too short" in at.error[0].value
    assert "newcomer" not in [u.username for u in users.list_users(sqlite_db, actor=people["admin"])]


def test_activity_page_lists_audit_events(people, sqlite_db):
    from mlops_core.services import users

    users.create_user(sqlite_db, actor=people["admin"], username="carol", password="a-long-enough-pass", role="ops")
    at = app_as(people["ops"], page="pages/activity.py")
    no_exceptions(at)
    df = at.dataframe[0].value
    assert "user.create" in set(df["action"])


# Logging out is covered by the browser test (tests/e2e/test_login_browser.py): AppTest does not
# deliver clicks on sidebar widgets rendered after st.navigation's run.
