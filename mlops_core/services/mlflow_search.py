"""MLflow `runs/search` in SQL: filters on metrics, params, tags and the plain attributes, ordering by metrics and
the time/name/id attributes, and the page (max_results + page_token offset) all run in the database, so a use
case with 10,000 runs answers "top 10 by a metric" by reading 10 runs, not all of them.

The MLflow route parses the request (serving/mlflow/runs.py) into clauses `(kind, key, op, value)` and order
specs `(kind, key, descending)`; `supports()` says whether every one of them has a SQL form here. Those that do
not (start/end-time filters, ordering by a param, tag, status or user) keep the route's Python path.

Semantics are the route's: a run without the key never matches a filter and sorts last whatever the
direction; metrics are the latest value of each key; params/tags compare as text; `mlflow.runName` and
`mlflow.user` tags are the run's name and creator unless the run carries such a tag itself.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from ..db import Database
from ..models.experiments import RunPublic
from . import experiments

Clause = tuple[str, str, str, Any]  # kind, key, op, value ("IN"/"NOT IN" + list for attributes.status)
Order = tuple[str, str, bool]  # kind, key, descending

_SQL_ATTR_FILTERS = {"status", "run_name", "run_id", "user_id"}
_SQL_ATTR_ORDERS = {"start_time", "end_time", "run_name", "run_id"}
_OPS = {"=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"}
_SYNTHETIC_TAGS = {"mlflow.runName": "name", "mlflow.user": "created_by"}


def supports(clauses: Iterable[Clause], order: Iterable[Order]) -> bool:
    """True when every filter clause and order spec has a SQL form here."""
    for kind, key, op, _ in clauses:
        if op not in _OPS:
            return False
        if kind == "attributes" and (key not in _SQL_ATTR_FILTERS or (key == "status") != (op in ("IN", "NOT IN"))):
            return False
        if kind not in ("metrics", "params", "tags", "attributes"):
            return False
    for kind, key, _ in order:
        if not (kind == "metrics" or (kind == "attributes" and key in _SQL_ATTR_ORDERS)):
            return False
    return True


def _text(col: Any, key: str) -> Any:
    """The JSON object's value at `key` as text (NULL when the key is missing), on SQLite and Postgres."""
    return sa.cast(col[key].as_string(), sa.String)


def _compare(expr: Any, op: str, value: Any, *, sqlite: bool) -> Any:
    if op in ("LIKE", "ILIKE"):
        if op == "ILIKE":
            return sa.func.lower(expr).like(str(value).lower())
        if sqlite:  # SQLite's LIKE ignores case; MLflow's LIKE does not: GLOB with the same pattern
            glob = "".join("*" if c == "%" else "?" if c == "_" else f"[{c}]" if c in "*?[" else c for c in value)
            return expr.op("GLOB")(glob)
        return expr.like(value)
    return {
        "=": lambda: expr == value,
        "!=": lambda: expr != value,
        "<": lambda: expr < value,
        "<=": lambda: expr <= value,
        ">": lambda: expr > value,
        ">=": lambda: expr >= value,
    }[op]()


def search_runs(
    db: Database,
    *,
    use_case_ids: Sequence[int],
    clauses: Sequence[Clause],
    order: Sequence[Order],
    limit: int,
    offset: int = 0,
) -> tuple[list[RunPublic], bool]:
    """One page of the runs of `use_case_ids` matching every clause, in `order` (then by id), and whether more
    follow. The caller checked that the actor may see these use cases and that `supports()` holds."""
    runs_t, latest = experiments.RUNS, experiments._LATEST
    sqlite = db.is_sqlite
    with db.read() as s:
        stale = experiments._stale(s)
    if stale:  # rare: a worker died or a queued job was cancelled elsewhere (as list_runs does)
        experiments._sync_with_jobs(db, stale=stale)
    q = sa.select(runs_t.c.id).where(runs_t.c.use_case_id.in_([int(i) for i in use_case_ids]))
    for kind, key, op, value in clauses:
        if kind == "metrics":
            m = latest.alias()
            q = q.where(
                sa.exists(
                    sa.select(sa.literal(1))
                    .select_from(m)
                    .where(
                        m.c.run_id == runs_t.c.id, m.c.key == key, _compare(m.c.value, op, float(value), sqlite=sqlite)
                    )
                )
            )
        elif kind in ("params", "tags"):
            expr = _text(runs_t.c[kind], key)
            if kind == "tags" and key in _SYNTHETIC_TAGS:
                expr = sa.func.coalesce(expr, runs_t.c[_SYNTHETIC_TAGS[key]])
            q = q.where(expr.is_not(None), _compare(expr, op, str(value), sqlite=sqlite))
        elif key == "status":
            q = q.where(runs_t.c.status.in_(list(value)) if op == "IN" else runs_t.c.status.not_in(list(value)))
        elif key == "run_id":
            if op in ("LIKE", "ILIKE") or not str(value).isdigit():
                q = q.where(_compare(sa.cast(runs_t.c.id, sa.String), op, str(value), sqlite=sqlite))
            else:
                q = q.where(_compare(runs_t.c.id, op, int(value), sqlite=sqlite))
        else:
            col = runs_t.c.name if key == "run_name" else runs_t.c.created_by
            q = q.where(_compare(col, op, str(value), sqlite=sqlite))
    order_terms: list[Any] = []
    for kind, key, desc in order:
        if kind == "metrics":
            m = latest.alias()
            q = q.outerjoin(m, sa.and_(m.c.run_id == runs_t.c.id, m.c.key == key))
            expr = m.c.value
        elif key == "start_time":
            expr = sa.func.coalesce(runs_t.c.started_at, runs_t.c.created_at)
        elif key == "end_time":
            expr = runs_t.c.finished_at
        elif key == "run_name":
            expr = runs_t.c.name
        else:
            expr = runs_t.c.id
        order_terms += [expr.is_(None), expr.desc() if desc else expr.asc()]  # a run without the key sorts last
    q = q.order_by(*order_terms, runs_t.c.id.asc()).offset(max(0, int(offset))).limit(int(limit) + 1)
    with db.read() as s:
        ids = [int(r[0]) for r in s.connection().execute(q).all()]
        more = len(ids) > limit
        ids = ids[:limit]
        if not ids:
            return [], more
        rows = experiments._core_rows(s, sa.select(runs_t).where(runs_t.c.id.in_(ids)))
        by_id = {r.id: r for r in rows}
        publics = experiments._publics(s, [by_id[i] for i in ids if i in by_id])
    return publics, more
