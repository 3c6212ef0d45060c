"""The Deployments and Deployment pages through AppTest: the overview numbers, the gate checklist,
sign-off, deploy, rollback, API keys and the "try it" form, as each role sees them.

(File uploads — labels, batch scoring — are services tested in tests/services; AppTest cannot fill a
file_uploader.)"""

import pytest

from mlops_core.services import apikeys, collab, deployments, predictions
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.deployments_world import make_world


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


@pytest.fixture
def world(sqlite_db, people):
    """churn serves v1 (deployed through the gates); sara has requested v2, waiting for alice's sign-off."""
    w = make_world(sqlite_db, people, versions=2)
    db = sqlite_db
    r1 = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    so = collab.signoffs_for(db, "model_version", w.versions[0])[0]
    collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True)
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    deployments.deploy(db, actor=people["ops"], request_id=r1.id)
    r2 = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[1], deployment_name="churn"
    )
    dep = deployments.get_by_name(db, "churn")
    predictions.log_predictions(
        db,
        [
            predictions.prediction_row(
                request_id=f"p{i}",
                deployment_id=dep.id,
                model_version_id=dep.model_version_id,
                inputs={"age": 30},
                prediction=0,
                latency_ms=2.0,
                status="error" if i == 0 else "ok",
            )
            for i in range(4)
        ],
    )
    return w, r2


def open_tab(at, label: str) -> None:
    """Select a tab of the Deployment page (its tabs keep their state under the key dep_tab)."""
    at.session_state["dep_tab"] = label
    at.run()
    no_exceptions(at)


def test_the_serving_metric_shows_the_version_and_the_full_model_name_is_readable_below(people, world):
    at = app_as(people["business"], page="pages/deployment.py")
    no_exceptions(at)
    serving = next(m for m in at.metric if m.label == "Serving")
    since = next(m for m in at.metric if m.label == "Since")  # the date fits; the time is in its help
    assert len(since.value) == 10 and since.value in since.proto.help
    assert serving.value == "v1"  # short enough for a metric column; a model name was cut off there
    assert "churn-model v1 serves this endpoint" in serving.proto.help
    assert any(
        md.value.startswith("Serving **churn-model v1** · endpoint `POST /v1/deployments/churn/predict`")
        for md in at.markdown
    )


def test_a_signoff_shows_in_the_gates_at_once_without_a_recheck(people, world, sqlite_db):
    w, r2 = world
    at = app_as(people["ops"], page="pages/deployment.py")
    no_exceptions(at)
    assert "failed] **Business sign-off** — waiting for business" in texts(at)  # the badge's word, then the gate
    so = next(s for s in collab.signoffs_for(sqlite_db, "model_version", w.versions[1]) if s.status == "pending")
    collab.decide_signoff(sqlite_db, actor=people["business"], signoff_id=so.id, approve=True)  # e.g. from the inbox
    at.run()  # any rerun of omar's page, no "Re-check gates"
    no_exceptions(at)
    page = texts(at)
    # both requests' checklists now show the sign-off passed: r1 (deployed) as stored, r2 (pending) as of now
    assert page.count("passed] **Business sign-off** — approved by alice") == 2
    assert "failed] **Business sign-off**" not in page
    # shown, not stored: the stored checklist changes only with a re-check or the deploy
    stored = deployments.get_request(sqlite_db, r2.id)
    assert next(g for g in stored.gates if g.gate == "business_signoff").status == "failed"


def test_the_overview_shows_each_endpoint_with_its_version_traffic_and_error_rate(people, world):
    at = app_as(people["business"], page="pages/deployments.py")
    no_exceptions(at)
    page = texts(at)
    assert "churn-model v1" in page
    assert "production" in page
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "4" and metrics["Error rate"] == "25.0%"
    assert "Data scientists request deployments" in page  # business cannot request


