"""The ML canvas and value sections (issue 20) on the use case page, and value on the portfolio, via AppTest."""

import pytest

from mlops_core.services import canvas, usecases, value
from tests.conftest import make_people
from tests.services.test_value_service import GOOD, _run
from tests.pages.helpers import app_as, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_alice_fills_the_canvas_and_the_value_model(people, sqlite_db):
    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Canvas page")
    at = app_as(people["business"])
    at.switch_page("pages/use_case.py")
    at.query_params["id"] = str(uc.id)
    at.run()
    no_exceptions(at)
    at.text_area(key=f"canvas_{uc.id}_decision").input("which customers get a retention call")
    at.selectbox(key=f"canvas_{uc.id}_problem_type").select("binary")
    at.text_input(key=f"canvas_{uc.id}_positive").input("1")
    at.button(key=f"FormSubmitter:canvas_form_{uc.id}-Save canvas").click()
    at.run()
    no_exceptions(at)
    c = canvas.get_canvas(sqlite_db, use_case_id=uc.id)
    assert (c.version, c.fields["decision"], c.problem_type) == (1, "which customers get a retention call", "binary")

    for key, v in (("vol", "1000"), ("tp", "100"), ("fp", "-10"), ("fn", "-100")):
        at.text_input(key=f"vm_{uc.id}_{key}").input(v)
    at.button(key=f"FormSubmitter:value_form_{uc.id}-Save value model").click()
    at.run()
    no_exceptions(at)
    vm = value.get_value_model(sqlite_db, use_case_id=uc.id)
    assert vm.missing == ["TN"] and vm.outcome_values["fn"] == -100
    shown = texts(at)
    assert "Value is incomplete: missing TN" in shown
    assert "recall >= 0.8" in shown  # a miss costs 10x a false alarm

    at.button(key=f"vm_{uc.id}_gate").click()
    at.run()
    no_exceptions(at)
    assert [k.kind for k in usecases.get_use_case(sqlite_db, use_case_id=uc.id).kpis] == ["value"]

    # a finished run shows its expected value on the test split: TN set to 0 completes the model
    value.set_value_model(
        sqlite_db,
        actor=people["business"],
        use_case_id=uc.id,
        problem_type="binary",
        currency="EUR",
        volume_per_period=1000,
        outcome_values={"tp": 100, "fp": -10, "fn": -200, "tn": 0},
    )
    with sqlite_db.unit_of_work() as s:
        run_id = _run(s, uc.id, GOOD, "good").id
    at.run()
    no_exceptions(at)
    table = next(d.value for d in at.dataframe if "expected value per period (test split)" in d.value.columns)
    assert list(table["expected value per period (test split)"]) == ["8,000 EUR per month"]

    rp = app_as(people["business"], page="pages/run.py")
    rp.query_params["id"] = str(run_id)
    rp.run()
    no_exceptions(rp)
    shown = texts(rp).replace("**", "")
    assert (
        "Expected value on the test split, with decision threshold 0.5, scores at or above it count as positive: "
        "8,000 EUR per month" in shown
    )

    pf = app_as(people["business"], page="pages/portfolio.py")
    no_exceptions(pf)
    assert "value: not deployed in production" not in texts(pf)
