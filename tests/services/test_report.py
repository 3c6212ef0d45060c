"""The use case report (issue 18): one self-contained HTML file from live evidence, partial when there is no
data yet, with no URL to any host (links back to the Hub are relative), also from the CLI."""

from __future__ import annotations

import json
import re

from mlops_core.cli import main as cli_main
from mlops_core.services import collab, report, usecases
from tests.services.monitoring_world import make_world

EXTERNAL = re.compile(r"(https?:)?//[a-z0-9]", re.I)


def _self_contained(doc: str) -> None:
    assert not EXTERNAL.search(doc), EXTERNAL.search(doc)
    assert "<script" not in doc and "<link" not in doc and "<img" not in doc and "url(" not in doc
    assert "@import" not in doc and "<iframe" not in doc


def test_the_report_holds_the_evidence_and_requests_nothing(db, people, tmp_path, capsys):
    w = make_world(db, people)
    so = collab.request_signoff(
        db,
        actor=people["data_scientist"],
        entity_type="deployment",
        entity_id=w.deployment_id,
        title="Approve <churn> v1",
        assignee_username="alice",
        evidence={"model_version_id": w.model_version_id},
    )
    rep = report.build_report(db, use_case=w.use_case_id)
    doc = rep.html
    _self_contained(doc)
    assert doc.startswith("<!DOCTYPE html>") and "<style>" in doc
    assert "Customer churn churn" in doc and "accuracy &gt;= 0.8" in doc  # the KPI contract
    assert "customers_churn@v1" in doc and 'href="dataset?id=' in doc  # data version, relative link
    assert "churn-model v1" in doc and f'href="models?id={w.model_version_id}"' in doc  # the model card
    assert f'href="deployment?id={w.deployment_id}"' in doc and "production" in doc
    assert so.evidence_hash in doc and "Approve &lt;churn&gt; v1" in doc  # sign-off with its hash, escaped
    assert "No monitoring check yet." in doc and "Live monitoring" in rep.missing
    assert "Data versions and validation" not in rep.missing

    out = tmp_path / "r.html"
    assert cli_main(["report", "--use-case", "customer churn churn", "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["path"] == str(out) and len(last["sha256"]) == 64
    _self_contained(out.read_text())


def test_a_use_case_with_no_data_gets_a_clear_partial_report(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Empty one", problem_statement="Why <b>")
    rep = report.build_report(db, use_case="Empty one")
    _self_contained(rep.html)
    assert "Partial report: no data yet for" in rep.html and "Why &lt;b&gt;" in rep.html
    assert "No dataset registered for this use case yet." in rep.html and "Not deployed yet." in rep.html
    assert set(rep.missing) >= {"KPI contract", "Data versions and validation", "Best runs against the KPIs"}
    assert f'href="use-case?id={uc.id}"' in rep.html
