"""Read-only views for the monitoring pages: the overview lights, drift over time, live health.

All straight from SQL over the stored checks and the prediction log; nothing is recomputed.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import col, func, select

from ...db import Database, utcnow
from ...models.deployments import Deployment, Prediction
from ...models.estimates import MonitorCheckEstimate
from ...models.monitoring import (
    Alert,
    DeploymentStatusPublic,
    DriftPointPublic,
    HealthBucketPublic,
    MonitorCheck,
    MonitorCheckColumn,
)
from ...monitoring.figures import finite
from .._common import aware, deployment_by_name


# A request the scoring service refused as the client's mistake: its logged error starts "4xx: ".
CLIENT_ERROR = "4__:%"


def drift_history(db: Database, *, deployment_name: str, limit: int = 200) -> list[DriftPointPublic]:
    """Per-column drift of the latest checks, straight from the stored scores (nothing recomputed)."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        ids = s.exec(
            select(MonitorCheck.id)
            .where(MonitorCheck.deployment_id == dep.id)
            .order_by(col(MonitorCheck.started_at).desc())
            .limit(limit)
        ).all()
        if not ids:
            return []
        rows = s.exec(
            select(
                MonitorCheck.id,
                MonitorCheck.window_end,
                MonitorCheckColumn.column,
                MonitorCheckColumn.method,
                MonitorCheckColumn.score,
                MonitorCheckColumn.threshold,
                MonitorCheckColumn.drifted,
            )
            .join(MonitorCheckColumn, col(MonitorCheckColumn.check_id) == MonitorCheck.id)
            .where(col(MonitorCheck.id).in_(ids))
            .order_by(MonitorCheck.window_end)
        ).all()
        return [
            DriftPointPublic(
                check_id=r[0], at=aware(r[1]), column=r[2], method=r[3], score=r[4], threshold=r[5], drifted=bool(r[6])
            )
            for r in rows
        ]


def overview(db: Database) -> list[DeploymentStatusPublic]:
    """Every deployment with its latest check and open alerts, in a handful of SQL queries."""
    with db.read() as s:
        deps = s.exec(select(Deployment).order_by(Deployment.name)).all()
        latest_ids = s.exec(select(func.max(MonitorCheck.id)).group_by(MonitorCheck.deployment_id)).all()
        latest = (
            {
                c.deployment_id: c
                for c in s.exec(
                    select(MonitorCheck).where(col(MonitorCheck.id).in_([i for i in latest_ids if i is not None]))
                ).all()
            }
            if latest_ids
            else {}
        )
        # the estimated KPI verdict of those checks (issue 17): the light when labels are too few for a realized one
        estimated = (
            dict(
                s.exec(
                    select(MonitorCheckEstimate.check_id, MonitorCheckEstimate.kpi_status).where(
                        col(MonitorCheckEstimate.check_id).in_([c.id for c in latest.values()])
                    )
                ).all()
            )
            if latest
            else {}
        )
        open_counts = dict(
            s.exec(
                select(Alert.deployment_id, func.count())
                .where(col(Alert.state) != "resolved")
                .group_by(Alert.deployment_id)
            ).all()
        )
        # segments below a KPI while the whole window meets it: "met overall; 2 segments missed"
        missed_segments: dict[int, set[str]] = {}
        for dep_id, key in s.exec(
            select(Alert.deployment_id, Alert.dedupe_key).where(
                Alert.kind == "segment_kpi_missed", col(Alert.state) != "resolved"
            )
        ).all():
            # key: segment_kpi_missed:<deployment id>:<column>=<segment>:<kpi>
            missed_segments.setdefault(dep_id, set()).add(key.split(":", 2)[-1].rsplit(":", 1)[0])
        out = []
        for d in deps:
            c = latest.get(d.id)
            if c is None:
                drift = kpis = health = "grey"
            else:
                drift = (
                    "grey"
                    if c.dataset_drifted is None
                    else ("red" if c.dataset_drifted else ("amber" if (c.n_drifted_columns or 0) > 0 else "green"))
                )
                kpis = {"met": "green", "warning": "amber", "missed": "red"}.get(c.kpi_status, "grey")
                if c.kpi_status == "unknown" and estimated.get(c.id) in ("met", "warning", "missed"):
                    kpis = f"estimated_{estimated[c.id]}"  # a badge word of its own: "estimated missed"
                health = {"ok": "green", "breach": "red"}.get(c.health_status, "grey")
            out.append(
                DeploymentStatusPublic(
                    deployment=d.name,
                    environment=d.environment,
                    model_version_id=d.model_version_id,
                    last_check_at=aware(c.started_at) if c else None,
                    drift=drift,
                    kpis=kpis,
                    health=health,
                    open_alerts=int(open_counts.get(d.id, 0)),
                    n_rows=c.n_rows if c else 0,
                    drift_share=c.drift_share if c else None,
                    kpi_status=c.kpi_status if c else "unknown",
                    error_rate=(c.health or {}).get("error_rate") if c else None,
                    latency_p95_ms=(c.health or {}).get("latency_p95_ms") if c else None,
                    segments_missed=len(missed_segments.get(d.id, ())),
                )
            )
        return out


