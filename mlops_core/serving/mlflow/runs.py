"""MLflow runs = Hub runs (the run id is the Hub run id as a decimal string): create, get, update, log
params/metrics/tags (one by one or in batches, through experiments.log_batch), inputs/outputs, search."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter

from ...errors import NotFound
from ...services import experiments, mlflow_bridge, mlflow_search
from ._common import STATUS, Call, bad, kv, not_found, route, run_id_of, run_info, run_json
from .experiments import use_case_of

router = APIRouter()

# MLflow's own log-batch limits (the client splits bigger calls); more is refused, nothing stored.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100


def get_run_public(call: Call, run_id: int | None = None):
    rid = run_id if run_id is not None else run_id_of(call)
    try:
        return experiments.get_run(call.db, rid, actor=call.actor)
    except NotFound:
        raise not_found(f"Run '{rid}' not found.") from None


def _metric(m: Any) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise bad("every metric is an object {\"key\", \"value\", \"step\", \"timestamp\"}")
    value = m.get("value")
    if isinstance(value, str):  # protobuf JSON sends NaN and infinities as strings
        raise bad(
            f"Metric '{m.get('key')}' value '{value}' is not a finite number; MLOps Hub refuses NaN and "
            "infinity: log numbers only"
        )
    return m


@route(router, "/runs/create", ["POST"])
def create(call: Call):
    """Start a run in an experiment (use case)."""
    uc = use_case_of(call, call.need("experiment_id"))
    tags = kv(call.get("tags"))
    run = mlflow_bridge.create_run(
        call.db,
        actor=call.actor,
        use_case_id=uc.id,
        name=call.get("run_name") or tags.get("mlflow.runName"),
        tags=tags,
        user_id=str(call.get("user_id") or ""),
    )
    return {"run": run_json(run)}


@route(router, "/runs/get", ["GET"])
def get(call: Call):
    """A run with its latest metrics, params, tags, inputs and outputs."""
    return {"run": run_json(get_run_public(call))}


@route(router, "/runs/update", ["POST"])
def update(call: Call):
    """End a run (FINISHED, FAILED, KILLED) and/or rename it."""
    rid = run_id_of(call)
    get_run_public(call, rid)
    if call.get("run_name"):
        mlflow_bridge.rename_run(call.db, actor=call.actor, run_id=rid, name=str(call.get("run_name")))
    if call.get("status"):
        mlflow_bridge.end_run(call.db, actor=call.actor, run_id=rid, mlflow_status=str(call.get("status")))
    return {"run_info": run_info(get_run_public(call, rid))}


def _log(call: Call, *, params=None, metrics=None, tags=None) -> dict:
    rid = run_id_of(call)
    get_run_public(call, rid)
    mlflow_bridge.log(call.db, actor=call.actor, run_id=rid, params=params, metrics=metrics, tags=tags)
    return {}


@route(router, "/runs/log-parameter", ["POST"])
def log_parameter(call: Call):
    """One param (values are strings; a param never changes value)."""
    return _log(call, params={str(call.need("key")): str(call.get("value", default=""))})


@route(router, "/runs/log-metric", ["POST"])
def log_metric(call: Call):
    """One metric value at a step."""
    return _log(call, metrics=[_metric(call.args)])


@route(router, "/runs/set-tag", ["POST"])
def set_tag(call: Call):
    """One tag (mlflow.runName renames the run). On a run that has ended, MLflow still lets a client set a
    tag or the run's description (`mlflow.note.content`): that is an annotation, edited as on the run page."""
    key, value = str(call.need("key")), str(call.get("value", default=""))
    rid = run_id_of(call)
    run = get_run_public(call, rid)
    if STATUS.get(run.status, "RUNNING") == "RUNNING" or key == "mlflow.runName":
        return _log(call, tags={key: value})
    if key == experiments.NOTE_TAG:
        experiments.annotate_run(call.db, actor=call.actor, run_id=rid, notes=value)
    else:
        experiments.annotate_run(call.db, actor=call.actor, run_id=rid, tags={key: value})
    return {}


@route(router, "/runs/delete-tag", ["POST"])
def delete_tag(call: Call):
    """Remove one of the run's own tags (the hub's system tags stay: refused with a sentence)."""
    key = str(call.need("key"))
    rid = run_id_of(call)
    run = get_run_public(call, rid)
    if key not in run.tags:
        raise not_found(f"No tag with name: {key} in run with id {rid}")
    if key == experiments.NOTE_TAG:
        experiments.annotate_run(call.db, actor=call.actor, run_id=rid, notes="")
    else:
        experiments.annotate_run(call.db, actor=call.actor, run_id=rid, remove_tags=[key])
    return {}


