"""Issue 15 as each role sees it (AppTest): the request form pre-fills nothing and offers only the model's
use case's endpoints; business reads the sign-off evidence as a KPI table and must confirm a missed KPI;
a rejected request leaves nothing to approve; links name the dataset as well as the version."""

import pytest

from mlops_core.demo.customers import make_customers
from mlops_core.services import collab, datasets, deployments
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.deployments_world import make_world


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


@pytest.fixture(autouse=True)
def quick_loads(monkeypatch):
    """The model-load gate (a separate process per check; tested with the services) passes at once."""
    monkeypatch.setattr(
        deployments, "_gate_loads", lambda db, mv: deployments._gate("model_loads", "Model loads", "passed", "stubbed")
    )


@pytest.fixture
def world(sqlite_db, people):
    """churn-model v1 trained on customers@v1, with a KPI it misses (roc_auc >= 0.99); a second dataset
    whose first version is v1 as well."""
    w = make_world(sqlite_db, people, target=0.99)
    other = datasets.register_version_from_frame(
        sqlite_db, actor=people["data_engineer"], dataset_name="wine_lab", frame=make_customers(60, seed=9)
    )
    return w, other


def test_the_request_form_prefills_nothing_and_offers_the_models_endpoints_then_starts_empty(people, world, sqlite_db):
    w, _ = world
    at = app_as(people["data_scientist"], page="pages/deployments.py")
    no_exceptions(at)
    assert by_label(at.selectbox, "Model version").value is None  # no default model
    assert not [s for s in at.selectbox if s.label == "Endpoint"]
    by_label(at.selectbox, "Model version").select(w.versions[0])
    at.run()
    endpoint = by_label(at.selectbox, "Endpoint")
    assert endpoint.value is None  # no pre-filled endpoint name
    assert at.button(key="deps_go").disabled
    endpoint.select("__new__")
    at.run()
    by_label(at.text_input, "New endpoint name (the URL /v1/deployments/<name>)").input("churn")
    at.run()
    at.button(key="deps_go").click()
    at.run()
    no_exceptions(at)
    assert "Requested churn-model v1 on churn (production)" in texts(at)
    assert by_label(at.selectbox, "Model version").value is None  # the form starts empty again
    assert deployments.list_requests(sqlite_db, deployment_name="churn")[0].model_version_id == w.versions[0]

    # "Request deployment" on the model page opens the form with that model version chosen
    at = app_as(people["data_scientist"], page="pages/models.py")
    no_exceptions(at)
    [link] = [link for link in at.page_link if link.value == "Request deployment of churn-model v1"]
    assert f"mv={w.versions[0]}" in str(link.proto)
    at.query_params["mv"] = str(w.versions[0])
    at.switch_page("pages/deployments.py")
    at.run()
    no_exceptions(at)
    assert by_label(at.selectbox, "Model version").value == w.versions[0]
    assert by_label(at.selectbox, "Endpoint").value is None


def test_business_reads_the_evidence_as_a_kpi_table_and_must_confirm_a_missed_kpi(people, world, sqlite_db):
    w, _ = world
    req = deployments.request_deployment(
        sqlite_db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    at = app_as(people["business"], page="pages/inbox.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["KPI"]) == ["roc_auc"] and list(table["target"]) == [">= 0.99"]
    assert list(table["result"]) == ["missed"]
    page = texts(at)
    assert "customers@v1" in page and "validated" in page and '"model_version_id"' not in page
    links = {link.value: str(link.proto) for link in at.page_link}
    assert "Model card" in links and f"id={w.versions[0]}" in links["Model card"]
    data_link = links["Data: customers@v1"]
    assert f"v={w.dataset_version_id}" in data_link and "id=" in data_link.replace(f"v={w.dataset_version_id}", "")
    by_label(at.button, "Approve").click()
    at.run()
    assert "Tick the confirmation first" in texts(at)
    assert collab.get_signoff(sqlite_db, req.signoff_id).status == "pending"
    by_label(at.checkbox, "I approve it although it falls short of the targets above").check()
    by_label(at.button, "Approve").click()
    at.run()
    no_exceptions(at)
    assert collab.get_signoff(sqlite_db, req.signoff_id).status == "approved"


def test_a_rejected_request_leaves_nothing_to_approve_and_its_notification_opens_the_object(people, world, sqlite_db):
    w, other = world
    req = deployments.request_deployment(
        sqlite_db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    deployments.reject_request(sqlite_db, actor=people["ops"], request_id=req.id, reason="misses recall")
    at = app_as(people["business"], page="pages/inbox.py")
    no_exceptions(at)
    page = texts(at)
    assert "Nothing waits for your sign-off." in page and "(0 unread)" in page
    assert not [b for b in at.button if b.label == "Approve"]
    assert "Open the model version" in [link.value for link in at.page_link]
    assert "model_version 1" not in page and "signoff ·" not in page  # words, not internal names

    # A link that names only a version id opens that version's own dataset, not the one picked before.
    at = app_as(people["data_engineer"], page="pages/dataset.py")
    at.session_state["ds_pick"] = other.dataset_id  # wine_lab was open
    at.query_params.clear()  # the link's URL carries only ?v=
    at.query_params["v"] = str(w.dataset_version_id)  # customers@v1: the same version number as wine_lab@v1
    at.run()
    no_exceptions(at)
    assert at.title[0].value == "customers"
