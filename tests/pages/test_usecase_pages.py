"""The portfolio, use case and inbox pages, through Streamlit's AppTest."""

import pytest

from mlops_core.services import collab, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def _submit(at, form: str, label: str):
    at.button(key=f"FormSubmitter:{form}-{label}").click()
    at.run()
    return at


def _churn(db, people):
    uc = usecases.create_use_case(
        db, actor=people["business"], title="Customer churn", tags=["retention"], members={"data_scientist": ["sara"]}
    )
    usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="recall", target=0.75)
    k = usecases.add_kpi(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        kind="business",
        name="Monthly churn rate",
        unit="%",
        baseline=8.5,
        target=6,
        direction="<=",
    )
    for month, v in ((1, 8.4), (2, 7.9), (3, 5.8)):
        usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value=v, measured_on=f"2026-0{month}-01")
    return usecases.get_use_case(db, use_case_id=uc.id)


def test_business_user_creates_a_use_case_and_a_kpi_end_to_end(people, sqlite_db):
    at = app_as(people["business"], page="pages/portfolio.py")
    no_exceptions(at)
    at.text_input(key="new_uc_title").input("Late payments")
    at.text_area(key="new_uc_problem").input("Invoices are paid late")
    at.text_input(key="new_uc_tags").input("finance, cash")
    _submit(at, "new_use_case", "Create use case")
    no_exceptions(at)
    assert at.title[0].value == "Late payments"  # landed on the new use case's page
    uc = usecases.resolve_use_case(sqlite_db, "Late payments")
    assert uc.owner_username == "alice" and uc.tags == ["finance", "cash"] and uc.status == "proposed"
    at.switch_page("pages/use_case.py")  # AppTest's next run is on the page it was told, not the script's
    at.run()

    at.radio(key=f"kpi_kind_{uc.id}").set_value("model")
    at.selectbox(key=f"kpi_metric_{uc.id}").select("recall")
    at.text_input(key=f"kpi_target_{uc.id}").input("0.8")
    at.text_input(key=f"kpi_warning_{uc.id}").input("0.05")
    _submit(at, f"kpi_new_{uc.id}", "Add KPI")
    no_exceptions(at)
    assert "KPI added: recall >= 0.8." in texts(at)
    kpis = usecases.model_kpis(sqlite_db, uc.id)
    assert [(k.metric, k.target, k.warning) for k in kpis] == [("recall", 0.8, 0.05)]
    # the form starts empty again: no previous target, band or metric left in it (issue 15)
    assert at.text_input(key=f"kpi_target_{uc.id}").value == ""
    assert at.text_input(key=f"kpi_warning_{uc.id}").value == ""
    assert at.selectbox(key=f"kpi_metric_{uc.id}").value != "recall"


def test_a_kpi_without_a_target_shows_what_to_fix_and_adds_nothing(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["business"], page="pages/use_case.py")
    at.radio(key=f"kpi_kind_{uc.id}").set_value("model")
    at.selectbox(key=f"kpi_metric_{uc.id}").select("f1")
    _submit(at, f"kpi_new_{uc.id}", "Add KPI")
    assert any("is missing; enter a number" in e.value for e in at.error)
    assert len(usecases.list_kpis(sqlite_db, uc.id)) == 2


def test_a_data_scientist_sees_the_edit_controls_disabled_but_may_comment(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["data_scientist"], page="pages/use_case.py")
    no_exceptions(at)
    assert f"uc_edit_open_{uc.id}" not in [b.key for b in at.button]  # no Edit button: the form never opens
    for form, label in (
        (f"kpi_new_{uc.id}", "Add KPI"),
        (f"uc_move_{uc.id}", "Move"),
        (f"kpi_reading_{uc.id}", "Add reading"),
    ):
        assert at.button(key=f"FormSubmitter:{form}-{label}").disabled, label
    assert not at.button(key=f"FormSubmitter:disc_use_case_{uc.id}_new-Post comment").disabled
    assert "editing it and its KPIs is for business users" in texts(at)

    at2 = app_as(people["data_scientist"], page="pages/portfolio.py")
    assert at2.button(key="FormSubmitter:new_use_case-Create use case").disabled


def test_portfolio_shows_use_cases_by_stage_with_kpi_lights_and_owners(people, sqlite_db):
    _churn(sqlite_db, people)
    other = usecases.create_use_case(sqlite_db, actor=people["admin"], title="Invoice fraud triage", tags=["fraud"])
    usecases.transition_use_case(sqlite_db, actor=people["admin"], use_case_id=other.id, to_status="approved")
    at = app_as(people["ops"], page="pages/portfolio.py")
    no_exceptions(at)
    page = texts(at)
    assert "#### Proposed · 1" in page and "#### Approved · 1" in page and "**Deployed** 0" in page
    assert "owner alice" in page and "owner admin" in page
    assert "met] Monthly churn rate <= 6 % (5.8)" in page  # the badge's word: the latest reading meets the target
    assert "unknown] recall >= 0.75 (no runs yet)" in page
    assert "2 use cases" in page

    by_label(at.selectbox, "Tag").select("fraud")
    at.run()
    page = texts(at)
    assert "1 use cases" in page and "owner admin" in page and "owner alice" not in page


