"""Benchmark: monitoring at scale.

1. 1,000,000 logged predictions of one deployment (10 days): time to compute one window's health
   figures (volume, error rate, latency p50/p95/p99) for the last day (~100,000 rows) and for the
   whole log, in SQL on the (deployment_id, created_at) index — against loading the window's rows
   through the ORM and computing the same figures in pandas.
2. A full monitor run (health, labels/performance, KPIs, drift of 20 columns against a 20,000-row
   training reference, alert bookkeeping) on a 100,000-row window.

Run: ``.venv/bin/python benchmarks/monitoring.py`` (SQLite in a temporary folder; pass a
``--database-url postgresql://...`` of an EMPTY database to measure Postgres). The last line printed is
JSON for the ``make bench`` aggregator.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOTAL = 1_000_000
DAYS = 10
WINDOW = 100_000
REF_ROWS = 20_000
TARGET_HEALTH_S = 0.5
TARGET_RUN_S = 3.0


def frame(n: int, seed: int, drift: bool) -> pd.DataFrame:
    """10 numeric + 10 categorical columns (like benchmarks/drift.py); a few drift when asked."""
    r = np.random.default_rng(seed)
    data = {}
    for i in range(10):
        data[f"num_{i}"] = r.normal(100 + (15 if drift and i < 3 else 0), 20, n).round(3)
    cats = [f"c{j}" for j in range(8)]
    for i in range(10):
        p = np.ones(8) / 8
        if drift and i < 3:
            p = np.array([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
        data[f"cat_{i}"] = r.choice(cats, n, p=p)
    return pd.DataFrame(data)


def build(db) -> dict:
    from mlops_core.db import utcnow
    from mlops_core.models.deployments import Deployment
    from mlops_core.models.experiments import ModelVersion, RegisteredModel, Run
    from mlops_core.services import datasets, monitoring, usecases, users
    from mlops_core.services.auth import Actor

    system = Actor.system()
    for name, role in (("alice", "business"), ("dan", "data_engineer"), ("omar", "ops")):
        users.create_user(db, actor=system, username=name, password="benchmark-password", role=role)
    alice = users.actor_for_username(db, username="alice")
    dan = users.actor_for_username(db, username="dan")
    omar = users.actor_for_username(db, username="omar")
    uc = usecases.create_use_case(db, actor=alice, title="Benchmark", members={"ops": ["omar"]})
    usecases.add_kpi(db, actor=alice, use_case_id=uc.id, kind="model", metric="accuracy", direction=">=", target=0.8)
    ref = frame(REF_ROWS, 1, False)
    ref["label"] = np.random.default_rng(2).integers(0, 2, REF_ROWS)
    dv = datasets.register_version_from_frame(db, actor=dan, dataset_name="bench", frame=ref, use_case_id=uc.id)
    schema = [{"name": c, "type": "number" if c.startswith("num") else "category"} for c in ref.columns if c != "label"]
    with db.unit_of_work() as s:
        run = Run(
            use_case_id=uc.id,
            dataset_version_id=dv.id,
            status="finished",
            task="classification",
            target="label",
            config={"algorithm": "logistic_regression", "target": "label"},
        )
        s.add(run)
        s.flush()
        rm = RegisteredModel(name="bench-model", use_case_id=uc.id)
        s.add(rm)
        s.flush()
        mv = ModelVersion(
            model_id=rm.id,
            version=1,
            run_id=run.id,
            use_case_id=uc.id,
            dataset_version_id=dv.id,
            artifact_key="none",
            task="classification",
            target="label",
            input_schema=schema,
        )
        s.add(mv)
        s.flush()
        dep = Deployment(name="bench", use_case_id=uc.id, environment="production", model_version_id=mv.id)
        s.add(dep)
        s.flush()
        dep_id, mv_id = dep.id, mv.id
    monitoring.configure_monitor(
        db,
        actor=omar,
        deployment_name="bench",
        window_kind="last_n",
        window_size=WINDOW,
        schedule_seconds=None,
        retraining_policy="off",
    )

    # 1M rows: the last WINDOW carry full inputs (drifted), older ones too but as one shared JSON text
    # (their inputs are never read by the health query; writing 1M distinct JSON documents only costs time).
    now = utcnow()
    start = now - timedelta(days=DAYS)
    step = (now - start) / TOTAL
    rng = np.random.default_rng(3)
    lat = rng.gamma(3.0, 6.0, TOTAL).round(2)
    err = rng.random(TOTAL) < 0.01
    cur = frame(WINDOW, 4, True)
    cur_json = [json.dumps(r) for r in cur.to_dict("records")]
    old_json = json.dumps(frame(1, 5, False).to_dict("records")[0])
    labels = rng.integers(0, 2, TOTAL)
    t0 = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cur_ = raw.cursor()
        ph = "?" if db.is_sqlite else "%s"
        sql = (
            f"INSERT INTO predictions (request_id, deployment_id, model_version_id, created_at, source, inputs, "
            f"prediction, latency_ms, status, error, label, labelled_at) VALUES "
            f"({', '.join([ph] * 12)})"
        )
        batch = []
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        for i in range(TOTAL):
            at = start + step * i
            in_window = i >= TOTAL - WINDOW
            e = bool(err[i])
            labelled = (not e) and (i % 3 == 0)
            ts = at.strftime(fmt) if db.is_sqlite else at
            lts = (at + timedelta(hours=6)) if labelled else None
            if lts is not None and db.is_sqlite:
                lts = lts.strftime(fmt)
            batch.append(
                (
                    f"r{i}",
                    dep_id,
                    mv_id,
                    ts,
                    "api",
                    None if e else (cur_json[i - (TOTAL - WINDOW)] if in_window else old_json),
                    None if e else json.dumps({"prediction": int(labels[i] if i % 5 else 1 - labels[i])}),
                    float(lat[i]),
                    "error" if e else "ok",
                    "bad" if e else "",
                    json.dumps(int(labels[i])) if labelled else None,
                    lts,
                )
            )
            if len(batch) == 50_000:
                cur_.executemany(sql, batch)
                batch.clear()
        if batch:
            cur_.executemany(sql, batch)
        raw.commit()
    finally:
        raw.close()
    print(f"logged {TOTAL:,} predictions in {time.perf_counter() - t0:.1f} s")
    return {"deployment_id": dep_id, "now": now}


def orm_baseline(db, dep_id, window) -> float:
    from sqlmodel import select

    from mlops_core.models.deployments import Prediction

    t0 = time.perf_counter()
    with db.read() as s:
        rows = s.exec(
            select(Prediction).where(
                Prediction.deployment_id == dep_id,
                Prediction.created_at >= window.start,
                Prediction.created_at <= window.end,
            )
        ).all()
        df = pd.DataFrame({"lat": [r.latency_ms for r in rows], "status": [r.status for r in rows]})
    _ = (len(df), (df["status"] != "ok").mean(), df["lat"].quantile([0.5, 0.95, 0.99]))
    return time.perf_counter() - t0


def live_rows_baseline(db, dep_id, now) -> float:
    """The live chart as first written: every row of the last 24 h through the ORM, bucketed in Python."""
    from sqlmodel import select

    from mlops_core.models.deployments import Prediction

    t0 = time.perf_counter()
    start = now - timedelta(hours=24)
    width = timedelta(hours=1)
    with db.read() as s:
        rows = s.exec(
            select(Prediction.created_at, Prediction.status, Prediction.latency_ms).where(
                Prediction.deployment_id == dep_id, Prediction.created_at >= start
            )
        ).all()
    lat: dict[int, list[float]] = {}
    for created, status, latency in rows:
        i = min(23, max(0, int((created.replace(tzinfo=start.tzinfo) - start) / width)))
        lat.setdefault(i, []).append(latency)
    _ = {i: (len(v), float(np.percentile(v, 95))) for i, v in lat.items()}
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind
    os.environ["ARTIFACT_ROOT"] = str(tmp / "artifacts")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'hub.db'}"
    from mlops_core.config import reload_settings
    from mlops_core.db import get_database, upgrade_schema
    from mlops_core.services import monitoring

    reload_settings()
    db = get_database()
    upgrade_schema(db)
    info = build(db)
    dep_id, now = info["deployment_id"], info["now"]

    day = monitoring.Window(start=now - timedelta(days=1), end=now)
    whole = monitoring.Window(start=None, end=now)
    timings = {}
    for label, window in (("day", day), ("all", whole)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with db.read() as s:
                h = monitoring.health_figures(s, deployment_id=dep_id, window=window)
            best = min(best, time.perf_counter() - t0)
        timings[label] = (best, h)
        print(
            f"health of the last {label} ({h.volume:,} rows): {best * 1000:.0f} ms — error rate "
            f"{h.error_rate:.2%}, p50/p95/p99 {h.latency_p50_ms:.1f}/{h.latency_p95_ms:.1f}/"
            f"{h.latency_p99_ms:.1f} ms"
        )
    base = orm_baseline(db, dep_id, day)
    print(f"baseline (ORM rows + pandas) for the last day: {base * 1000:.0f} ms")

    # The Deployment monitoring page's live chart: the last 24 h in hourly buckets (~100,000 rows here).
    live_best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        live = monitoring.live_health(db, deployment_name="bench", hours=24, buckets=24)
        live_best = min(live_best, time.perf_counter() - t0)
    live_base = live_rows_baseline(db, dep_id, now)
    print(
        f"live chart, last 24 h in 24 buckets ({sum(b.volume for b in live):,} rows): {live_best * 1000:.0f} ms; "
        f"baseline (ORM rows bucketed in Python): {live_base * 1000:.0f} ms"
    )

    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        summary = monitoring.run_monitor(db, deployment_name="bench")
        runs.append(time.perf_counter() - t0)
    c = summary["checks"][0]
    print(
        f"full monitor run on a {c['n_rows']:,}-row window: best {min(runs):.2f} s (first {runs[0]:.2f} s, "
        f"incl. loading the reference); drift {c['dataset_drifted']} ({len(c['drifted_columns'])} columns), "
        f"coverage {c['labels']['coverage']:.0%}, accuracy {c['metrics'].get('accuracy', float('nan')):.3f}"
    )

    print(
        f"machine load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on "
        f"{os.cpu_count()} CPUs — figures taken on a busy machine are not comparable"
    )
    figures = [
        {
            "figure": "health figures, 1-day window of 1M logged predictions",
            "ours": round(timings["day"][0], 4),
            "baseline": round(base, 4),
            "baseline_name": "ORM rows + pandas",
            "unit": "s",
            "target": f"< {TARGET_HEALTH_S} s",
            "met": bool(timings["day"][0] < TARGET_HEALTH_S),
        },
        {
            "figure": "health figures, whole log of 1M predictions",
            "ours": round(timings["all"][0], 4),
            "baseline": None,
            "baseline_name": "",
            "unit": "s",
            "target": "< 3 s",
            "met": bool(timings["all"][0] < 3.0),
        },
        {
            "figure": "live chart: last 24 h of 1M logged predictions in 24 buckets",
            "ours": round(live_best, 4),
            "baseline": round(live_base, 4),
            "baseline_name": "ORM rows bucketed in Python",
            "unit": "s",
            "target": f"< {TARGET_HEALTH_S} s",
            "met": bool(live_best < TARGET_HEALTH_S),
        },
        {
            "figure": "full monitor run, 100k-row window x 20 columns",
            "ours": round(min(runs), 3),
            "baseline": None,
            "baseline_name": "",
            "unit": "s",
            "target": f"< {TARGET_RUN_S} s",
            "met": bool(min(runs) < TARGET_RUN_S),
        },
    ]
    print(json.dumps({"benchmark": "monitoring", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
