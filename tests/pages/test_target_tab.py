"""The Deployment page's "Target & bundle" tab (issue 19) through AppTest, on an empty deployment: ops set the
target and owner, create an upload key shown once, and see the copyable "download and run this" commands and
the target's health; a business user sees them without the controls."""

import pytest

from mlops_core.services import deployments, targets
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    people = make_people(sqlite_db)
    deployments.create_deployment(sqlite_db, actor=people["ops"], name="wine-edge", environment="production")
    return people


def _tab(actor):
    at = app_as(actor, "pages/deployment.py")
    at.session_state["dep_tab"] = "Target & bundle"
    at.run()
    no_exceptions(at)
    return at


def test_ops_set_a_bundle_target_and_create_an_upload_key(people, sqlite_db):
    at = _tab(people["ops"])
    assert "Health:" in texts(at) and "never" in texts(at)
    assert any("python -m mlops_bundle_server" in c.value for c in at.code)
    by_label(at.selectbox, "Runs on").set_value("bundle")
    by_label(at.text_input, "Owner (told when the version to run changes)").set_value("sara")
    by_label(at.button, "Save target").click()
    at.run()
    no_exceptions(at)
    t = targets.get_target(sqlite_db, "wine-edge")
    assert (t.target, t.owner) == ("bundle", "sara")
    by_label(at.text_input, "Where the bundle runs").set_value("edge eu-1")
    by_label(at.button, "Create upload key").click()
    at.run()
    no_exceptions(at)
    keys = targets.list_upload_keys(sqlite_db, deployment_name="wine-edge")
    assert len(keys) == 1 and any(c.value.startswith("mlu_") for c in at.code)


def test_a_business_user_sees_the_target_without_controls(people):
    at = _tab(people["business"])
    assert "Target" in texts(at)
    assert not [b for b in at.button if b.label in ("Save target", "Create upload key", "Build the bundle")]


def test_the_deployments_overview_says_where_each_deployment_runs(people, sqlite_db):
    deployments.create_deployment(sqlite_db, actor=people["ops"], name="churn-hub", environment="staging")
    targets.set_target(sqlite_db, actor=people["ops"], deployment_name="wine-edge", target="bundle")
    at = app_as(people["ops"], "pages/deployments.py")
    no_exceptions(at)
    captions = [c.value for c in at.caption]
    assert any("runs as a bundle, last upload never" in c for c in captions), captions
    assert any("runs on the Hub" in c for c in captions)