def test_use_case_page_charts_business_kpi_readings_and_lists_the_history(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["ops"], page="pages/use_case.py")
    no_exceptions(at)
    assert at.title[0].value == "Customer churn"
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert "Monthly churn rate" in charts[0].proto.spec
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Latest"] == "5.8%" and metrics["Status"] == "met" and metrics["Progress to target"] == "108%"
    history = at.dataframe[-1].value
    assert list(history["to"]) == ["proposed"] and list(history["who"]) == ["alice"]
    for section in ("datasets", "runs", "models", "deployments", "alerts"):
        assert f"No {section}" in texts(at)  # empty-state lines until other stages add things
    assert uc.version == 1


def test_a_stale_save_says_who_changed_it_and_keeps_their_change(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["business"], page="pages/use_case.py")
    usecases.update_use_case(
        sqlite_db,
        actor=people["admin"],
        use_case_id=uc.id,
        expected_version=uc.version,
        objectives="Admin's objectives",
    )
    at.button(key=f"uc_edit_open_{uc.id}").click()  # the form opens behind the Edit button
    at.run()
    by_label(at.text_area, "Objectives").input("Alice's objectives")
    _submit(at, f"uc_edit_{uc.id}", "Save changes")
    assert any("changed by admin at" in e.value and "reload" in e.value for e in at.error)
    assert usecases.get_use_case(sqlite_db, use_case_id=uc.id).objectives == "Admin's objectives"
    at.button(key=f"uc_reload_{uc.id}").click()
    at.run()
    by_label(at.text_area, "Objectives").input("Alice's objectives")
    _submit(at, f"uc_edit_{uc.id}", "Save changes")
    no_exceptions(at)
    assert usecases.get_use_case(sqlite_db, use_case_id=uc.id).objectives == "Alice's objectives"


def test_moving_the_lifecycle_from_the_page_and_an_illegal_move_is_not_offered(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["business"], page="pages/use_case.py")
    assert at.selectbox(key=f"uc_move_to_{uc.id}").options == ["approved", "retired"]
    at.selectbox(key=f"uc_move_to_{uc.id}").select("approved")
    _submit(at, f"uc_move_{uc.id}", "Move")
    no_exceptions(at)
    assert "Moved to approved." in texts(at)
    assert usecases.get_use_case(sqlite_db, use_case_id=uc.id).status == "approved"


def test_a_mention_posted_on_the_page_shows_in_the_mentioned_persons_inbox(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    at = app_as(people["data_scientist"], page="pages/use_case.py")
    at.text_area(key=f"disc_use_case_{uc.id}_text").input("@alice which customers count as churned?")
    _submit(at, f"disc_use_case_{uc.id}_new", "Post comment")
    no_exceptions(at)
    assert "Comment posted. Notified: alice." in texts(at)
    inbox = app_as(people["business"], page="pages/inbox.py")
    no_exceptions(inbox)
    page = texts(inbox)
    assert "Notifications (1 unread)" in page and "sara mentioned you" in page


def test_admin_approves_a_signoff_from_the_inbox(people, sqlite_db):
    uc = _churn(sqlite_db, people)
    so = collab.request_signoff(
        sqlite_db,
        actor=people["business"],
        entity_type="use_case",
        entity_id=uc.id,
        title="Approve the churn KPIs",
        assignee_username="admin",
        evidence={"v": 1},
    )
    at = app_as(people["admin"], page="pages/inbox.py")
    no_exceptions(at)
    assert "Waiting for your sign-off (1)" in texts(at)
    at.text_input(key=f"inbox_so_reason_{so.id}").input("Looks right")
    at.button(key=f"inbox_so_approve_{so.id}").click()
    at.run()
    no_exceptions(at)
    assert "Sign-off “Approve the churn KPIs” approved." in texts(at)
    done = collab.get_signoff(sqlite_db, so.id)
    assert (done.status, done.decided_by, done.reason) == ("approved", "admin", "Looks right")
    assert "Waiting for your sign-off (0)" in texts(at)


def test_the_inbox_is_empty_with_a_hint_for_a_new_user(people):
    at = app_as(people["ops"], page="pages/inbox.py")
    no_exceptions(at)
    assert "Nothing waits for your sign-off." in texts(at) and "@omar" in texts(at)


def test_use_case_pages_are_in_the_navigation_for_every_role(people):
    for role in ("business", "data_engineer", "data_scientist", "ops", "admin"):
        titles = app_as(people[role]).session_state["nav_titles"]
        assert {"Portfolio", "Use case", "My inbox"} <= set(titles)
