"""Reviewer's second pass (issue 15) on the ops / data-scientist screens: what read wrongly in Chromium at
1440x900, checked at page level."""

import pytest

from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


@pytest.fixture
def people(sqlite_db, monkeypatch):
    # Run app.py (and so its sidebar footer) on every rerun as the real server does.
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_like_the_server(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_like_the_server)
    return make_people(sqlite_db)


def test_sidebar_names_the_role_in_words(people):
    at = app_as(people["data_engineer"])
    no_exceptions(at)
    footer = [str(m.value) for m in at.sidebar.markdown]
    assert any("`data engineer`" in v for v in footer), footer
    assert not any("data_engineer" in v for v in footer)
