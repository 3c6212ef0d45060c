"""Issue 18 in the UI: a sign-off requested with the use case report attached shows the approver a download of
exactly that report; the use case's chat webhook screen (owner/business)."""

import pytest

from mlops_core.services import collab, signoff_report, subscriptions
from mlops_core.services import usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_a_signoff_with_the_report_attached_offers_that_report(sqlite_db, people):
    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Churn", problem_statement="Keep them")
    at = app_as(people["data_scientist"], "pages/use_case.py")
    at.query_params["id"] = str(uc.id)
    at.run()
    no_exceptions(at)
    base = f"so_use_case_{uc.id}"
    at.checkbox(key=f"{base}_report").check()
    at.button(key=f"FormSubmitter:{base}_request-Request sign-off").click()
    at.run()
    no_exceptions(at)
    (so,) = collab.signoffs_for(sqlite_db, "use_case", uc.id)
    entry = signoff_report.attached(so)
    assert entry is not None and entry["use_case_id"] == uc.id

    # the approver's card offers the stored report (its bytes are the hashed ones)
    approver = app_as(people["business"], "pages/use_case.py")
    approver.query_params["id"] = str(uc.id)
    approver.run()
    no_exceptions(approver)
    buttons = [b for b in approver.get("download_button") if "Attached use case report" in str(b.proto)]
    assert len(buttons) == 1 and entry["sha256"] in str(buttons[0].proto)
    assert b"Keep them" in signoff_report.report_bytes(so)


def test_the_use_case_chat_webhook_screen(sqlite_db, people):
    uc = usecases.create_use_case(sqlite_db, actor=people["business"], title="Churn")
    key = f"uc_hook_{uc.id}"
    at = app_as(people["business"], "pages/use_case.py")
    at.query_params["id"] = str(uc.id)
    at.run()
    no_exceptions(at)
    assert "No chat webhook" in texts(at)
    at.text_input(key=f"{key}_url").set_value("not a url")
    at.button(key=f"FormSubmitter:{key}-Save chat webhook").click()
    at.run()
    assert "is not a webhook URL" in texts(at)  # refused when saved
    assert subscriptions.get_use_case_webhook(sqlite_db, actor=people["business"], use_case_id=uc.id) is None
    at.text_input(key=f"{key}_url").set_value("https://hooks.example.com/T1/B2")
    at.radio(key=f"{key}_flavor").set_value("teams")
    at.button(key=f"FormSubmitter:{key}-Save chat webhook").click()
    at.run()
    no_exceptions(at)
    assert "Chat webhook saved." in texts(at) and "Microsoft Teams-compatible webhook" in texts(at)
    assert subscriptions.get_use_case_webhook(sqlite_db, actor=people["business"], use_case_id=uc.id) == {
        "url": "https://hooks.example.com/T1/B2",
        "flavor": "teams",
    }

    # a data scientist reads that there is one, without the URL (a credential), and gets no form
    ds = app_as(people["data_scientist"], "pages/use_case.py")
    ds.query_params["id"] = str(uc.id)
    ds.run()
    no_exceptions(ds)
    assert "Microsoft Teams-compatible webhook." in texts(ds) and "hooks.example.com" not in texts(ds)
    assert not [b for b in ds.get("button") if "Save chat webhook" in str(b.proto)]

    # emptied and saved: removed
    at.text_input(key=f"{key}_url").set_value("")
    at.button(key=f"FormSubmitter:{key}-Save chat webhook").click()
    at.run()
    assert "Chat webhook removed." in texts(at) and "No chat webhook" in texts(at)
