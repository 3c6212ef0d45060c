"""The dataset registry on SQLite and Postgres: versions, dedup by content, trainability, waivers,
schemas, diffs, audit and scheduled ingestion."""

import io

import pandas as pd
import pytest

from mlops_core import artifacts
from mlops_core.demo.customers import make_customers
from mlops_core.errors import NotFound, PermissionDenied, ValidationError
from mlops_core.services import audit, datasets


@pytest.fixture
def dan(people):
    return people["data_engineer"]


def _frame(n=200, seed=1, drift=0.0):
    return make_customers(n, seed=seed, drift=drift)


def _negative_charges(frame):
    bad = frame.copy()
    bad.loc[:4, "monthly_charges"] = -5.0
    return bad


def test_a_first_version_is_validated_with_an_inferred_schema_and_a_stored_profile(db, dan):
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    assert (v.ref, v.status, v.n_rows, v.n_cols, v.created_by) == ("customers@v1", "validated", 200, 11, "dan")
    assert artifacts.exists(v.artifact_key) and v.artifact_key.endswith(f"{v.content_hash}.parquet")
    schema = datasets.current_schema(db, v.dataset_id)
    by_name = {c["name"]: c for c in schema.columns}
    assert by_name["contract"]["type"] == "category"
    assert set(by_name["contract"]["categories"]) == {"month-to-month", "one-year", "two-year"}
    assert by_name["monthly_charges"]["min"] == 0
    profile = datasets.get_profile(db, v.id)
    charges = next(c for c in profile.columns if c.name == "monthly_charges")
    assert charges.chart.kind == "histogram" and sum(charges.chart.y) == 200
    assert datasets.load_frame(db, v.id).shape == (200, 11)


def test_the_same_content_twice_is_the_same_version(db, dan):
    frame = _frame()
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=frame)
    again = datasets.register_version_from_upload(
        db,
        actor=dan,
        dataset_name="customers",
        fileobj=io.BytesIO(frame.to_csv(index=False).encode()),
        filename="customers.csv",
    )
    assert again.id == v1.id and again.deduplicated
    assert [v.version for v in datasets.list_versions(db, v1.dataset_id)] == [1]


def test_new_content_becomes_the_next_version_with_its_parent(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(seed=1))
    v2 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(seed=2))
    assert (v2.version, v2.parent_id) == (2, v1.id)
    assert datasets.resolve_ref(db, "customers@v2").id == v2.id
    assert datasets.resolve_ref(db, "customers").id == v2.id
    with pytest.raises(NotFound, match="has no version v9; it has: v1, v2"):
        datasets.resolve_ref(db, "customers@v9")


def test_only_validated_or_waived_versions_are_offered_for_training(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    bad = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=_negative_charges(_frame(seed=3))
    )
    assert bad.status == "failed" and bad.n_errors >= 1
    assert not datasets.is_trainable(bad)
    assert [v.id for v in datasets.trainable_versions(db)] == [v1.id]
    assert datasets.latest_trainable_version(db, v1.dataset_id).id == v1.id

    waived = datasets.waive_version(
        db, actor=dan, version_id=bad.id, reason="negative charges are refunds, confirmed with billing"
    )
    assert waived.status == "waived" and waived.waived_by == "dan"
    assert {v.id for v in datasets.trainable_versions(db)} == {v1.id, bad.id}
    assert datasets.latest_trainable_version(db, v1.dataset_id).id == bad.id
    events = audit.list_events(db, actor=dan, action="dataset.version.waive").events
    assert events and "refunds" in events[0].after["reason"]


def test_a_waiver_needs_a_reason_and_the_approve_role(db, people, dan):
    datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    bad = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=_negative_charges(_frame(seed=3))
    )
    with pytest.raises(ValidationError, match="needs a reason"):
        datasets.waive_version(db, actor=dan, version_id=bad.id, reason="ok")
    with pytest.raises(PermissionDenied, match="sara"):
        datasets.waive_version(db, actor=people["data_scientist"], version_id=bad.id, reason="looks fine to me really")
    assert datasets.get_version(db, bad.id).status == "failed"


def test_a_validated_version_cannot_be_waived(db, dan):
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    with pytest.raises(ValidationError, match="only a failed version"):
        datasets.waive_version(db, actor=dan, version_id=v.id, reason="nothing to waive here at all")


@pytest.mark.parametrize("role", ["business", "data_scientist", "ops"])
def test_other_roles_may_read_but_not_register(db, people, role):
    with pytest.raises(PermissionDenied, match=people[role].username):
        datasets.register_version_from_frame(db, actor=people[role], dataset_name="customers", frame=_frame())
    assert datasets.list_datasets(db) == []


def test_admin_may_register(db, people):
    v = datasets.register_version_from_frame(db, actor=people["admin"], dataset_name="customers", frame=_frame())
    assert v.status == "validated"


