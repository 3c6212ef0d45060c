"""Issue 20: the portfolio's "New use case" form offers the guided ML canvas, saved as version 1 with the use case."""

import pytest

from mlops_core.errors import ValidationError
from mlops_core.services import canvas, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_new_use_case_form_saves_the_canvas(people, sqlite_db):
    at = app_as(people["business"], page="pages/portfolio.py")
    no_exceptions(at)
    at.text_input(key="new_uc_title").input("Churn with canvas")
    at.text_area(key="new_uc_canvas_decision").input("which customers get a retention call")
    at.text_area(key="new_uc_canvas_target").input("the customer cancels within 30 days")
    at.selectbox(key="new_uc_canvas_problem_type").select("binary")
    at.text_input(key="new_uc_canvas_positive").input("churned")
    at.button(key="FormSubmitter:new_use_case-Create use case").click()
    at.run()
    no_exceptions(at)
    uc = next(u for u in usecases.list_use_cases(sqlite_db).items if u.title == "Churn with canvas")
    c = canvas.get_canvas(sqlite_db, use_case_id=uc.id)
    assert (c.version, c.problem_type, c.positive_class) == (1, "binary", "churned")
    assert c.fields == {
        "decision": "which customers get a retention call",
        "target": "the customer cancels within 30 days",
    }


def test_create_with_a_bad_canvas_creates_nothing_and_an_empty_canvas_saves_no_version(people, sqlite_db):
    with pytest.raises(ValidationError):
        usecases.create_use_case(
            sqlite_db, actor=people["business"], title="Bad canvas", problem_type="regression", positive_class="1"
        )
    assert not [u for u in usecases.list_use_cases(sqlite_db).items if u.title == "Bad canvas"]
    uc = usecases.create_use_case(
        sqlite_db, actor=people["business"], title="No canvas", canvas_fields={"decision": " "}
    )
    assert canvas.get_canvas(sqlite_db, use_case_id=uc.id).version == 0
