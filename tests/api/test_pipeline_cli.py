"""The CI pipeline of docs/ci end to end: the commands are READ from docs/ci/github-actions.yml and
docs/ci/gitlab-ci.yml (so the test breaks when the docs drift) and run as a CI runner would — step by step in
bash, secrets in the environment, GITHUB_ENV / GitLab dotenv passing values on — against a real Hub
(`python -m mlops_core serve`) with a real worker training the runs. The pipeline's environment holds no
DATABASE_URL: everything goes over the Hub API with a data scientist's token.

Then the bad inputs a pipeline meets: an unknown use case, no token, a refused token, a bad config, a KPI miss
(exit 1) and a deployment whose gate fails (exit 1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_core.config import PROJECT_ROOT
from mlops_core.demo.customers import make_customers
from mlops_core.services import collab, datasets, deployments, experiments, registry, usecases
from tests.faults import workers as fault_workers
from tests.pages.helpers import app_as, no_exceptions, texts

DOCS = PROJECT_ROOT / "docs" / "ci"
CLI_TIMEOUT = 240
SHA = "3f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"


# --- the documented workflows, parsed ----------------------------------------------------------------------


def _installs(script: str) -> bool:
    """Steps that set up the runner (clone the Hub, pip install): the test's interpreter already has both."""
    return "pip install" in script


def github_workflow() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(the job's env, [(step name, bash script)]) of the one job of docs/ci/github-actions.yml."""
    wf = yaml.safe_load((DOCS / "github-actions.yml").read_text())
    (job,) = wf["jobs"].values()
    steps = [(s.get("name", "?"), s["run"]) for s in job["steps"] if "run" in s and not _installs(s["run"])]
    return dict(job.get("env", {})), steps


def gitlab_pipeline() -> tuple[dict[str, str], list[tuple[str, str, str | None]]]:
    """(the global variables, [(job, bash script, dotenv file or None)] in stage order) of docs/ci/gitlab-ci.yml."""
    ci = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())
    reserved = {"stages", "variables", "default", "workflow", "include", "image", "before_script"}
    jobs = {name: spec for name, spec in ci.items() if name not in reserved and isinstance(spec, dict)}
    ordered = sorted(jobs.items(), key=lambda kv: ci["stages"].index(kv[1]["stage"]))
    out = []
    for name, spec in ordered:
        dotenv = spec.get("artifacts", {}).get("reports", {}).get("dotenv")
        out.append((name, "\n".join(spec["script"]), dotenv))
    # before_script only installs (the same steps the GitHub workflow's install step takes)
    assert all(
        _installs(line) or "git clone" in line or "apt-get" in line for line in ci["default"]["before_script"]
    ), "before_script does more than set up the runner"
    return dict(ci.get("variables", {})), out


def last_json(text: str) -> dict:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert lines, "no output at all"
    return json.loads(lines[-1])


# --- the world the pipeline runs in -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(hub, tmp_path_factory):
    """The documented use case (with a model KPI the data meets), a validated `customers` dataset, a worker,
    and a working directory holding the repository's docs/ci/train.toml."""
    db, people = hub.db, hub.people
    alice, dan = people["business"], people["data_engineer"]
    title = github_workflow()[0]["USE_CASE"]
    uc = usecases.create_use_case(
        db,
        actor=alice,
        title=title,
        problem_statement="Customers leave.",
        members={"ops": ["omar"], "data_scientist": ["sara"]},
    )
    usecases.add_kpi(
        db,
        actor=alice,
        use_case_id=uc.id,
        kind="model",
        metric="roc_auc",
        direction=">=",
        target=0.6,
        name="ranking quality",
    )
    dv = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=make_customers(400, seed=3), use_case_id=uc.id
    )
    assert datasets.is_trainable(dv), dv.status
    strict = usecases.create_use_case(db, actor=alice, title="Churn (strict)", problem_statement="Ambitious.")
    usecases.add_kpi(
        db,
        actor=alice,
        use_case_id=strict.id,
        kind="model",
        metric="roc_auc",
        direction=">=",
        target=0.9999,
        name="near perfect",
    )
    sv = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers_strict", frame=make_customers(300, seed=5), use_case_id=strict.id
    )
    assert datasets.is_trainable(sv), sv.status

    tmp = tmp_path_factory.mktemp("pipeline")
    work = tmp / "repo"
    (work / "docs" / "ci").mkdir(parents=True)
    shutil.copy(DOCS / "train.toml", work / "docs" / "ci" / "train.toml")
    (work / "one.toml").write_text('target = "churned"\nalgorithm = "logistic_regression"\nseed = 1\n')

    w = fault_workers.Workers(hub.env["DATABASE_URL"], Path(hub.env["ARTIFACT_ROOT"]).parent)
    fault_workers._current.append(w)
    w.start("ci-worker")
    try:
        yield {"work": work, "use_case_id": uc.id, "dataset": dv, "strict": strict, "strict_dataset": sv, "workers": w}
    finally:
        w.stop_all()
        fault_workers._current.remove(w)


