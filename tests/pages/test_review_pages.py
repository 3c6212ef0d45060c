"""A reviewer's pass through every role's screens (issue 15): what read wrongly in Chromium at 1440x900,
checked here at page level."""

import pytest

from mlops_core.services import collab, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_inbox_says_who_asked_whom_in_words_and_links_the_object_inside_its_card(people, sqlite_db):
    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Invoice fraud triage")
    collab.request_signoff(
        sqlite_db,
        actor=people["data_scientist"],
        entity_type="use_case",
        entity_id=uc.id,
        title="Approve the fraud KPIs",
        assignee_role="business",
    )
    at = app_as(people["business"], page="pages/inbox.py")
    no_exceptions(at)
    page = texts(at)
    ds = people["data_scientist"].username
    assert f"{ds} asked any business user on" in page and "asked by" not in page
    # the use case link is drawn inside the sign-off card, before its decision controls
    links = [link for link in at.page_link if link.value == "Open the use case"]
    assert links and f"id={uc.id}" in str(links[0].proto)
    # the notifications' heading comes before their controls (it was drawn between them and the list)
    order = [getattr(el, "value", None) or getattr(el, "label", None) for el in at.main]
    heading = next(i for i, v in enumerate(order) if str(v).startswith("Notifications ("))
    assert heading < order.index("Unread only") and heading < order.index("Mark all read")


def test_overview_and_activity_name_the_use_case_instead_of_its_id(people, sqlite_db):
    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Invoice fraud triage")
    at = app_as(people["business"], page="pages/home.py")
    no_exceptions(at)
    recent = at.dataframe[0].value
    assert list(recent.columns) == ["when", "who", "about", "what happened"]  # no raw action name
    assert "use case Invoice fraud triage" in list(recent["about"])
    assert f"use_case {uc.id}" not in list(recent["about"])
    assert [link for link in at.page_link if link.value == "All activity"]

    at = app_as(people["admin"], page="pages/activity.py")
    no_exceptions(at)
    events = at.dataframe[0].value
    row = events[events["entity"] == "use case"].iloc[0]
    assert row["which"] == "Invoice fraud triage"


def test_use_case_page_opens_on_the_use_case_with_the_newest_run_not_a_blank_new_one(people, sqlite_db):
    from tests.services.deployments_world import make_world

    w = make_world(sqlite_db, people, target=0.5)  # "churn" use case with data, a run and a model
    usecases.create_use_case(sqlite_db, actor=people["business"], title="Aaa just proposed")  # listed first
    at = app_as(people["business"], page="pages/use_case.py")
    no_exceptions(at)
    assert at.selectbox(key="uc_pick").value == w.use_case_id


def test_experiments_sort_reads_in_words_and_business_is_not_told_to_launch(people, sqlite_db):
    usecases.create_use_case(sqlite_db, actor=people["business"], title="Invoice fraud triage")
    at = app_as(people["business"], page="pages/experiments.py")
    no_exceptions(at)
    sort = at.selectbox(key="exp_f_sort")
    assert "created" in sort.options and "created_at" not in sort.options
    page = texts(at)
    assert "Data scientists launch experiments" in page and "Launch an experiment above" not in page
    at = app_as(people["data_scientist"], page="pages/experiments.py")
    assert "Launch an experiment above" in texts(at)


def test_model_card_schema_and_lineage_read_as_words(people, sqlite_db):
    from tests.services.deployments_world import make_world

    make_world(sqlite_db, people, target=0.5)
    at = app_as(people["business"], page="pages/models.py")
    no_exceptions(at)
    schema = next(df.value for df in at.dataframe if "categories" in df.value.columns)
    assert list(schema.columns) == ["column", "type", "categories"]
    cats = dict(zip(schema["column"], schema["categories"]))
    assert cats["tenure_months"] == "" and "None" not in set(schema["categories"])
    assert "month-to-month" in cats["contract"]
    page = texts(at)
    assert "(logistic regression, by " in page  # the card's run line names the algorithm in words
    assert "logistic regression by " in page  # and so does the lineage's run box


def test_alerts_name_their_kind_in_words_and_the_filter_offers_every_kind(sqlite_db):
    from mlops_core.models.monitoring import ALERT_KINDS
    from mlops_core.services import monitoring
    from tests.services.monitoring_world import customers, log_traffic, make_world

    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    monitoring.configure_monitor(
        sqlite_db, actor=people["ops"], deployment_name="churn", window_size=300, schedule_seconds=None
    )
    log_traffic(sqlite_db, world, customers(300, seed=5, drift=1.0), label_share=0.5)
    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    alert = monitoring.list_alerts(sqlite_db, kind="drift")[0]
    at = app_as(people["business"], page="pages/alerts.py")
    no_exceptions(at)
    assert f"#{alert.id}** · data drift · " in texts(at)
    kinds = at.selectbox(key="al_kind")
    assert len(kinds.options) == len(ALERT_KINDS) + 1  # "(all)" and every kind, segment alerts included
    assert "KPI missed in a segment" in kinds.options and "segment_kpi_missed" not in kinds.options
    kinds.select("drift")
    at.run()
    no_exceptions(at)
    assert f"#{alert.id}** · data drift · " in texts(at)


def test_compare_offers_other_use_cases_runs_when_the_open_one_has_none(people, sqlite_db):
    from tests.services.deployments_world import make_world

    make_world(sqlite_db, people, target=0.5, versions=2)  # two finished runs on "churn"
    empty = usecases.create_use_case(sqlite_db, actor=people["business"], title="Invoice fraud triage")
    at = app_as(people["business"])
    at.session_state["use_case_id"] = empty.id
    at.switch_page("pages/compare.py")
    at.run()
    no_exceptions(at)
    picker = at.multiselect(key="cmp_pick")
    assert len(picker.options) == 2 and len(picker.value) == 2
    assert "runs of every use case" in texts(at)


def test_compare_prints_metrics_to_four_figures_not_six_decimals(people, sqlite_db):
    from tests.services.deployments_world import make_world

    make_world(sqlite_db, people, target=0.5, versions=2)
    at = app_as(people["data_scientist"], page="pages/compare.py")
    no_exceptions(at)
    metrics = at.dataframe[1]
    shown = str(metrics.proto.arrow_data.styler.display_values)
    raw = metrics.value
    accuracy = float(raw.loc["accuracy"].iloc[0])
    assert f"{accuracy:.4g}" in shown and f"{accuracy:.6f}" not in shown


def test_users_page_names_roles_in_words(people, sqlite_db):
    from mlops_core.services import users

    at = app_as(people["admin"], page="pages/admin_users.py")
    no_exceptions(at)
    listed = at.dataframe[0].value
    assert "data engineer" in set(listed["role"]) and "data_engineer" not in set(listed["role"])
    new_role = at.selectbox(key="role_new")
    assert "data scientist" in new_role.options and "data_scientist" not in new_role.options
    at.selectbox(key="role_user").select(people["ops"].username)
    new_role.select("data_scientist")
    at.button(key="FormSubmitter:set_role-Change role").click()
    at.run()
    no_exceptions(at)
    assert users.get_user(sqlite_db, username=people["ops"].username).role == "data_scientist"
    assert f"{people['ops'].username} is now data scientist." in texts(at)


def test_account_names_the_role_in_words(people):
    at = app_as(people["data_scientist"], page="pages/account.py")
    no_exceptions(at)
    assert "with the role **data scientist**" in texts(at) and "data_scientist" not in texts(at)