def test_registering_is_audited(db, dan):
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    actions = [e.action for e in audit.list_events(db, actor=dan, entity_type="dataset").events]
    assert "dataset.create" in actions and "dataset.version.register" in actions
    ev = audit.list_events(db, actor=dan, action="dataset.version.register").events[0]
    assert ev.actor_username == "dan" and ev.after["version_id"] == v.id


def test_editing_the_schema_makes_a_new_schema_version_used_by_later_versions(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    cols = [dict(c) for c in datasets.current_schema(db, v1.dataset_id).columns]
    for c in cols:
        if c["name"] == "monthly_charges":
            c["min"] = -200
    s2 = datasets.update_schema(db, actor=dan, dataset_id=v1.dataset_id, columns=cols, note="refunds are valid")
    assert s2.version == 2
    v2 = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=_negative_charges(_frame(seed=3))
    )
    assert v2.status == "validated"
    assert datasets.get_report(db, v2.id).schema_version == 2
    assert [s.version for s in datasets.schema_history(db, v1.dataset_id)] == [2, 1]


def test_a_bad_schema_edit_is_refused_with_a_reason(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    cols = [dict(c) for c in datasets.current_schema(db, v1.dataset_id).columns]
    cols[1]["min"], cols[1]["max"] = 100, 1
    with pytest.raises(ValidationError, match="is above max"):
        datasets.update_schema(db, actor=dan, dataset_id=v1.dataset_id, columns=cols)
    assert datasets.current_schema(db, v1.dataset_id).version == 1


def test_revalidating_after_a_schema_fix_turns_a_failed_version_valid(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame())
    bad = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=_negative_charges(_frame(seed=3))
    )
    cols = [dict(c) for c in datasets.current_schema(db, v1.dataset_id).columns]
    next(c for c in cols if c["name"] == "monthly_charges")["min"] = -10
    datasets.update_schema(db, actor=dan, dataset_id=v1.dataset_id, columns=cols)
    assert datasets.revalidate_version(db, actor=dan, version_id=bad.id).status == "validated"


def test_diff_between_versions_shows_changed_columns_and_drift(db, dan):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(n=600))
    drifted = _frame(n=600, seed=2, drift=1.0).drop(columns=["region"])
    v2 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=drifted)
    diff = datasets.diff_versions(db, from_version_id=v1.id, to_version_id=v2.id)
    changes = {r.column: r.change for r in diff.columns}
    assert changes["region"] == "removed"
    assert diff.drift.columns["monthly_charges"].drifted is True
    assert v2.status == "failed"  # region is missing


def test_a_diff_is_computed_once_per_pair_of_versions_and_served_from_memory_after(db, dan, monkeypatch):
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(n=300))
    v2 = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=_frame(n=300, seed=3, drift=1.0)
    )
    reads = []
    load = datasets._load_sample
    monkeypatch.setattr(datasets, "_load_sample", lambda key: reads.append(key) or load(key))
    first = datasets.diff_versions(db, from_version_id=v1.id, to_version_id=v2.id)
    assert len(reads) == 2 and first.drift.columns["monthly_charges"].drifted is True
    first.columns.clear()  # a caller changing its copy changes nobody else's
    again = datasets.diff_versions(db, from_version_id=v1.id, to_version_id=v2.id)
    assert len(reads) == 2  # no sample read again
    assert again.columns and again.drift == first.drift and again.rows == (300, 300)
    back = datasets.diff_versions(db, from_version_id=v2.id, to_version_id=v1.id)  # another pair: computed
    assert len(reads) == 4 and back.from_ref == again.to_ref


def test_the_dataset_list_counts_versions_and_shows_the_latest_in_a_fixed_number_of_queries(db, dan):
    from sqlalchemy import event

    for n in (1, 3):
        datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(seed=n))
    datasets.register_version_from_frame(db, actor=dan, dataset_name="accounts", frame=_frame(seed=5))
    datasets.register_version_from_frame(
        db, actor=dan, dataset_name="accounts", frame=_negative_charges(_frame(seed=5))
    )
    datasets.register_version_from_frame(db, actor=dan, dataset_name="orders", frame=_frame(seed=7))
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        listed = datasets.list_datasets(db)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len([x for x in statements if x.lstrip().upper().startswith("SELECT")]) <= 3  # not 2 per dataset
    got = {d.name: (d.n_versions, d.latest_version, d.latest_status) for d in listed}
    assert got == {"customers": (2, 2, "validated"), "accounts": (2, 2, "failed"), "orders": (1, 1, "validated")}
    assert listed == [datasets.get_dataset(db, d.id) for d in listed]


def test_exports_neutralise_formula_cells(db, dan):
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"x\")", "+1", "@cmd", "plain"], "n": [1, -2, 3, 4]})
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="notes", frame=frame)
    assert datasets.load_frame(db, v.id)["name"].tolist()[0] == "=HYPERLINK(\"x\")"  # kept as data
    text = datasets.export_csv(db, v.id).decode()
    assert "'=HYPERLINK" in text and "'+1" in text and "'@cmd" in text and "\n-2" not in text


