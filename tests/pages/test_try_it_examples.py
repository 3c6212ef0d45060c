"""Issue 15, problem 15 through AppTest: the curl snippet shown with a new API key runs as is (the scoring
service's real address, a real example record), and "Try it" starts from typical training values."""

import json
import shlex

from mlops_core.config import get_settings
from mlops_core.services import datasets, registry
from tests.pages.helpers import app_as, by_label, no_exceptions
from tests.pages.test_deployment_pages import open_tab, people, world  # noqa: F401 - fixtures


def _medians(db, world_):
    w, _ = world_
    mv = registry.get_model_version(db, w.versions[0])
    profile = datasets.get_profile(db, mv.dataset_version_id)
    return mv, {c.name: c for c in profile.columns}


def test_the_curl_snippet_runs_as_shown_and_try_it_starts_from_training_medians(people, world, sqlite_db):  # noqa: F811
    mv, cols = _medians(sqlite_db, world)
    at = app_as(people["ops"], page="pages/deployment.py")
    open_tab(at, "API keys")
    by_label(at.text_input, "What the key is for").input("crm")
    at.button(key="FormSubmitter:dep_newkey-Create API key").click()
    at.run()
    no_exceptions(at)
    secret, snippet = at.code[0].value, at.code[1].value
    assert "HOST" not in snippet and "{...}" not in snippet
    argv = shlex.split(snippet.replace("\\\n", " "))
    s = get_settings()
    assert f"http://127.0.0.1:{s.mlops_api_port}/v1/deployments/churn/predict" in argv
    assert f"Authorization: Bearer {secret}" in argv
    record = json.loads(argv[argv.index("-d") + 1])["records"][0]
    assert set(record) == {c["name"] for c in mv.input_schema}
    numeric = next(c["name"] for c in mv.input_schema if c["type"] in ("integer", "number"))
    assert (
        record[numeric] == cols[numeric].quantiles["p50"]
        or abs(record[numeric] - cols[numeric].quantiles["p50"]) <= 0.5
    )

    # Try it: every field starts from the typical training value, not 0.
    at = app_as(people["data_scientist"], page="pages/deployment.py")
    open_tab(at, "Try it")
    numbers = [c for c in mv.input_schema if c["type"] in ("integer", "number")]
    assert numbers
    for c in numbers:
        value = by_label(at.number_input, c["name"]).value
        assert abs(value - cols[c["name"]].quantiles["p50"]) <= 0.5, (c["name"], value)
    assert any(by_label(at.number_input, c["name"]).value != 0 for c in numbers)
    for c in (c for c in mv.input_schema if c["type"] == "category"):
        top = cols[c["name"]].top[0].value
        assert by_label(at.selectbox, c["name"]).value == top
