"""Issue 18 in the UI: a sign-off requested with the use case report attached shows the approver a download of
exactly that report; the use case's chat webhook screen (owner/business)."""

import pytest

from mlops_core.services import collab, signoff_report
from mlops_core.services import usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


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