@route(router, "/runs/log-batch", ["POST"])
def log_batch(call: Call):
    """Params, metrics and tags in one transaction (at most 1000 metrics, 100 params, 100 tags)."""
    metrics, params, tags = call.get("metrics") or [], call.get("params") or [], call.get("tags") or []
    if not all(isinstance(x, list) for x in (metrics, params, tags)):
        raise bad("metrics, params and tags are lists")
    if len(metrics) > MAX_METRICS or len(params) > MAX_PARAMS or len(tags) > MAX_TAGS:
        raise bad(
            f"a batch holds at most {MAX_METRICS} metrics, {MAX_PARAMS} params and {MAX_TAGS} tags "
            f"(got {len(metrics)}, {len(params)}, {len(tags)}); nothing was stored: split it over several "
            "calls (mlflow.log_metrics does)"
        )
    return _log(call, params=kv(params), metrics=[_metric(m) for m in metrics], tags=kv(tags))


@route(router, "/runs/log-inputs", ["POST"])
def log_inputs(call: Call):
    """Dataset inputs of a run (autolog, mlflow.log_input), kept with the run."""
    rid = run_id_of(call)
    get_run_public(call, rid)
    datasets, models = call.get("datasets") or [], call.get("models") or []
    if not isinstance(datasets, list) or not isinstance(models, list):
        raise bad("datasets and models are lists")
    mlflow_bridge.add_inputs(call.db, actor=call.actor, run_id=rid, datasets=datasets, models=models)
    return {}


@route(router, "/runs/outputs", ["POST"])
def log_outputs(call: Call):
    """Model outputs of a run (the logged models it produced)."""
    rid = run_id_of(call)
    get_run_public(call, rid)
    models = call.get("models") or []
    if not isinstance(models, list):
        raise bad("models is a list of {\"model_id\", \"step\"}")
    mlflow_bridge.add_outputs(call.db, actor=call.actor, run_id=rid, models=models)
    return {}


# --- search -------------------------------------------------------------------------------------------

_KEY = r"(`[^`]+`|\"[^\"]+\"|[\w.\-]+)"
_ORDER = re.compile(
    rf"^\s*(?:(metrics?|params?|parameters|tags?|attributes?|attr|run)\.)?{_KEY}\s*(ASC|DESC)?\s*$", re.I
)
_CLAUSE = re.compile(
    rf"^\s*(metrics?|params?|parameters|tags?|attributes?|attr)\.{_KEY}\s*"
    r"(<=|>=|!=|=|<|>|LIKE|ILIKE)\s*('(?:[^']*)'|\"(?:[^\"]*)\"|[-+0-9.eE]+)\s*$",
    re.I,
)
SUPPORTED_FILTER = (
    "attributes.status = 'FINISHED', attributes.run_name = '...', metrics.X > 0.9 (< <= > >= = !=), "
    "params.X = 'v', tags.X = 'v' (= != LIKE), joined by AND"
)
_ATTRS = {"status", "run_name", "run_id", "start_time", "end_time", "user_id"}


def _kind(k: str | None) -> str:
    k = (k or "attributes").lower()
    return {
        "metric": "metrics",
        "param": "params",
        "parameters": "params",
        "tag": "tags",
        "attribute": "attributes",
        "attr": "attributes",
        "run": "attributes",
    }.get(k, k)


def _value(row: dict, kind: str, key: str):
    if kind == "metrics":
        return {m["key"]: m["value"] for m in row["data"]["metrics"]}.get(key)
    if kind in ("params", "tags"):
        return {m["key"]: m["value"] for m in row["data"][kind]}.get(key)
    info = row["info"]
    return int(info["run_id"]) if key == "run_id" else info.get(key)


def _parse_filter(text: str) -> list:
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.I) if text.strip() else []:
        m = _CLAUSE.match(part)
        if not m:
            raise bad(f"filter clause {part.strip()!r} is not supported; supported: {SUPPORTED_FILTER}")
        kind, key, op, raw = _kind(m.group(1)), m.group(2).strip('`"'), m.group(3).upper(), m.group(4)
        if kind == "attributes" and key not in _ATTRS:
            raise bad(f"attribute {key!r} cannot be filtered on; use one of {', '.join(sorted(_ATTRS))}")
        if kind == "metrics" or (kind == "attributes" and key in ("start_time", "end_time")):
            if raw[0] in "'\"" or op in ("LIKE", "ILIKE"):
                raise bad(f"{kind}.{key} compares with a number, e.g. {kind}.{key} > 0.9")
            try:
                val: Any = float(raw)
            except ValueError:
                raise bad(f"{raw!r} is not a number") from None
        else:
            if raw[0] not in "'\"":
                raise bad(f"{kind}.{key} compares with a quoted string, e.g. {kind}.{key} = 'value'")
            val = raw[1:-1]
            if op not in ("=", "!=", "LIKE", "ILIKE"):
                raise bad(f"{kind}.{key} supports = != LIKE ILIKE, not {op}")
        clauses.append((kind, key, op, val))
    return clauses


