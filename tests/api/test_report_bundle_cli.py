"""`report` and `deploy bundle` from a CI job holding only MLOPS_HUB_URL + MLOPS_TOKEN (no database URL): they go
over the Hub API (GET /use-cases/{ref}/report, POST /deployments/{name}/bundle) as the token's user."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_core.services import deployments
from tests.api.test_pipeline_cli import last_json, runner_env
from tests.services.deployments_world import make_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn(hub):
    """One trained version deployed on `churn` (an admin override: the business sign-off is still pending)."""
    people = hub.people
    w = make_world(hub.db, people, versions=1)
    req = deployments.request_deployment(
        hub.db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    deployments.set_regression_tolerance(hub.db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    deployments.deploy(hub.db, actor=people["admin"], request_id=req.id, override_reason="test: sign-off later")
    return w


def run(hub, role: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = runner_env(hub, MLOPS_TOKEN=hub.tokens[role])
    assert "DATABASE_URL" not in env
    return subprocess.run(
        [sys.executable, "-m", "mlops_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_report_over_the_api_writes_the_html_and_an_unknown_use_case_exits_2(hub, churn, tmp_path):
    out = tmp_path / "report.html"
    p = run(hub, "business", "report", "--use-case", "customer churn", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    summary = last_json(p.stdout)
    html = out.read_bytes()
    assert summary["sha256"] == hashlib.sha256(html).hexdigest() and summary["bytes"] == len(html) > 1000
    text = html.decode()
    assert text.lstrip().lower().startswith("<!doctype html") and "Customer churn" in text
    assert "https://" not in text and "http://" not in text.replace("http://www.w3.org", "")

    # Without --out stdout is the HTML alone (`report ... > file.html`); the JSON summary goes to stderr.
    p = run(hub, "business", "report", "--use-case", "customer churn", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    page = p.stdout.rstrip("\n")
    assert page.lstrip().lower().startswith("<!doctype html") and page.rstrip().lower().endswith("</html>")
    assert last_json(p.stderr)["sha256"] == hashlib.sha256(page.encode()).hexdigest()

    p = run(hub, "business", "report", "--use-case", "no such thing", cwd=tmp_path)
    assert p.returncode == 2
    summary = last_json(p.stdout)
    assert summary["http_status"] == 404 and "no use case 'no such thing'" in summary["error"]
    assert "no use case" in p.stderr


def test_bundle_over_the_api_ops_gets_the_folder_business_is_refused(hub, churn, tmp_path):
    out = tmp_path / "bundle"
    p = run(hub, "ops", "deploy", "bundle", "--deployment", "churn", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    summary = last_json(p.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["deployment"] == "churn" and summary["model_sha256"] == manifest["model_sha256"]
    assert (out / "model.skops").is_file() and (out / "Dockerfile").is_file()

    denied = tmp_path / "denied"
    p = run(hub, "business", "deploy", "bundle", "--deployment", "churn", "--out", str(denied), cwd=tmp_path)
    assert p.returncode == 2
    assert last_json(p.stdout)["http_status"] == 403 and "error:" in p.stderr
    assert not denied.exists() or not any(denied.iterdir())

    p = run(hub, "ops", "deploy", "bundle", "--deployment", "nope", "--out", str(denied), cwd=tmp_path)
    assert p.returncode == 2 and last_json(p.stdout)["http_status"] == 404


def test_a_zip_with_an_escaping_member_is_refused_before_anything_is_written(tmp_path):
    import io
    import zipfile

    from mlops_core.cli._hubfiles import safe_extract
    from mlops_core.cli.pipeline import PipelineError

    for bad in ("../evil.txt", "/etc/evil.txt", "a/../../evil.txt"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("ok.txt", "fine")
            zf.writestr(bad, "evil")
        with pytest.raises(PipelineError, match="unsafe path"):
            safe_extract(buf.getvalue(), tmp_path / "out")
        assert not (tmp_path / "out").exists()