def live_health(db: Database, *, deployment_name: str, hours: int = 24, buckets: int = 24) -> list[HealthBucketPublic]:
    """Volume, error rate and p95 latency per time bucket over the last `hours` (the live chart).

    The bucket of each prediction is computed in SQL from its timestamp. Postgres then groups and takes the
    percentile in SQL (a few dozen rows come back); SQLite, which has no percentile function, streams
    (bucket, error flag, latency) through Core into numpy — no ORM rows, no datetime parsing per row."""
    end = utcnow()
    start = end - timedelta(hours=hours)
    width_s = hours * 3600.0 / buckets
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        conn = s.connection()
        if conn.dialect.name == "postgresql":
            conds = (Prediction.deployment_id == dep.id, Prediction.created_at >= start)
            is_err = sa.case((Prediction.status != "ok", 1), else_=0)
            # The scoring service logs a refused request with its HTTP status first ("401: ..."): 4xx is the
            # client's mistake, not the service failing.
            is_client = sa.case((sa.and_(Prediction.status != "ok", Prediction.error.like(CLIENT_ERROR)), 1), else_=0)
            # timestamps are stored as UTC without a zone: epoch of the nominal value = UTC epoch
            bucket = sa.func.floor((sa.extract("epoch", Prediction.created_at) - start.timestamp()) / width_s)
            rows = conn.execute(
                select(
                    bucket,
                    func.count(),
                    func.sum(is_err),
                    sa.func.percentile_cont(0.95).within_group(Prediction.latency_ms),
                    func.sum(is_client),
                )
                .where(*conds)
                .group_by(bucket)
            ).all()
            out = _empty_buckets(start, width_s, buckets)
            for b, n, n_err, p95, n_client in rows:
                o = out[min(buckets - 1, max(0, int(b)))]
                o["volume"] += int(n)
                o["errors"] += int(n_err or 0)
                o["client_errors"] += int(n_client or 0)
                p = finite(p95)  # (two groups share a bucket only when clamped at the edges: keep the worse)
                if p is not None:
                    o["latency_p95_ms"] = p if o["latency_p95_ms"] is None else max(o["latency_p95_ms"], p)
        else:
            # julianday() of the stored UTC text (2440587.5 is the Julian day of the Unix epoch); read with the
            # driver's cursor, as _sqlite_latencies does: SQLAlchemy's per-row result objects would dominate.
            to_db = conn.dialect.type_descriptor(sa.DateTime()).bind_processor(conn.dialect) or (lambda v: v)
            cur = conn.connection.driver_connection.cursor()
            try:
                cur.execute(
                    "SELECT CAST(((julianday(created_at) - 2440587.5) * 86400.0 - ?) / ? AS INTEGER), "
                    "status != 'ok', latency_ms, (status != 'ok' AND error LIKE ?) "
                    "FROM predictions WHERE deployment_id = ? AND created_at >= ?",
                    [start.timestamp(), width_s, CLIENT_ERROR, dep.id, to_db(start)],
                )
                rows = cur.fetchall()
            finally:
                cur.close()
            out = _empty_buckets(start, width_s, buckets)
            if rows:
                arr = np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=4 * len(rows)).reshape(-1, 4)
                b = np.clip(arr[:, 0].astype(np.int64), 0, buckets - 1)
                volume = np.bincount(b, minlength=buckets)
                errors = np.bincount(b, weights=arr[:, 1], minlength=buckets)
                client = np.bincount(b, weights=arr[:, 3], minlength=buckets)
                order = np.lexsort((arr[:, 2], b))
                lat_sorted, b_sorted = arr[order, 2], b[order]
                bounds = np.searchsorted(b_sorted, np.arange(buckets + 1))
                for i in range(buckets):
                    out[i]["volume"] = int(volume[i])
                    out[i]["errors"] = int(errors[i])
                    out[i]["client_errors"] = int(client[i])
                    if bounds[i + 1] > bounds[i]:
                        out[i]["latency_p95_ms"] = float(np.percentile(lat_sorted[bounds[i] : bounds[i + 1]], 95))
    return [_bucket(o) for o in out]


def _bucket(o: dict[str, Any]) -> HealthBucketPublic:
    n, client = o["volume"], o["client_errors"]
    server = o["errors"] - client
    return HealthBucketPublic(
        **o,
        server_errors=server,
        error_rate=o["errors"] / n if n else None,
        client_error_rate=client / n if n else None,
        server_error_rate=server / n if n else None,
    )


def _empty_buckets(start: datetime, width_s: float, buckets: int) -> list[dict[str, Any]]:
    return [
        {
            "start": start + timedelta(seconds=i * width_s),
            "volume": 0,
            "errors": 0,
            "client_errors": 0,
            "latency_p95_ms": None,
        }
        for i in range(buckets)
    ]
