"""Use cases, lifecycle, optimistic locking and KPI contracts, on SQLite and Postgres."""

import pytest

from mlops_core import kpi
from mlops_core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mlops_core.services import audit, usecases
from mlops_core.services.overview import workspace_overview


def _churn(db, people, **kw):
    args = dict(
        title="Customer churn",
        problem_statement="Customers leave",
        objectives="Keep them",
        tags=["retention", "b2c"],
        members={"data_scientist": ["sara"], "ops": ["omar"]},
    )
    args.update(kw)
    return usecases.create_use_case(db, actor=people["business"], **args)


def test_business_creates_a_use_case_that_starts_proposed_and_owned_by_them(db, people):
    uc = _churn(db, people, priority="high", target_date="2027-03-31")
    got = usecases.get_use_case(db, actor=people["ops"], use_case_id=uc.id)
    assert (got.title, got.status, got.owner_username, got.priority) == ("Customer churn", "proposed", "alice", "high")
    assert got.tags == ["retention", "b2c"] and got.version == 1
    assert {(m.role, m.username) for m in got.members} == {("data_scientist", "sara"), ("ops", "omar")}
    assert str(got.target_date) == "2027-03-31"


def test_other_roles_may_not_create_use_cases(db, people):
    for role in ("data_engineer", "data_scientist", "ops"):
        with pytest.raises(PermissionDenied, match="business"):
            usecases.create_use_case(db, actor=people[role], title="Customer churn")
    assert usecases.list_use_cases(db).total == 0


def test_every_use_case_and_kpi_write_leaves_an_audit_event(db, people):
    uc = _churn(db, people)
    k = usecases.add_kpi(
        db, actor=people["business"], use_case_id=uc.id, kind="business", name="Churn", direction="<=", target=6
    )
    usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value=7, measured_on="2026-01-01")
    usecases.update_kpi(db, actor=people["business"], kpi_id=k.id, target=5.5)
    usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="approved")
    usecases.delete_kpi(db, actor=people["admin"], kpi_id=k.id)
    events = audit.list_events(db, actor=people["ops"], entity_type="use_case", entity_id=str(uc.id)).events
    assert {e.action for e in events} == {
        "usecase.create",
        "kpi.create",
        "kpi.reading",
        "kpi.update",
        "usecase.transition",
        "kpi.delete",
    }
    assert usecases.list_kpis(db, uc.id) == []


def test_a_use_case_needs_a_title_and_a_unique_one(db, people):
    with pytest.raises(ValidationError, match="title is empty"):
        usecases.create_use_case(db, actor=people["business"], title="  ")
    _churn(db, people)
    with pytest.raises(Conflict, match="already exists"):
        usecases.create_use_case(db, actor=people["admin"], title="customer CHURN")


def test_unknown_owner_or_team_member_is_refused_naming_the_users(db, people):
    with pytest.raises(ValidationError, match="no active user 'mallory'.*alice"):
        _churn(db, people, owner_username="mallory")
    with pytest.raises(ValidationError, match="unknown team role 'wizard'"):
        _churn(db, people, members={"wizard": ["sara"]})


def test_lifecycle_moves_one_step_and_records_who_and_when(db, people):
    uc = _churn(db, people)
    for status in ("approved", "data", "experimentation", "deployed", "monitored"):
        uc = usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status=status)
    # a step back for retraining
    uc = usecases.transition_use_case(
        db, actor=people["admin"], use_case_id=uc.id, to_status="experimentation", note="retrain on fresh data"
    )
    hist = usecases.history(db, use_case_id=uc.id)
    assert [h.to_status for h in hist] == [
        "proposed",
        "approved",
        "data",
        "experimentation",
        "deployed",
        "monitored",
        "experimentation",
    ]
    assert hist[-1].by_username == "admin" and hist[-1].from_status == "monitored"
    assert hist[-1].note == "retrain on fresh data" and hist[-1].at is not None


def test_an_illegal_jump_is_refused_naming_the_allowed_moves(db, people):
    uc = _churn(db, people)
    with pytest.raises(ValidationError, match="cannot move from proposed to deployed.*approved, retired"):
        usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="deployed")
    assert usecases.get_use_case(db, use_case_id=uc.id).status == "proposed"


def test_any_stage_can_be_retired_and_a_retired_one_proposed_again(db, people):
    uc = _churn(db, people)
    usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="approved")
    uc = usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="retired")
    assert uc.status == "retired"
    with pytest.raises(ValidationError, match="can move to: proposed"):
        usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="data")


def test_unknown_status_lists_the_lifecycle(db, people):
    uc = _churn(db, people)
    with pytest.raises(ValidationError, match="proposed → approved → data"):
        usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="shipped")


