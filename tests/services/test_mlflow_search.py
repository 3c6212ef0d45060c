"""MLflow runs/search in SQL (services/mlflow_search.py): the same answer as the route's Python path for
metric/param/tag/attribute filters, metric ordering (runs without the metric last) and paging, on both
database legs; order specs and filters without a SQL form keep the Python path."""

from __future__ import annotations

import pytest

from mlops_core.serving.mlflow import runs as mlflow_runs
from mlops_core.serving.mlflow._common import Call, MlflowError
from mlops_core.services import mlflow_bridge, mlflow_search, usecases


@pytest.fixture
def searchable(db, people):
    """12 MLflow runs in one use case (+1 in another): metric m0 on all but two, param p, tag t, statuses."""
    ds = people["data_scientist"]
    uc = usecases.create_use_case(db, actor=people["business"], title="Search in SQL")
    other = usecases.create_use_case(db, actor=people["business"], title="Another use case")
    ids = []
    for i in range(12):
        run = mlflow_bridge.create_run(
            db, actor=ds, use_case_id=uc.id, name=f"run {i:02d}", tags={"t": "Even" if i % 2 == 0 else "odd"}
        )
        metrics = [{"key": "m1", "value": float(i), "step": 0}]
        if i not in (3, 7):
            metrics += [{"key": "m0", "value": ((i * 5) % 12) / 10.0, "step": s} for s in range(2)]
        mlflow_bridge.log(db, actor=ds, run_id=run.id, params={"p": str(i % 3)}, metrics=metrics)
        if i % 4 != 0:
            mlflow_bridge.end_run(db, actor=ds, run_id=run.id, mlflow_status="FINISHED" if i % 4 != 3 else "FAILED")
        ids.append(run.id)
    mlflow_bridge.create_run(db, actor=ds, use_case_id=other.id, name="elsewhere", tags={})
    return db, ds, uc, ids


def _search(db, actor, body: dict, *, python: bool, monkeypatch) -> list[dict]:
    """Every page of a search, through the route, on the SQL path or forced onto the Python path."""
    monkeypatch.setattr(mlflow_search, "supports", (lambda c, o: False) if python else _REAL_SUPPORTS)
    out, token = [], None
    while True:
        args = dict(body, **({"page_token": token} if token else {}))
        res = mlflow_runs.search(Call(db=db, actor=actor, args=args))
        out += res["runs"]
        token = res.get("next_page_token")
        if not token:
            return out


_REAL_SUPPORTS = mlflow_search.supports


CASES = [
    ("", ["metrics.m0 DESC"]),
    ("", ["metrics.m0 ASC", "attributes.run_name DESC"]),
    ("metrics.m0 > 0.4", ["metrics.m1 DESC"]),
    ("metrics.m0 <= 0.5 AND params.p = '1'", []),
    ("tags.t LIKE 'E%'", ["attributes.run_id DESC"]),
    ("tags.t ILIKE 'e%' AND metrics.m1 != 4", ["metrics.m0 DESC"]),
    ("attributes.status = 'FINISHED'", ["metrics.m1 ASC"]),
    ("attributes.status != 'RUNNING' AND params.p != '0'", ["attributes.end_time DESC"]),
    ("tags.`mlflow.runName` = 'run 05'", []),
    ("attributes.run_name LIKE 'run 1%'", ["attributes.start_time ASC"]),
]


def test_sql_search_answers_like_the_python_path_and_pages_in_sql(searchable, monkeypatch):
    db, ds, uc, _ = searchable
    for filter_, order_by in CASES:  # one fixture for all cases (CI time)
        body = {"experiment_ids": [str(uc.id)], "filter": filter_, "order_by": order_by, "max_results": 5}
        clauses = [mlflow_runs._sql_clause(c) for c in mlflow_runs._parse_filter(filter_)]
        specs = [
            (mlflow_runs._kind(m.group(1)), m.group(2).strip("`\""), (m.group(3) or "ASC").upper() == "DESC")
            for m in (mlflow_runs._ORDER.match(o) for o in order_by)
        ]
        assert _REAL_SUPPORTS(clauses, specs), filter_
        in_sql = _search(db, ds, body, python=False, monkeypatch=monkeypatch)
        in_python = _search(db, ds, body, python=True, monkeypatch=monkeypatch)
        assert in_sql, (filter_, order_by)
        assert [_normal(r) for r in in_sql] == [_normal(r) for r in in_python], (filter_, order_by)
    monkeypatch.setattr(mlflow_search, "supports", _REAL_SUPPORTS)
    _specs_without_a_sql_form_keep_the_python_path(searchable)
    _top_by_a_metric_pages_in_sql_with_runs_without_it_last(searchable, monkeypatch)


def _normal(run: dict) -> dict:
    """A run's JSON with its metric/param/tag lists sorted (their order is the database's row order)."""
    data = {k: sorted(v, key=lambda x: x["key"]) for k, v in run["data"].items()}
    return {**run, "data": data}


def _top_by_a_metric_pages_in_sql_with_runs_without_it_last(searchable, monkeypatch):
    db, ds, uc, ids = searchable
    body = {"experiment_ids": [str(uc.id)], "order_by": ["metrics.m0 DESC"], "max_results": 4}
    first = mlflow_runs.search(Call(db=db, actor=ds, args=body))
    assert first["next_page_token"] == "4"
    values = [{m["key"]: m["value"] for m in r["data"]["metrics"]}["m0"] for r in first["runs"]]
    assert values == [1.0, 0.9, 0.8, 0.7]
    everything = _search(db, ds, body, python=False, monkeypatch=monkeypatch)
    assert len(everything) == 12  # the run of the other use case is not there
    assert {r["info"]["run_id"] for r in everything[-2:]} == {str(ids[3]), str(ids[7])}  # no m0: last
    # The SQL path never lists the whole use case: it is the one called, with the page size.
    seen = []
    real = mlflow_search.search_runs
    monkeypatch.setattr(mlflow_search, "search_runs", lambda *a, **kw: seen.append(kw["limit"]) or real(*a, **kw))
    monkeypatch.setattr(
        mlflow_runs.experiments, "list_runs", lambda *a, **kw: pytest.fail("the SQL path listed every run")
    )
    mlflow_runs.search(Call(db=db, actor=ds, args=body))
    assert seen == [4]


def test_only_specs_with_a_sql_form_take_the_sql_path():
    assert mlflow_search.supports([("metrics", "m", ">", 1.0), ("tags", "t", "LIKE", "a%")], [("metrics", "m", True)])
    assert not mlflow_search.supports([("attributes", "start_time", ">", 0.0)], [])
    assert not mlflow_search.supports([], [("params", "p", False)])
    assert not mlflow_search.supports([], [("attributes", "status", False)])


def _specs_without_a_sql_form_keep_the_python_path(searchable):
    db, ds, uc, _ = searchable
    body = {"experiment_ids": [str(uc.id)], "order_by": ["params.p DESC", "metrics.m1 ASC"], "max_results": 3}
    res = mlflow_runs.search(Call(db=db, actor=ds, args=body))
    assert [r["info"]["run_name"] for r in res["runs"]] == ["run 02", "run 05", "run 08"]
    with pytest.raises(MlflowError, match="not supported"):
        mlflow_runs.search(Call(db=db, actor=ds, args={"experiment_ids": [str(uc.id)], "filter": "metrics.m0 ~ 1"}))