def test_alice_signs_off_and_omar_deploys_from_the_gate_checklist_then_rolls_back(people, world, sqlite_db):
    w, r2 = world
    at = app_as(people["business"], page="pages/deployment.py")
    no_exceptions(at)
    page = texts(at)
    assert "Business sign-off" in page and "waiting for business" in page
    assert not [b for b in at.button if b.label == "Deploy"]  # business cannot deploy
    by_label(at.button, "Approve").click()
    at.run()
    no_exceptions(at)
    assert collab.signoffs_for(sqlite_db, "model_version", w.versions[1])[0].status == "approved"

    at = app_as(people["ops"], page="pages/deployment.py")
    deploy = next(b for b in at.button if b.label == "Deploy" and b.key == f"dep_deploy_{r2.id}")
    deploy.click()
    at.run()
    no_exceptions(at)
    # Deploy asks for a confirmation with a reason first: nothing moved yet.
    assert "Deploy churn-model v2 on churn (production)?" in texts(at)
    assert deployments.get_by_name(sqlite_db, "churn").model_version_id == w.versions[0]
    at.button(key=f"dep_confirm_ok_deploy_{r2.id}").click()
    at.run()
    assert "the reason is required" in texts(at)  # an empty reason is refused
    assert deployments.get_by_name(sqlite_db, "churn").model_version_id == w.versions[0]
    at.text_input(key=f"dep_confirm_reason_deploy_{r2.id}").input("better recall")
    at.button(key=f"dep_confirm_ok_deploy_{r2.id}").click()
    at.run()
    no_exceptions(at)
    assert "Deployed churn-model v2 on churn" in texts(at)
    assert deployments.get_by_name(sqlite_db, "churn").model_version_id == w.versions[1]

    at.button(key="dep_rollback").click()
    at.run()
    no_exceptions(at)
    assert "Roll back churn (production) from churn-model v2 to churn-model v1?" in texts(at)
    assert deployments.get_by_name(sqlite_db, "churn").model_version_id == w.versions[1]  # not yet
    at.text_input(key="dep_confirm_reason_rollback_churn").input("complaints from the call centre")
    at.button(key="dep_confirm_ok_rollback_churn").click()
    at.run()
    no_exceptions(at)
    assert "Rolled back churn to churn-model v1" in texts(at)
    events = deployments.history(sqlite_db, deployment_name="churn")
    assert [e.kind for e in events][:2] == ["rollback", "deploy"]
    assert events[0].reason == "complaints from the call centre" and events[1].reason == "better recall"


def test_ops_create_a_key_that_is_shown_once_and_revoke_it(people, world, sqlite_db):
    at = app_as(people["ops"], page="pages/deployment.py")
    open_tab(at, "API keys")
    by_label(at.text_input, "What the key is for").input("crm")
    at.button(key="FormSubmitter:dep_newkey-Create API key").click()
    at.run()
    no_exceptions(at)
    # The page stays on the API keys tab, where the key is shown once; the other tabs are not even rendered.
    assert at.session_state["dep_tab"] == "API keys"
    assert "Key created. Copy it now: it is shown only once." in texts(at)
    assert not [w for w in at.text_input if w.label == "Reason to reject"]  # Requests & gates tab
    assert "No API key yet." not in texts(at) and any("crm" in md.value for md in at.markdown)  # already listed
    secret = at.code[0].value
    assert secret.startswith("mlk_")
    key = apikeys.list_keys(sqlite_db, deployment_name="churn")[0]
    assert apikeys.deployment_for_key(sqlite_db, secret) is not None
    at = app_as(people["ops"], page="pages/deployment.py")
    open_tab(at, "API keys")
    at.button(key=f"dep_revoke_{key.id}").click()
    at.run()
    no_exceptions(at)
    assert apikeys.deployment_for_key(sqlite_db, secret) is None


def test_the_try_it_form_is_built_from_the_input_schema_and_logs_the_prediction(people, world, sqlite_db):
    at = app_as(people["data_scientist"], page="pages/deployment.py")
    open_tab(at, "Try it")
    assert by_label(at.selectbox, "contract").options  # a category column becomes a choice of its categories
    by_label(at.number_input, "tenure_months").set_value(3)
    at.button(key="FormSubmitter:dep_try-Predict").click()
    at.run()
    no_exceptions(at)
    assert "Prediction:" in texts(at)
    assert any(p.source == "ui" for p in predictions.recent_predictions(sqlite_db, deployment_name="churn"))


def test_ops_score_a_registered_dataset_version_and_download_the_scored_file(people, world, sqlite_db):
    """Batch scoring of a dataset version (issue 16): picked on the page, streamed by the worker, both downloads."""
    from tests.services.experiments_world import run_jobs

    w, _ = world
    at = app_as(people["ops"], page="pages/deployment.py")
    open_tab(at, "Labels & batch scoring")
    by_label(at.radio, "What to score").set_value("A registered dataset version")
    at.run()
    no_exceptions(at)
    picked = by_label(at.selectbox, "Dataset version")
    assert picked.value.id == w.dataset_version_id and "customers@v1" in picked.format_func(picked.value)
    at.button(key="dep_batch_version_go").click()
    at.run()
    no_exceptions(at)
    assert at.session_state["dep_batch_job"]
    assert run_jobs(sqlite_db) == ["finished"]
    at.run()
    no_exceptions(at)
    assert "Scored 200 rows" in texts(at)
    labels = {b.label for b in at.get("download_button")}
    assert {"Download scored file (CSV)", "Download scored file (Parquet)"} <= labels