def test_a_stale_save_gets_a_changed_by_whom_and_when_message_and_does_not_overwrite(db, people):
    uc = _churn(db, people)
    first = usecases.update_use_case(
        db, actor=people["admin"], use_case_id=uc.id, expected_version=uc.version, objectives="Cut churn by a third"
    )
    assert first.version == uc.version + 1 and first.updated_by == "admin"
    with pytest.raises(Conflict, match=r"changed by admin at \d{4}-\d\d-\d\d .*reload"):
        usecases.update_use_case(
            db, actor=people["business"], use_case_id=uc.id, expected_version=uc.version, objectives="Something else"
        )
    assert usecases.get_use_case(db, use_case_id=uc.id).objectives == "Cut churn by a third"


def test_edits_change_tags_members_and_owner_and_are_audited_with_before_and_after(db, people):
    uc = _churn(db, people)
    new = usecases.update_use_case(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        expected_version=1,
        tags="Retention, churn",
        members={"data_engineer": ["dan"]},
        owner_username="admin",
    )
    assert new.tags == ["retention", "churn"] and [m.username for m in new.members] == ["dan"]
    assert new.owner_username == "admin"
    ev = audit.list_events(db, actor=people["admin"], action="usecase.update").events[0]
    assert ev.before["owner"] == "alice" and ev.after["owner"] == "admin"
    assert audit.list_events(db, actor=people["admin"], action="usecase.create").total == 1


def test_portfolio_filters_by_owner_status_and_tag_and_paginates_in_sql(db, people):
    for i in range(5):
        usecases.create_use_case(
            db, actor=people["business"], title=f"Case {i}", tags=["even" if i % 2 == 0 else "odd"]
        )
    usecases.create_use_case(db, actor=people["admin"], title="Admin's case")
    usecases.transition_use_case(db, actor=people["business"], use_case_id=1, to_status="approved")
    assert usecases.list_use_cases(db, owner="alice").total == 5
    assert usecases.list_use_cases(db, status="approved").total == 1
    assert usecases.list_use_cases(db, tag="even").total == 3
    page1 = usecases.list_use_cases(db, limit=4)
    page2 = usecases.list_use_cases(db, limit=4, offset=4)
    assert page1.total == 6 and len(page1.items) == 4 and len(page2.items) == 2
    assert page1.by_status["proposed"] == 5 and page1.by_status["approved"] == 1
    assert {u.id for u in page1.items}.isdisjoint({u.id for u in page2.items})
    assert page1.items[-1].status == "proposed"  # ordered by lifecycle stage first
    assert usecases.filter_choices(db)["owner"] == ["admin", "alice"]


def test_model_and_business_kpis_are_stored_and_listed(db, people):
    uc = _churn(db, people)
    rec = usecases.add_kpi(
        db, actor=people["business"], use_case_id=uc.id, kind="model", metric="Recall", target="0.75", warning=0.05
    )
    usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="roc_auc", target=0.8)
    churn = usecases.add_kpi(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        kind="business",
        name="Monthly churn rate",
        unit="%",
        baseline=8.5,
        target=6.0,
        direction="≤",
    )
    assert (rec.metric, rec.direction, rec.target, rec.warning) == ("recall", ">=", 0.75, 0.05)
    assert churn.direction == "<=" and churn.label == "Monthly churn rate <= 6 %"
    assert [k.metric for k in usecases.model_kpis(db, uc.id)] == ["recall", "roc_auc"]
    assert len(usecases.get_use_case(db, use_case_id=uc.id).kpis) == 3


def test_kpi_with_an_unknown_metric_is_refused_listing_the_known_ones(db, people):
    uc = _churn(db, people)
    with pytest.raises(ValidationError, match="unknown metric 'recal'.*accuracy.*recall.*roc_auc"):
        usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="recal", target=0.7)


def test_kpi_without_a_target_is_refused(db, people):
    uc = _churn(db, people)
    with pytest.raises(ValidationError, match="target .* is missing"):
        usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="f1", target=None)
    with pytest.raises(ValidationError, match="must be a number"):
        usecases.add_kpi(
            db, actor=people["business"], use_case_id=uc.id, kind="business", name="NPS", direction=">=", target="lots"
        )
    assert usecases.list_kpis(db, uc.id) == []


def test_business_readings_are_kept_in_date_order_and_non_numbers_are_refused(db, people):
    uc = _churn(db, people)
    k = usecases.add_kpi(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        kind="business",
        name="Churn",
        direction="<=",
        target=6,
        baseline=8.5,
        unit="%",
    )
    usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value=8.1, measured_on="2026-02-01", note="Feb")
    usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value="7,6", measured_on="2026-03-01")
    usecases.add_reading(db, actor=people["admin"], kpi_id=k.id, value=8.4, measured_on="2026-01-01")
    with pytest.raises(ValidationError, match="must be a number, got 'eight'"):
        usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value="eight", measured_on="2026-04-01")
    rs = usecases.list_readings(db, k.id)
    assert [(str(r.measured_on), r.value) for r in rs] == [
        ("2026-01-01", 8.4),
        ("2026-02-01", 8.1),
        ("2026-03-01", 7.6),
    ]
    assert rs[1].note == "Feb" and rs[0].by_username == "admin"
    assert usecases.latest_readings(db, [k.id]) == {k.id: 7.6}


