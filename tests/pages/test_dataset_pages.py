"""The Datasets and Dataset pages through AppTest: what each role sees and can do.

(File uploads are driven in the browser test: AppTest cannot fill a file_uploader.)"""

import re

import pytest

from mlops_core.demo.customers import make_customers
from mlops_core.services import datasets
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts  # noqa: F401


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


@pytest.fixture
def customers(sqlite_db, people):
    dan = people["data_engineer"]
    v1 = datasets.register_version_from_frame(
        sqlite_db, actor=dan, dataset_name="customers", frame=make_customers(300, seed=1)
    )
    bad = make_customers(300, seed=2)
    bad.loc[:3, "monthly_charges"] = -9.5
    v2 = datasets.register_version_from_frame(sqlite_db, actor=dan, dataset_name="customers", frame=bad)
    return v1, v2


def _dataset_page(actor, version=None):
    at = app_as(actor, page="pages/dataset.py")
    if version is not None:
        by_label(at.selectbox, "Version").select(version.id)
        at.run()
    return at


def test_the_list_shows_each_dataset_with_its_latest_status(people, customers):
    at = app_as(people["business"], page="pages/datasets.py")
    no_exceptions(at)
    page = texts(at)
    assert re.search(r"2 versions · latest v2 · \S*\[:material/\w+: failed\]", page)  # a badge saying "failed"
    assert "Only data engineers (and admins) add data" in page
    assert not at.tabs  # no "Add data" forms for business users


def test_a_data_engineer_registers_a_server_file_and_sees_the_result(people, sqlite_db, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(tmp_path))
    path = tmp_path / "extract.csv"
    make_customers(200, seed=3).to_csv(path, index=False)
    at = app_as(people["data_engineer"], page="pages/datasets.py")
    no_exceptions(at)
    at.text_input(key="path_name").input("fresh")
    at.text_input(key="path_path").input(str(path))
    at.button(key="FormSubmitter:ds_path-Register and validate").click()
    at.run()
    no_exceptions(at)
    assert re.search(r"Registered fresh@v1: 200 rows × 11 columns — \S*\[:material/\w+: validated\]", texts(at))
    assert datasets.resolve_ref(sqlite_db, "fresh@v1").n_rows == 200


def test_a_refused_registration_says_why_at_once_and_drops_the_link_to_an_earlier_one(
    people, sqlite_db, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(tmp_path))
    good = tmp_path / "extract.csv"
    make_customers(50, seed=3).to_csv(good, index=False)
    at = app_as(people["data_engineer"], page="pages/datasets.py")
    at.text_input(key="path_name").input("fresh")
    at.text_input(key="path_path").input(str(good))
    at.button(key="FormSubmitter:ds_path-Register and validate").click()
    at.run()
    stored = datasets.resolve_ref(sqlite_db, "fresh@v1")
    [link] = [link for link in at.page_link if "which you just registered" in link.value]
    assert link.value == "Open fresh@v1, which you just registered" and f"v={stored.id}" in str(link.proto)

    at.text_input(key="path_name").input("other")
    at.text_input(key="path_path").input(str(tmp_path / "missing.csv"))
    at.button(key="FormSubmitter:ds_path-Register and validate").click()
    at.run()
    no_exceptions(at)
    # the reason is an error box of its own, not inside the collapsed status; the old link is gone
    assert any(e.value.startswith("**Nothing was stored.**") for e in at.error)
    assert not [link for link in at.page_link if "which you just registered" in link.value]


def test_a_path_outside_the_allowed_folders_is_refused_on_the_page(people, sqlite_db, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(tmp_path / "inbox"))
    at = app_as(people["data_engineer"], page="pages/datasets.py")
    at.text_input(key="path_name").input("sneaky")
    at.text_input(key="path_path").input("/etc/hostname")
    at.button(key="FormSubmitter:ds_path-Register and validate").click()
    at.run()
    no_exceptions(at)
    assert any("outside the folders" in e.value for e in at.error)
    assert datasets.list_datasets(sqlite_db) == []


def test_the_dataset_page_shows_a_failed_versions_report_in_words(people, customers):
    v1, v2 = customers
    at = _dataset_page(people["data_scientist"], v2)
    no_exceptions(at)
    errors = " ".join(e.value for e in at.error)
    assert "Failed validation" in errors
    assert "out of range" in errors and "4 below the minimum 0" in errors
    assert not any(w.label.startswith("Reason for the waiver") for w in at.text_area)


def test_a_data_engineer_waives_a_failed_version_with_a_reason(people, customers, sqlite_db):
    v1, v2 = customers
    at = _dataset_page(people["data_engineer"], v2)
    at.text_area(key=f"waive_reason_{v2.id}").input("refunds booked as negative charges; accepted by billing")
    at.button(key=f"FormSubmitter:waive_{v2.id}-Waive and allow training").click()
    at.run()
    no_exceptions(at)
    assert datasets.get_version(sqlite_db, v2.id).status == "waived"
    assert "waived; it can now be used for training" in texts(at)
    # the version selector no longer says "failed": the status next to it is this run's
    version = by_label(at.selectbox, "Version")
    assert version.value == v2.id and "failed" not in " ".join(version.options)
    assert any(md.value.endswith("waived]") for md in at.markdown)


def test_the_profile_tab_draws_stored_charts(people, customers):
    at = _dataset_page(people["ops"])
    no_exceptions(at)
    assert "computed once at registration" in texts(at)
    assert len(at.get("plotly_chart")) >= 10
    # issue 16: each row says whether its figures are exact or sketched (300 rows: all exact)
    profile = [d.value for d in at.dataframe if "figures" in getattr(d.value, "columns", [])]
    assert profile and set(profile[0]["figures"]) == {"exact"}


def test_a_data_engineer_saves_an_edited_schema_as_a_new_version(people, customers, sqlite_db):
    v1, _ = customers
    at = _dataset_page(people["data_engineer"])
    at.text_input(key=f"schema_note_{v1.dataset_id}").input("no change, just a note")
    at.button(key=f"schema_save_{v1.dataset_id}").click()
    at.run()
    no_exceptions(at)
    # Unchanged columns are refused with a message that says what to do.
    assert any("unchanged" in e.value for e in at.error)
    assert datasets.current_schema(sqlite_db, v1.dataset_id).version == 1


def test_the_compare_tab_lists_columns_with_before_and_after(people, customers):
    at = _dataset_page(people["business"])
    no_exceptions(at)
    assert "customers@v1 → customers@v2: rows 300 → 300" in texts(at)