def test_a_dataset_can_belong_to_a_use_case(db, people, dan):
    from mlops_core.services import usecases

    uc = usecases.create_use_case(
        db, actor=people["business"], title="Customer churn", problem_statement="Too many customers leave."
    )
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=_frame(), use_case_id=uc.id)
    assert v.use_case_id == uc.id
    assert [d.name for d in datasets.list_datasets(db, use_case_id=uc.id)] == ["customers"]
    assert [x.id for x in datasets.trainable_versions(db, use_case_id=uc.id)] == [v.id]
    with pytest.raises(NotFound, match="no use case"):
        datasets.register_version_from_frame(db, actor=dan, dataset_name="other", frame=_frame(), use_case_id=9999)


def test_a_failed_registration_leaves_no_dataset_row(db, dan):
    with pytest.raises(ValidationError):
        datasets.register_version_from_upload(
            db, actor=dan, dataset_name="customers", fileobj=io.BytesIO(b"a,b\n"), filename="x.csv"
        )
    assert datasets.list_datasets(db) == []


def test_scheduled_ingestion_creates_a_version_only_when_the_content_changed(db, dan, tmp_path, monkeypatch):
    from mlops_core import jobs

    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(tmp_path))
    src_file = tmp_path / "extract.csv"
    _frame(seed=1).to_csv(src_file, index=False)
    src = datasets.schedule_ingestion(
        db, actor=dan, dataset_name="customers", kind="path", location=str(src_file), interval_seconds=3600
    )
    assert any(s.name == src.schedule_name and s.kind == "ingest" for s in jobs.list_schedules(db))

    first = datasets.run_ingestion_source(db, source_id=src.id)
    same = datasets.run_ingestion_source(db, source_id=src.id)
    _frame(seed=2).to_csv(src_file, index=False)
    changed = datasets.run_ingestion_source(db, source_id=src.id)
    assert [first.status, same.status, changed.status] == ["created", "unchanged", "created"]
    assert same.version_id == first.version_id
    assert [v.version for v in datasets.list_versions(db, src.dataset_id)] == [2, 1]


def test_a_failed_ingestion_run_is_visible_with_its_error(db, dan, tmp_path, monkeypatch):
    from mlops_core.services.ingestion import run_ingestion

    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(tmp_path))
    src_file = tmp_path / "extract.csv"
    _frame().to_csv(src_file, index=False)
    src = datasets.schedule_ingestion(
        db, actor=dan, dataset_name="customers", kind="path", location=str(src_file), cron="0 * * * *"
    )
    src_file.write_bytes(b"")

    class Ctx:
        job_id, payload = 41, {"source_id": src.id}

        def __init__(self, db):
            self.db = db

        def progress(self, fraction, message):
            pass

        def check_cancelled(self):
            pass

    with pytest.raises(ValidationError, match="empty"):
        run_ingestion(Ctx(db))
    runs = datasets.list_ingestion_runs(db, src.id)
    assert runs[0].status == "failed" and "empty" in runs[0].error and runs[0].job_id == 41
    assert datasets.list_ingestion_sources(db, src.dataset_id)[0].last_status == "failed"


def test_scheduling_ingestion_needs_the_role_and_an_allowed_path(db, people, dan, tmp_path):
    with pytest.raises(PermissionDenied):
        datasets.schedule_ingestion(
            db, actor=people["ops"], dataset_name="x", kind="path", location="/etc/passwd", interval_seconds=3600
        )
    with pytest.raises(ValidationError, match="outside the folders"):
        datasets.schedule_ingestion(
            db, actor=dan, dataset_name="x", kind="path", location="/etc/passwd", interval_seconds=3600
        )


def test_sql_sources_read_a_configured_connection(db, dan, tmp_path, monkeypatch):
    import json
    import sqlite3

    warehouse = tmp_path / "warehouse.db"
    con = sqlite3.connect(warehouse)
    _frame().to_sql("customers", con, index=False)
    con.close()
    monkeypatch.setenv("MLOPS_SQL_CONNECTIONS", json.dumps({"warehouse": f"sqlite:///{warehouse}"}))
    v = datasets.register_version_from_sql(
        db, actor=dan, dataset_name="customers", connection="warehouse", query="SELECT * FROM customers WHERE age >= 18"
    )
    assert v.n_rows == 200 and v.source.startswith("sql:warehouse")
    with pytest.raises(ValidationError, match="read-only query"):
        datasets.register_version_from_sql(
            db, actor=dan, dataset_name="customers", connection="warehouse", query="DELETE FROM customers"
        )
    with pytest.raises(ValidationError, match="unknown SQL connection"):
        datasets.register_version_from_sql(db, actor=dan, dataset_name="customers", connection="nope", query="SELECT 1")
