"""The pipeline CLI's own inputs, without a Hub: the training config file, the CI tags, and the HTTP client's
retries and error sentences (httpx.MockTransport, no network)."""

from __future__ import annotations

import httpx
import pytest

from mlops_core.cli.pipeline import Hub, HubError, PipelineError, ci_tags, load_config


def write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_the_documented_train_toml_becomes_one_launch_with_params_per_algorithm():
    from mlops_core.config import PROJECT_ROOT

    spec = load_config(str(PROJECT_ROOT / "docs" / "ci" / "train.toml"))
    assert spec["algorithms"] == ["logistic_regression", "random_forest"]
    assert spec["params_by_algorithm"]["logistic_regression"]["C"] == [0.3, 1.0]
    assert spec["config"]["target"] == "churned" and spec["config"]["seed"] == 42
    assert "params" not in spec["config"] and "algorithms" not in spec["config"]


def test_flat_params_go_to_the_single_algorithm(tmp_path):
    spec = load_config(
        write(tmp_path, "c.toml", 'target = "y"\nalgorithm = "random_forest"\n[params]\nn_estimators = [50, 100]\n')
    )
    assert spec["params_by_algorithm"] == {"random_forest": {"n_estimators": [50, 100]}}


def test_yaml_configs_are_read_too(tmp_path):
    pytest.importorskip("yaml")
    spec = load_config(write(tmp_path, "c.yaml", "target: y\nalgorithms: [logistic_regression]\nsplit: cv\nfolds: 3\n"))
    assert spec["config"] == {"target": "y", "split": "cv", "folds": 3}


@pytest.mark.parametrize(
    "text,says",
    [
        ('target = "y"\nalgorithm = "random_forest"\nlearning_rat = 0.1\n', "unknown setting(s) learning_rat"),
        ('algorithm = "random_forest"\n', "set target"),
        ('target = "y"\n', "set algorithms"),
        ('target = "y"\nalgorithms = ["a", "b"]\n[params]\nC = 1\n', "give params per algorithm"),
        ('target = "y"\nalgorithms = ["a"]\n[params.b]\nC = 1\n', "params for b, which is not in algorithms"),
        ('target = "y\n', "is not valid TOML"),
    ],
)
def test_a_bad_config_is_refused_with_a_sentence_that_says_what_to_change(tmp_path, text, says):
    with pytest.raises(PipelineError) as exc:
        load_config(write(tmp_path, "c.toml", text))
    assert says in str(exc.value)


def test_a_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_config(str(tmp_path / "nope.toml"))


def test_ci_tags_name_the_commit_and_pipeline_of_github_or_gitlab_and_nothing_outside_ci():
    gh = ci_tags({"GITHUB_SHA": "abc", "GITHUB_RUN_ID": "12", "GITHUB_REPOSITORY": "acme/m"})
    assert gh == {
        "ci.provider": "github",
        "ci.commit": "abc",
        "ci.pipeline": "12",
        "ci.repository": "acme/m",
        "ci.pipeline_url": "https://github.com/acme/m/actions/runs/12",
    }
    gl = ci_tags({"CI_COMMIT_SHA": "def", "CI_PIPELINE_ID": "7", "CI_PROJECT_PATH": "g/p"})
    assert gl == {"ci.provider": "gitlab", "ci.commit": "def", "ci.pipeline": "7", "ci.repository": "g/p"}
    assert ci_tags({"HOME": "/root"}) == {}


def test_a_lost_connection_is_retried_with_doubling_backoff_then_the_answer_is_used():
    calls, sleeps = [], []

    def handler(request):
        calls.append(request.url.path)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"id": 1, "status": "finished"})

    hub = Hub("http://hub.test", "tok", sleep=sleeps.append, transport=httpx.MockTransport(handler))
    assert hub.get("/runs/1") == {"id": 1, "status": "finished"}
    assert calls == ["/api/v1/runs/1"] * 3 and sleeps == [0.5, 1.0]


def test_a_hub_that_stays_unreachable_is_an_error_that_names_the_address():
    sleeps = []

    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    hub = Hub("http://hub.test", "tok", sleep=sleeps.append, transport=httpx.MockTransport(handler))
    with pytest.raises(PipelineError, match="cannot reach the Hub at http://hub.test"):
        hub.get("/runs/1")
    assert len(sleeps) == Hub.RETRIES


def test_a_refused_post_is_not_sent_twice_when_the_answer_is_lost():
    calls = []

    def handler(request):
        calls.append(request.method)
        raise httpx.ReadError("connection reset", request=request)

    hub = Hub("http://hub.test", "tok", sleep=lambda s: None, transport=httpx.MockTransport(handler))
    with pytest.raises(PipelineError):
        hub.post("/runs/launch", {})
    assert calls == ["POST"]  # the runs may have been queued: never launch them twice


def test_hub_errors_keep_the_hubs_sentence_and_status():
    def handler(request):
        if request.url.path.endswith("/me"):
            return httpx.Response(401, json={"detail": "this token was revoked", "error": "unauthenticated"})
        return httpx.Response(404, json={"detail": "no use case 'X'; known use cases: Churn", "error": "not_found"})

    hub = Hub("http://hub.test", "tok", sleep=lambda s: None, transport=httpx.MockTransport(handler))
    with pytest.raises(HubError) as exc:
        hub.get("/use-cases/9")
    assert exc.value.status == 404 and str(exc.value) == "no use case 'X'; known use cases: Churn"
    with pytest.raises(HubError) as exc:
        hub.get("/me")
    assert exc.value.status == 401 and "this token was revoked" in str(exc.value) and "MLOPS_TOKEN" in str(exc.value)


@pytest.mark.parametrize(
    "argv,says",
    [
        (["experiment", "run", "--use-case", "Churn"], "--dataset, --config"),
        (["run", "status", "abc"], "'abc' is not a run id"),
        (["model", "register", "--run", "0", "--name", "m"], "'0' is not a run id"),
    ],
)
def test_a_missing_or_malformed_option_exits_2_with_the_json_summary_as_the_last_line(capsys, argv, says):
    import json

    from mlops_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["exit_code"] == 2 and says in summary["error"] and says in out.err
