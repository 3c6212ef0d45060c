"""MLflow metric history (every logged value of one metric of a run, by step)."""

from __future__ import annotations

from fastapi import APIRouter

from ...services import experiments
from ._common import Call, bad, ms, route, run_id_of
from .runs import get_run_public

router = APIRouter()


@route(router, "/metrics/get-history", ["GET"])
def get_history(call: Call):
    """Every value of metric `metric_key` of a run, ordered by step (paged with page_token)."""
    run = get_run_public(call, run_id_of(call))
    key = str(call.need("metric_key"))
    try:
        n = int(call.get("max_results") or 25000)
        start = int(call.get("page_token") or 0)
    except ValueError:
        raise bad("max_results and page_token are numbers") from None
    stamp = ms(run.started_at or run.created_at)
    hist = experiments.metric_history(call.db, run.id, key).get(key, [])
    page = hist[start : start + max(1, n)]
    out = {"metrics": [{"key": key, "value": v, "timestamp": stamp, "step": int(st or 0)} for st, v in page]}
    if start + n < len(hist):
        out["next_page_token"] = str(start + n)
    return out
