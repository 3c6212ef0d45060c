"""Users & roles shows what each role may do, generated from auth.PERMISSIONS (issue 15, admin)."""

import pytest

from mlops_core.services.auth import PERMISSIONS
from mlops_core.services.role_matrix import action_label
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_users_and_roles_page_shows_every_permission_as_a_plain_words_row_with_yes_per_allowed_role(sqlite_db, people):
    at = app_as(people["admin"], "pages/admin_users.py")
    no_exceptions(at)
    assert "What each role may do" in texts(at)
    matrix = next(df.value for df in at.dataframe if "What" in df.value.columns)
    assert list(matrix.columns) == ["Area", "What", "business", "data engineer", "data scientist", "ops", "admin"]
    assert len(matrix) == len(PERMISSIONS)
    assert set(matrix["What"]) == {action_label(a) for a in PERMISSIONS}
    assert not any("." in w for w in matrix["What"]), "every action has plain words, not its internal name"
    rows = matrix.set_index("What")
    assert rows.loc["register datasets"].to_dict() == {
        "Area": "Data",
        "business": "",
        "data engineer": "yes",
        "data scientist": "",
        "ops": "",
        "admin": "yes",
    }
    assert rows.loc["deploy or roll back", "ops"] == "yes" and rows.loc["deploy or roll back", "data scientist"] == ""
    assert (matrix["admin"] == "yes").all()
    assert list(dict.fromkeys(matrix["Area"]))[:2] == ["Users & audit", "Use cases & KPIs"]  # grouped, in order
