"""Activity (issue 15, admin): a date range and a Logins filter, changes in words, and a CSV of the
filtered rows."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from streamlit.delta_generator import DeltaGenerator

from mlops_core.models.audit import AuditEvent
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def _add(db, at, action, entity_type, summary, before=None, after=None):
    with db.unit_of_work() as s:
        s.add(
            AuditEvent(
                at=at,
                actor_username="admin",
                action=action,
                entity_type=entity_type,
                entity_id="x",
                summary=summary,
                before=before,
                after=after,
            )
        )


def test_activity_filters_by_dates_and_logins_shows_changes_in_words_and_exports_the_filtered_rows(
    sqlite_db, people, monkeypatch
):
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    _add(sqlite_db, day, "user.set_role", "user", "role of sara changed", {"role": "ops"}, {"role": "admin"})
    _add(sqlite_db, day, "user.login_failed", "login", "failed login for sara")
    _add(sqlite_db, day - timedelta(days=5), "user.login", "login", "logged in, long ago")
    exports = []

    def fake_download(self, label, data, **kw):  # the CSV is built when clicked: call it as a click would
        exports.append((label, kw.get("file_name"), data() if callable(data) else data))
        return False

    monkeypatch.setattr(DeltaGenerator, "download_button", fake_download)
    at = app_as(people["admin"], "pages/activity.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert len(table) == 3
    assert "role: ops → admin" in set(table["changes"])

    by_label(at.radio, "Show").set_value("Logins").run()
    no_exceptions(at)
    assert sorted(at.dataframe[0].value["summary"]) == ["failed login for sara", "logged in, long ago"]

    by_label(at.date_input, "Dates (UTC, both days included)").set_value((date(2026, 3, 9), date(2026, 3, 10))).run()
    no_exceptions(at)
    assert list(at.dataframe[0].value["summary"]) == ["failed login for sara"]

    label, file_name, text = exports[-1]
    assert label == "Download CSV" and file_name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["summary"] for r in rows] == ["failed login for sara"]
    assert rows[0]["action"] == "user.login_failed"
