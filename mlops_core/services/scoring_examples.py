"""A typical record for a served model and a curl command that runs as shown (issue 15, problem 15).

The record holds each input column's typical training value: the median of a numeric column, the most
frequent value of a category or flag, read from the training dataset version's stored profile (nothing is
recomputed). Read-only, for every logged-in role."""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..config import get_settings
from ..db import Database
from . import datasets, registry


def scoring_base_url() -> str:
    """Where the scoring service listens, as a client on this machine reaches it."""
    s = get_settings()
    host = s.mlops_api_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reading the bind address, not binding
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{s.mlops_api_port}"


def typical_record(db: Database, *, model_version_id: int) -> dict[str, Any]:
    mv = registry.get_model_version(db, model_version_id)
    profile = datasets.get_profile(db, mv.dataset_version_id) if mv.dataset_version_id else None
    by_name = {c.name: c for c in (profile.columns if profile else [])}
    record: dict[str, Any] = {}
    for col in mv.input_schema:
        name, kind = col["name"], col["type"]
        p = by_name.get(name)
        if kind in ("integer", "number"):
            mid = None
            if p is not None:
                mid = (p.quantiles or {}).get("p50")
                mid = p.mean if mid is None else mid
            mid = 0.0 if mid is None else float(mid)
            record[name] = int(round(mid)) if kind == "integer" else round(mid, 4)
        elif kind == "category":
            cats = [str(c) for c in col.get("categories") or []]
            top = [t.value for t in (p.top or [])] if p is not None else []
            record[name] = next((t for t in top if t in cats), cats[0] if cats else "")
        elif kind == "boolean":
            top = [t.value.lower() for t in (p.top or [])] if p is not None and p.top else []
            record[name] = bool(top) and top[0] in ("true", "1", "yes")
        else:
            top = [t.value for t in (p.top or [])] if p is not None and p.top else []
            record[name] = top[0] if top else ""
    return record


def curl_command(*, deployment_name: str, api_key: str, record: dict[str, Any]) -> str:
    url = f"{scoring_base_url()}/v1/deployments/{deployment_name}/predict"
    body = json.dumps({"records": [record]})
    return (
        f"curl -s -X POST {shlex.quote(url)} \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + api_key)} -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
