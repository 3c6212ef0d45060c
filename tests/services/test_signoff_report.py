"""A sign-off request can attach the use case report (issue 18): the report's sha256 joins the evidence, so the
evidence hash covers the document; the approver gets exactly the stored bytes back."""

from __future__ import annotations

import hashlib

import pytest

from mlops_core import artifacts
from mlops_core.errors import DomainError, ValidationError
from mlops_core.services import collab, signoff_report, usecases


def _ask(db, actor, uc_id, *, attach: bool = True):
    return collab.request_signoff(
        db,
        actor=actor,
        entity_type="use_case",
        entity_id=uc_id,
        title="Go for production",
        assignee_username="alice",
        evidence={"note": "same evidence"},
        attach_report=attach,
    )


def test_the_attached_report_is_hashed_into_the_evidence_and_served_as_stored(db, people):
    ds = people["data_scientist"]
    uc = usecases.create_use_case(db, actor=people["business"], title="Churn", problem_statement="Keep customers")
    plain = _ask(db, ds, uc.id, attach=False)
    assert signoff_report.attached(plain) is None
    with pytest.raises(ValidationError):
        signoff_report.report_bytes(plain)

    so = _ask(db, ds, uc.id)
    entry = signoff_report.attached(so)
    assert entry is not None and entry["use_case_id"] == uc.id
    assert so.evidence_hash == collab.evidence_hash(so.evidence) != plain.evidence_hash
    served = signoff_report.report_bytes(collab.get_signoff(db, so.id))  # as the approver reads it
    assert served == artifacts.get_bytes(entry["artifact"])
    assert hashlib.sha256(served).hexdigest() == entry["sha256"]
    assert b"Keep customers" in served and served.startswith(b"<!DOCTYPE html>")

    # The report's bytes change (the problem statement is edited): the evidence hash changes with them.
    usecases.update_use_case(
        db, actor=people["business"], use_case_id=uc.id, expected_version=None, problem_statement="Keep more"
    )
    again = _ask(db, ds, uc.id)
    e2 = signoff_report.attached(again)
    assert e2["sha256"] != entry["sha256"] and again.evidence_hash != so.evidence_hash
    assert b"Keep more" in signoff_report.report_bytes(again)
    assert b"Keep more" not in signoff_report.report_bytes(so)  # the first sign-off keeps its own document

    # A stored file altered afterwards is refused, never served as the signed one.
    artifacts.put_bytes(entry["artifact"], served.replace(b"Keep customers", b"Keep nobody"))
    with pytest.raises(DomainError, match="no longer matches"):
        signoff_report.report_bytes(so)


def test_an_object_of_no_use_case_has_no_report_to_attach(db, people):
    with pytest.raises(ValidationError, match="belongs to no use case"):
        collab.request_signoff(
            db,
            actor=people["data_scientist"],
            entity_type="dataset",
            entity_id=999,
            title="x",
            assignee_username="alice",
            attach_report=True,
        )