def _matches(row: dict, clauses: list) -> bool:
    import fnmatch

    for kind, key, op, val in clauses:
        v = _value(row, kind, key)
        if v is None:
            return False
        if isinstance(val, float):
            v = float(v)
        if op in ("LIKE", "ILIKE"):
            pat = val.replace("%", "*").replace("_", "?")
            ok = fnmatch.fnmatchcase(str(v).lower(), pat.lower()) if op == "ILIKE" else fnmatch.fnmatchcase(str(v), pat)
        else:
            ok = {"=": v == val, "!=": v != val, "<": v < val, "<=": v <= val, ">": v > val, ">=": v >= val}[op]
        if not ok:
            return False
    return True


@route(router, "/runs/search", ["POST"])
def search(call: Call):
    """Runs of experiments, filtered (see SUPPORTED_FILTER) and ordered (metrics.X, params.X, tags.X,
    attributes.start_time/end_time/run_name/status/run_id; runs without the key last)."""
    exp_ids = call.get("experiment_ids") or []
    if not isinstance(exp_ids, list) or not exp_ids:
        raise bad("experiment_ids must list at least one experiment id")
    clauses = _parse_filter(str(call.get("filter") or ""))
    order_by = call.get("order_by") or []
    if not isinstance(order_by, list):
        raise bad("order_by is a list of clauses such as 'metrics.acc DESC'")
    specs = []
    for spec in list(order_by) + ["attributes.start_time DESC", "attributes.run_id ASC"]:
        m = _ORDER.match(str(spec))
        if not m:
            raise bad(f"Invalid order_by clause '{spec}'; use e.g. metrics.acc DESC or attributes.start_time")
        specs.append((_kind(m.group(1)), m.group(2).strip('`"'), (m.group(3) or "ASC").upper() == "DESC"))
    max_results = int(call.get("max_results") or 1000)
    if not 1 <= max_results <= 50000:
        raise bad("max_results must be between 1 and 50000")
    token = str(call.get("page_token") or "0")
    if not token.isdigit():
        raise bad(f"page_token {token!r} is not one this server handed out")
    start = int(token)
    use_cases = [use_case_of(call, eid) for eid in exp_ids]  # each one visible to the caller, or 404
    sql_clauses = [_sql_clause(c) for c in clauses]
    if mlflow_search.supports(sql_clauses, specs):  # filters, order and page in SQL: 10k runs stay fast
        found, more = mlflow_search.search_runs(
            call.db,
            use_case_ids=[uc.id for uc in use_cases],
            clauses=sql_clauses,
            order=specs,
            limit=max_results,
            offset=start,
        )
        out: dict[str, Any] = {"runs": [run_json(r) for r in found]}
        if more:
            out["next_page_token"] = str(start + max_results)
        return out
    # The rest (start/end-time filters, ordering by a param, tag, status or user): every run, in Python.
    rows = []
    for uc in use_cases:
        offset = 0
        while True:  # every run of the use case (filters on params/tags/metrics are applied here)
            page = experiments.list_runs(
                call.db, actor=call.actor, use_case_id=uc.id, limit=500, offset=offset, with_total=False
            )
            rows += [run_json(r) for r in page]
            if len(page) < 500:
                break
            offset += 500
    rows = [r for r in rows if _matches(r, clauses)]
    for kind, key, desc in reversed(specs):  # stable sorts, last key first
        present = [r for r in rows if _value(r, kind, key) is not None]
        missing = [r for r in rows if _value(r, kind, key) is None]
        present.sort(key=lambda r: _sortable(_value(r, kind, key)), reverse=desc)
        rows = present + missing
    out = {"runs": rows[start : start + max_results]}
    if start + max_results < len(rows):
        out["next_page_token"] = str(start + max_results)
    return out


def _sql_clause(clause: tuple) -> tuple:
    """attributes.status compares MLflow's names (FINISHED, KILLED, ...): as the Hub statuses they stand for."""
    kind, key, op, val = clause
    if kind == "attributes" and key == "status" and op in ("=", "!="):
        hub = [h for h, m in STATUS.items() if m == str(val)]
        return (kind, key, "IN" if op == "=" else "NOT IN", hub)
    return clause


def _sortable(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v) if math.isfinite(float(v)) else 0.0, "")
    return (1, 0.0, str(v))