def runner_env(hub, **extra: str) -> dict[str, str]:
    """A CI runner's environment: PATH with our python, the CLI importable, the two secrets, NO database URL
    and no artifact folder (the pipeline must not need them)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "CI_", "MLOPS_", "RUNNER_")) and k not in ("DATABASE_URL", "ARTIFACT_ROOT")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["MLOPS_HUB_URL"] = hub.url
    env["MLOPS_TOKEN"] = hub.tokens["data_scientist"]
    env.update(extra)
    return env


def cli(hub, world, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_core", *args],
        cwd=world["work"],
        env=env if env is not None else runner_env(hub),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def read_dotenv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _assert_pipeline_outputs(hub, world, work: Path, expected_tags: dict[str, str]) -> dict:
    train = last_json((work / "train.out").read_text())
    assert train["exit_code"] == 0 and train["verdict"] == "met", train
    run = experiments.get_run(hub.db, train["run_id"])
    assert run.status == "finished" and run.use_case_id == world["use_case_id"]
    assert run.created_by == "sara" and run.source == "ci"  # launched by the pipeline CLI, not a bare API call
    for key, value in expected_tags.items():
        assert run.tags.get(key) == value, (key, run.tags)
    assert len(train["run_ids"]) == 2, "train.toml names two algorithms: one run each"

    reg = last_json((work / "register.out").read_text())
    assert reg["exit_code"] == 0 and reg["run_id"] == run.id, reg
    mv = registry.resolve_version(hub.db, model_name=reg["model"], alias="candidate")
    assert mv.run_id == run.id and mv.version == reg["version"]

    dep = last_json((work / "deploy.out").read_text())
    assert dep["exit_code"] == 0, dep
    # production: every gate passes but the business sign-off, which is asked for, not waived
    assert dep["verdict"] == "awaiting_signoff", dep
    request = deployments.get_request(hub.db, dep["request_id"])
    assert request.model_version_id == mv.id and request.requested_by == "sara" and request.status == "pending"
    assert [g.gate for g in request.gates if g.status == "failed"] == ["business_signoff"]
    return {"run": run, "model_version": mv, "request": request}


# --- the documented workflows, end to end ---------------------------------------------------------------------


def test_the_github_actions_workflow_trains_checks_registers_and_requests_deployment_with_ci_tags(hub, world, tmp_path):
    job_env, steps = github_workflow()
    assert [n for n, _ in steps] == ["Train and check the KPIs", "Register the model", "Request the deployment"]
    secrets = {"MLOPS_HUB_URL": hub.url, "MLOPS_TOKEN": hub.tokens["data_scientist"]}
    event = {"DATASET": world["dataset"].ref}  # the repository_dispatch payload names the new version
    env = runner_env(
        hub,
        GITHUB_SHA=SHA,
        GITHUB_RUN_ID="987654",
        GITHUB_REPOSITORY="acme/churn-model",
        GITHUB_ENV=str(tmp_path / "github_env"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        RUNNER_TEMP=str(tmp_path),
    )
    for key, value in job_env.items():
        secret = re.fullmatch(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", str(value))
        if secret:
            env[key] = secrets[secret.group(1)]
        elif "${{" in str(value):
            env[key] = event[key]
        else:
            env[key] = str(value)
    work = world["work"]
    for name, script in steps:
        done = bash(script, env, work)
        assert done.returncode == 0, f"step {name!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        if Path(env["GITHUB_ENV"]).exists():  # GitHub passes GITHUB_ENV lines on to the next steps
            env.update(read_dotenv(Path(env["GITHUB_ENV"])))
    out = _assert_pipeline_outputs(
        hub,
        world,
        work,
        {
            "ci.provider": "github",
            "ci.commit": SHA,
            "ci.pipeline": "987654",
            "ci.repository": "acme/churn-model",
            "ci.pipeline_url": "https://github.com/acme/churn-model/actions/runs/987654",
        },
    )
    assert env["RUN_ID"] == str(out["run"].id)
    assert f"request {out['request'].id}: gates awaiting_signoff" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert SHA in out["request"].note  # the reviewers see which commit asks
    # The run page's header says where the run came from, with a link to the pipeline.
    at = app_as(hub.people["data_scientist"])
    at.session_state["run_id"] = out["run"].id
    at.switch_page("pages/run.py")
    at.run()
    no_exceptions(at)
    assert f"{out['run'].status} · Logistic regression · from CI · by sara" in texts(at)
    assert [c.value for c in at.caption if c.value.startswith("Started from CI")] == [
        f"Started from CI (github) · commit `{SHA[:12]}` · "
        "[pipeline 987654](<https://github.com/acme/churn-model/actions/runs/987654>) · repository `acme/churn-model`"
    ]


def test_the_gitlab_ci_twin_runs_the_same_pipeline_and_tags_the_gitlab_commit(hub, world, tmp_path):
    variables, jobs = gitlab_pipeline()
    assert [j for j, _, _ in jobs] == ["train", "register", "deploy"]
    assert variables["DATASET"].endswith("@latest")  # a trigger without DATASET trains on the newest version
    env = runner_env(
        hub,
        CI_COMMIT_SHA=SHA[::-1],
        CI_PIPELINE_ID="4242",
        CI_PROJECT_PATH="acme/churn-model",
        CI_PIPELINE_URL="https://gitlab.example.com/acme/churn-model/-/pipelines/4242",
        **{k: str(v) for k, v in variables.items()},
    )
    work = world["work"]
    for name, script, dotenv in jobs:
        done = bash(script, env, work)
        assert done.returncode == 0, f"job {name!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        if dotenv:
            env.update(read_dotenv(work / dotenv))
    _assert_pipeline_outputs(
        hub,
        world,
        work,
        {
            "ci.provider": "gitlab",
            "ci.commit": SHA[::-1],
            "ci.pipeline": "4242",
            "ci.repository": "acme/churn-model",
            "ci.pipeline_url": "https://gitlab.example.com/acme/churn-model/-/pipelines/4242",
        },
    )


def test_run_status_reports_a_finished_runs_metrics_and_kpi_checks(hub, world):
    run = experiments.list_runs(hub.db, use_case_id=world["use_case_id"], status="finished", limit=1).items[0]
    done = cli(hub, world, "run", "status", str(run.id))
    assert done.returncode == 0, done.stderr
    out = last_json(done.stdout)
    assert out["run"]["id"] == run.id and out["run"]["status"] == "finished"
    assert out["run"]["metrics"]["roc_auc"] == pytest.approx(run.metrics["roc_auc"])
    assert [k["status"] for k in out["run"]["kpis"]] == ["met"]


# --- bad input ------------------------------------------------------------------------------------------------------


def test_an_unknown_use_case_exits_2_with_a_sentence_and_queues_nothing(hub, world):
    before = experiments.list_runs(hub.db, limit=1).total
    done = cli(
        hub,
        world,
        "experiment",
        "run",
        "--use-case",
        "No such case",
        "--dataset",
        world["dataset"].ref,
        "--config",
        "docs/ci/train.toml",
        "--wait",
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    out = last_json(done.stdout)
    assert out["ok"] is False and "No such case" in out["error"] and out["http_status"] == 404
    assert done.stderr.strip().startswith("error: ") and "use case" in done.stderr
    assert experiments.list_runs(hub.db, limit=1).total == before


def test_a_missing_token_exits_2_and_says_how_to_get_one(hub, world):
    env = runner_env(hub)
    del env["MLOPS_TOKEN"]
    done = cli(hub, world, "run", "status", "1", env=env)
    assert done.returncode == 2
    assert "MLOPS_TOKEN is not set" in done.stderr and "My account" in done.stderr
    assert last_json(done.stdout)["exit_code"] == 2


def test_a_refused_token_exits_2_with_the_hubs_reason(hub, world):
    done = cli(hub, world, "run", "status", "1", env=runner_env(hub, MLOPS_TOKEN="mlops_not-a-real-token"))
    assert done.returncode == 2
    out = last_json(done.stdout)
    assert out["http_status"] == 401 and "MLOPS_TOKEN" in out["error"]


def test_a_config_with_an_unknown_key_is_refused_before_anything_is_queued(hub, world):
    bad = world["work"] / "bad.toml"
    bad.write_text('target = "churned"\nalgorithm = "random_forest"\nlearning_rat = 0.1\n')
    before = experiments.list_runs(hub.db, limit=1).total
    done = cli(
        hub,
        world,
        "experiment",
        "run",
        "--use-case",
        "Customer churn",
        "--dataset",
        world["dataset"].ref,
        "--config",
        str(bad),
    )
    assert done.returncode == 2
    assert "learning_rat" in done.stderr and "test_size" in done.stderr  # names the bad key and the known ones
    assert experiments.list_runs(hub.db, limit=1).total == before


def test_a_token_of_the_wrong_role_cannot_launch_training(hub, world):
    done = cli(
        hub,
        world,
        "experiment",
        "run",
        "--use-case",
        "Customer churn",
        "--dataset",
        world["dataset"].ref,
        "--config",
        "one.toml",
        env=runner_env(hub, MLOPS_TOKEN=hub.tokens["business"]),
    )
    assert done.returncode == 2
    assert last_json(done.stdout)["http_status"] == 403


def test_a_kpi_miss_exits_1_and_its_deployment_request_fails_the_kpi_gate(hub, world):
    strict = world["strict"]
    done = cli(
        hub,
        world,
        "experiment",
        "run",
        "--use-case",
        strict.title,
        "--dataset",
        world["strict_dataset"].ref,
        "--config",
        "one.toml",
        "--wait",
        env=runner_env(hub, CI_COMMIT_SHA="abc123", CI_PIPELINE_ID="7", CI_PROJECT_PATH="acme/strict"),
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    out = last_json(done.stdout)
    assert out["verdict"] == "missed" and out["runs"][0]["kpis"][0]["status"] == "missed"
    assert "no run meets every model KPI" in done.stderr
    run_id = out["run_id"]
    assert experiments.get_run(hub.db, run_id).tags["ci.commit"] == "abc123"

    reg = cli(hub, world, "model", "register", "--run", str(run_id), "--name", "strict-model")
    assert reg.returncode == 0, reg.stderr
    dep = cli(
        hub,
        world,
        "deploy",
        "request",
        "--deployment",
        "strict",
        "--environment",
        "staging",
        "--model",
        f"strict-model:{last_json(reg.stdout)['version']}",
    )
    assert dep.returncode == 1, (dep.stdout, dep.stderr)
    summary = last_json(dep.stdout)
    assert summary["verdict"] == "failed"
    assert any(g["status"] == "failed" and g["gate"] != "business_signoff" for g in summary["gates"])


def test_a_malformed_model_reference_exits_2_and_shows_both_forms(hub, world):
    done = cli(hub, world, "deploy", "request", "--deployment", "churn", "--model", "churn-classifier")
    assert done.returncode == 2
    assert "NAME@ALIAS" in done.stderr and "NAME:VERSION" in done.stderr


def _wait_for_request(hub, deployment: str):
    return fault_workers.wait_for(
        lambda: (deployments.list_requests(hub.db, deployment_name=deployment) or [None])[0],
        60,
        f"the deployment request on {deployment}",
    )


def test_deploy_request_wait_follows_the_business_signoff_exit_0_approved_exit_1_rejected(hub, world):
    alice = hub.people["business"]
    runs = experiments.list_runs(hub.db, use_case_id=world["use_case_id"], status="finished", limit=2).items
    assert len(runs) == 2, "the workflow tests above train the runs this test registers"
    outcomes = {}
    for run, approve in zip(runs, (True, False)):
        mv = registry.register_model(hub.db, actor=hub.people["data_scientist"], run_id=run.id, name="churn-signoff")
        deployment = f"signoff-{'yes' if approve else 'no'}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_core",
                "deploy",
                "request",
                "--deployment",
                deployment,
                "--model",
                f"churn-signoff:{mv.version}",
                "--wait",
                "--timeout",
                "120",
            ],
            cwd=world["work"],
            env=runner_env(hub),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            request = _wait_for_request(hub, deployment)
            assert request.signoff_id, request
            collab.decide_signoff(
                hub.db,
                actor=alice,
                signoff_id=request.signoff_id,
                approve=approve,
                reason="" if approve else "the churn team wants another month of data",
            )
            stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        outcomes[approve] = (proc.returncode, last_json(stdout), stderr)
    code, out, stderr = outcomes[True]
    assert code == 0 and out["verdict"] == "passed", (out, stderr)
    assert "waiting for the business sign-off" in stderr
    code, out, stderr = outcomes[False]
    assert code == 1 and out["verdict"] == "failed", (out, stderr)
    assert any("another month of data" in g["detail"] for g in out["gates"])


def test_the_run_header_ci_line_links_only_http_pipeline_urls_and_is_empty_for_other_runs():
    from hub_ui.ci_origin import ci_origin_markdown

    tags = {"ci.provider": "gitlab", "ci.commit": "abc", "ci.pipeline": "7", "ci.pipeline_url": "javascript:alert(1)"}
    assert ci_origin_markdown("ci", tags) == "Started from CI (gitlab) · commit `abc` · pipeline 7"
    assert ci_origin_markdown("ci", {}) == "Started from CI"
    assert ci_origin_markdown("ui", {"team": "x"}) == ""
