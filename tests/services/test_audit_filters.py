"""The Activity page's filters at the service layer (issue 15, admin): a date range read in SQL, login
events by name, the readable before/after and the CSV export of exactly the filtered rows."""

import csv
import io
from datetime import UTC, datetime, timedelta

from mlops_core.models.audit import AuditEvent
from mlops_core.services import audit

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def _add(db, at: datetime, action: str, entity_type: str = "dataset", summary: str = "", before=None, after=None):
    with db.unit_of_work() as s:
        s.add(
            AuditEvent(
                at=at,
                actor_username="dan",
                action=action,
                entity_type=entity_type,
                entity_id="1",
                summary=summary or action,
                before=before,
                after=after,
            )
        )


def test_date_range_is_inclusive_of_since_and_exclusive_of_until_and_combines_with_other_filters(db, people):
    _add(db, DAY - timedelta(seconds=1), "dataset.version.register", summary="the evening before")
    _add(db, DAY, "dataset.version.register", summary="midnight")
    _add(db, DAY + timedelta(hours=23, minutes=59, seconds=59), "dataset.version.waive", summary="last second")
    _add(db, DAY + timedelta(days=1), "dataset.version.register", summary="next midnight")
    page = audit.list_events(db, actor=people["ops"], since=DAY, until=DAY + timedelta(days=1))
    assert [e.summary for e in page.events] == ["last second", "midnight"] and page.total == 2
    assert audit.list_events(db, actor=people["ops"], since=DAY, action="dataset.version.reg").total == 2
    assert audit.list_events(db, actor=people["ops"], until=DAY).total == 1


def test_logins_filter_finds_every_kind_of_login_attempt_and_nothing_else(db, people):
    for action in ("user.login", "user.login_failed", "user.login_locked", "user.create"):
        _add(db, DAY, action, entity_type="login" if "login" in action else "user")
    found = audit.list_events(db, actor=people["admin"], actions=audit.LOGIN_ACTIONS)
    assert sorted(e.action for e in found.events) == ["user.login", "user.login_failed", "user.login_locked"]


def test_csv_export_has_the_filtered_rows_with_changes_in_words_and_defuses_formulas(db, people):
    _add(db, DAY, "user.set_role", "user", summary="=HYPERLINK(1)", before={"role": "ops"}, after={"role": "admin"})
    _add(db, DAY - timedelta(days=3), "user.create", "user", summary="too old")
    text = audit.export_csv(db, actor=people["admin"], since=DAY, until=DAY + timedelta(days=1))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert rows[0]["changes"] == "role: ops → admin"
    assert rows[0]["summary"] == "'=HYPERLINK(1)"
    assert rows[0]["when (UTC)"] == "2026-03-10 00:00:00"


def test_describe_changes_says_what_changed_in_words():
    assert audit.describe_changes({"role": "ops", "active": True}, {"role": "admin", "active": True}) == [
        "role: ops → admin"
    ]
    assert audit.describe_changes(None, {"name": "churn", "rows": 1200}) == ["name: churn", "rows: 1200"]
    assert audit.describe_changes({"note_text": "x", "ok": False}, {"ok": True}) == [
        "note text: x → (removed)",
        "ok: no → yes",
    ]
