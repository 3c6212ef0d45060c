"""Issue 15, problem 2 through AppTest: logging in opens a browser session and hands its one-time code to the
browser (which trades it for the httpOnly cookie); logging out revokes the session and deletes the cookie.
The refresh and the deep link themselves run in chromium (tests/e2e/test_sessions_browser.py)."""

import pytest

from mlops_core.models.ui import UiSession
from tests.conftest import TEST_PASSWORD, make_people
from tests.pages.helpers import app_as, by_label, no_exceptions


@pytest.fixture
def people(sqlite_db, monkeypatch):
    # Run app.py on every rerun as the real server does (see tests/security/test_sessions.py::ui_people).
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_like_the_server(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_like_the_server)
    return make_people(sqlite_db)


def _scripts(at) -> str:
    return " ".join(str(getattr(e, "proto", e)) for e in at.get("html"))


def test_login_opens_a_session_hands_the_code_over_once_and_logout_revokes_it(sqlite_db, people):
    at = app_as(None)
    by_label(at.text_input, "Username").input("alice")
    by_label(at.text_input, "Password").input(TEST_PASSWORD)
    at.button[0].click()
    at.run()  # the login page's st.rerun() follows within this run
    no_exceptions(at)
    session_id = at.session_state["_ui_session_id"]
    assert "/_hub/session" in _scripts(at) and "code=" in _scripts(at)
    at.run()
    assert "/_hub/session" not in _scripts(at)  # once: the code is burnt by the first request anyway
    with sqlite_db.read() as s:
        row = s.get(UiSession, session_id)
        assert row.user_id == people["business"].id and row.handoff_hash and row.revoked_at is None

    at.button(key="logout").click()
    at.run()
    no_exceptions(at)
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert "/_hub/logout" in _scripts(at)
    with sqlite_db.read() as s:
        assert s.get(UiSession, session_id).revoked_at is not None
