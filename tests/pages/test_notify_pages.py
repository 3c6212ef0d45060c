"""Issue 18 in the UI: notification settings on My account (a malformed address refused), the Watch button
and the report download on a use case page, and the admins' delivery log."""

import pytest

from mlops_core.services import collab, subscriptions, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_settings_watch_button_and_delivery_log(sqlite_db, people):
    sara = people["data_scientist"]
    at = app_as(sara, "pages/account.py")
    no_exceptions(at)
    by_label(at.text_input, "Email address").set_value("sara@")
    at.button(key="FormSubmitter:notify_settings-Save notification settings").click()
    at.run()
    assert "not an email address" in texts(at)
    assert subscriptions.get_notification_settings(sqlite_db, actor=sara).email is None
    by_label(at.text_input, "Email address").set_value("sara@example.com")
    at.button(key="FormSubmitter:notify_settings-Save notification settings").click()
    at.run()
    assert "Notification settings saved." in texts(at)
    assert subscriptions.get_notification_settings(sqlite_db, actor=sara).email == "sara@example.com"

    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Churn")
    at.switch_page("pages/use_case.py")
    at.query_params["id"] = str(uc.id)
    at.run()
    no_exceptions(at)
    at.button(key=f"watch_use_case_{uc.id}").click()
    at.run()
    assert subscriptions.is_watching(sqlite_db, actor=sara, entity_type="use_case", entity_id=uc.id)
    assert at.button(key=f"watch_use_case_{uc.id}").label == "Unwatch"
    assert any("Download report" in str(el.proto) for el in at.get("download_button"))

    from tests.services.monitoring_world import make_world

    w = make_world(sqlite_db, people)  # a served model: the lineage tab draws its graph
    at.query_params["id"] = str(w.use_case_id)
    at.run()
    no_exceptions(at)
    assert "Lineage" in texts(at) and len(at.get("plotly_chart")) >= 1

    # a model version has its discussion too: a comment with a mention reaches the inbox
    at.switch_page("pages/models.py")
    at.query_params["id"] = str(w.model_version_id)
    at.run()
    no_exceptions(at)
    at.text_area(key=f"disc_model_version_{w.model_version_id}_text").set_value("@omar is v1 ready?")
    at.button(key=f"FormSubmitter:disc_model_version_{w.model_version_id}_new-Post comment").click()
    at.run()
    no_exceptions(at)
    assert collab.list_comments(sqlite_db, entity_type="model_version", entity_id=w.model_version_id)[0].mentions == [
        "omar"
    ]

    admin = app_as(people["admin"], "pages/admin_users.py")
    no_exceptions(admin)
    assert "Notification delivery log" in texts(admin)