def test_model_kpis_take_no_hand_entered_readings(db, people):
    uc = _churn(db, people)
    k = usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="recall", target=0.7)
    with pytest.raises(ValidationError, match="measured from runs"):
        usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value=0.8)


def test_only_business_and_admin_define_kpis_and_enter_readings(db, people):
    uc = _churn(db, people)
    for role in ("data_scientist", "ops", "data_engineer"):
        with pytest.raises(PermissionDenied):
            usecases.add_kpi(db, actor=people[role], use_case_id=uc.id, kind="model", metric="f1", target=0.5)
    k = usecases.add_kpi(
        db, actor=people["admin"], use_case_id=uc.id, kind="business", name="Churn", direction="<=", target=6
    )
    with pytest.raises(PermissionDenied, match="enter KPI readings"):
        usecases.add_reading(db, actor=people["data_scientist"], kpi_id=k.id, value=5)


def test_evaluate_metrics_checks_each_model_kpi_with_its_warning_band(db, people):
    uc = _churn(db, people)
    usecases.add_kpi(
        db, actor=people["business"], use_case_id=uc.id, kind="model", metric="recall", target=0.75, warning=0.05
    )
    usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="roc_auc", target=0.8)
    usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="rmse", target=2.0)
    checks = usecases.evaluate_metrics(db, uc.id, {"recall": 0.72, "test_roc_auc": 0.85})
    assert [(c.kpi.metric, c.value, c.status) for c in checks] == [
        ("recall", 0.72, "warning"),
        ("roc_auc", 0.85, "met"),
        ("rmse", None, "unknown"),
    ]


def test_kpi_status_says_unknown_for_a_model_kpi_with_no_finished_run(db, people):
    uc = _churn(db, people)
    usecases.add_kpi(db, actor=people["business"], use_case_id=uc.id, kind="model", metric="recall", target=0.75)
    k = usecases.add_kpi(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        kind="business",
        name="Churn",
        direction="<=",
        target=6,
        warning=1,
    )
    usecases.add_reading(db, actor=people["business"], kpi_id=k.id, value=6.5, measured_on="2026-01-01")
    checks = usecases.kpi_status(db, usecases.get_use_case(db, use_case_id=uc.id))
    by_name = {c.kpi.name: c for c in checks}
    assert by_name["Churn"].status == "warning"
    assert by_name["recall"].status == "unknown", "no run has finished, so the model KPI has no value yet"


def test_member_usernames_lists_the_team_by_role(db, people):
    uc = _churn(db, people)
    assert usecases.member_usernames(db, uc.id) == ["omar", "sara"]
    assert usecases.member_usernames(db, uc.id, roles=("ops",)) == ["omar"]
    assert usecases.member_usernames(db, uc.id, roles=("business",)) == ["alice"]


def test_note_stage_reached_moves_forward_one_step_only(db, people):
    uc = _churn(db, people)
    with db.unit_of_work() as s:
        assert not usecases.note_stage_reached(s, actor=people["data_engineer"], use_case_id=uc.id, status="data")
    usecases.transition_use_case(db, actor=people["business"], use_case_id=uc.id, to_status="approved")
    with db.unit_of_work() as s:
        assert usecases.note_stage_reached(s, actor=people["data_engineer"], use_case_id=uc.id, status="data")
    assert usecases.get_use_case(db, use_case_id=uc.id).status == "data"
    assert usecases.history(db, use_case_id=uc.id)[-1].by_username == "dan"


def test_resolve_use_case_by_id_or_title_says_which_exist(db, people):
    uc = _churn(db, people)
    assert usecases.resolve_use_case(db, "customer churn").id == uc.id
    assert usecases.resolve_use_case(db, str(uc.id)).title == "Customer churn"
    with pytest.raises(NotFound, match="known use cases: Customer churn"):
        usecases.resolve_use_case(db, "Nope")


def test_home_counters_count_use_cases_from_the_database(db, people):
    _churn(db, people)
    counts = {(s, lbl): n for s, lbl, n in workspace_overview(db, actor=people["ops"]).counts}
    assert counts[("Use cases", "use cases")] == 1


@pytest.mark.parametrize(
    "direction,target,warning,value,expected",
    [
        (">=", 0.8, 0.05, 0.81, "met"),
        (">=", 0.8, 0.05, 0.8, "met"),
        (">=", 0.8, 0.05, 0.76, "warning"),
        (">=", 0.8, 0.05, 0.74, "missed"),
        (">=", 0.8, None, 0.79, "missed"),
        ("<=", 6, 1, 6.8, "warning"),
        ("<=", 6, 1, 7.2, "missed"),
        ("<=", 6, 1, 5, "met"),
        (">=", 0.8, 0.05, None, "unknown"),
    ],
)
def test_kpi_evaluate_follows_the_warning_band_contract(direction, target, warning, value, expected):
    assert kpi.evaluate(direction, target, warning, value) == expected
