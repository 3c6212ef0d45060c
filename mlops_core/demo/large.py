"""The large workspace (`python -m mlops_core demo --scale large`, issue 8): a company-sized
workspace to prove every page stays usable — 50 use cases with KPIs, 200 dataset versions,
10,000 runs with 20 metrics each, 50 model versions, 20 deployments, 1,000,000 logged
predictions over 30 days (some labelled), 5,000 audit events, monitors, checks and alerts.

It runs after the small demo seeders. Rows are written with SQLAlchemy Core `executemany`
in batches (one transaction per batch) so it takes minutes, not hours, on SQLite and Postgres.
Artifacts are shared, not copied: dataset versions point at the demo's real customers Parquet
files (so they open on the Dataset page) and model versions at the demo champion's skops file.
Rows that need a realistic shape (runs, model versions, monitor checks, alerts) are cloned from
the small demo's rows when they exist. `factor` scales every size (a test uses 1/1000).
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import Table, func, insert, select

from .. import artifacts
from ..config import get_settings
from ..db import Database, utcnow
from ..models.audit import AuditEvent
from ..models.datasets import Dataset, DatasetSchema, DatasetVersion
from ..models.deployments import Deployment, DeploymentEvent, Prediction
from ..models.experiments import ModelAlias, ModelVersion, RegisteredModel, Run, RunLatestMetric, RunMetric
from ..models.monitoring import Alert, Monitor, MonitorCheck, MonitorCheckColumn
from ..models.usecases import Kpi, UseCase, UseCaseMember
from ..services.usecases import STATUSES
from .customers import FEATURES, TARGET, make_customers
from .large_estimates import seed_estimates

SIZES = {
    "use_cases": 50,
    "dataset_versions": 200,
    "runs": 10_000,
    "model_versions": 50,
    "deployments": 20,
    "predictions": 1_000_000,
    "audit_events": 5_000,
    "alerts": 40,
}
METRICS_PER_RUN = 20
VERSIONS_PER_DATASET = 5
VERSIONS_PER_MODEL = 5
DAYS = 30
BATCH = 10_000
MARK = "[large]"  # in titles/names, so a second call notices the large workspace exists

TEST_METRICS = [
    "accuracy",
    "f1",
    "log_loss",
    "precision",
    "recall",
    "roc_auc",
    "balanced_accuracy",
    "average_precision",
    "brier_score",
    "mcc",
]
ALGORITHMS = {
    "logistic_regression": lambda r: {"C": r.choice([0.1, 0.3, 1.0, 3.0]), "max_iter": 1000},
    "random_forest": lambda r: {"n_estimators": r.choice([50, 100, 200]), "max_depth": r.choice([4, 8, 12])},
    "gradient_boosting": lambda r: {"n_estimators": r.choice([50, 100]), "learning_rate": r.choice([0.05, 0.1])},
    "hist_gradient_boosting": lambda r: {"max_iter": r.choice([80, 160]), "learning_rate": r.choice([0.05, 0.1])},
}
DOMAINS = [
    "Customer churn",
    "Invoice fraud",
    "Demand forecast",
    "Credit risk",
    "Lead scoring",
    "Claims triage",
    "Price elasticity",
    "Ticket routing",
    "Stock-out risk",
    "Late delivery",
]
REGIONS = ["EMEA", "Americas", "APAC", "Nordics", "Iberia"]
AUDIT_ACTIONS = [
    ("run.start", "run"),
    ("dataset.register", "dataset_version"),
    ("model.register", "model_version"),
    ("deployment.deploy", "deployment"),
    ("use_case.update", "use_case"),
    ("kpi.create", "kpi"),
    ("comment.add", "use_case"),
    ("alert.acknowledge", "alert"),
    ("user.login", "user"),
]


def _n(name: str, factor: float) -> int:
    return max(1, round(SIZES[name] * factor))


def _t(model) -> Table:
    return model.__table__


def _say(ctx, msg: str) -> None:
    print(f"large: {msg}", flush=True)


def _insert(db: Database, table: Table, rows: list[dict[str, Any]], *, ids: bool = False) -> list[int]:
    """Insert `rows` in batches, one transaction each; with ids=True return the new ids in row order."""
    out: list[int] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        with db.unit_of_work() as s:
            if ids:
                stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
                out.extend(s.execute(stmt, chunk).scalars().all())
            else:
                s.execute(insert(table), chunk)
    return out


def _stream(db: Database, table: Table, rows: Iterable[dict[str, Any]], *, total: int, label: str, ctx) -> int:
    """Insert a generated stream of rows in batches, printing progress."""
    n, batch, t0 = 0, [], time.monotonic()
    step = max(total // 10, BATCH)
    next_report = step
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            _insert(db, table, batch)
            n += len(batch)
            batch = []
            if n >= next_report:
                _say(ctx, f"{label}: {n:,}/{total:,} ({time.monotonic() - t0:.0f}s)")
                next_report += step
    if batch:
        _insert(db, table, batch)
        n += len(batch)
    return n


def _row(db: Database, table: Table, *where) -> dict[str, Any] | None:
    with db.read() as s:
        r = s.execute(select(table).where(*where).order_by(table.c.id).limit(1)).mappings().first()
    return dict(r) if r else None


def _clone(template: dict[str, Any] | None, **changes) -> dict[str, Any]:
    row = {k: v for k, v in (template or {}).items() if k != "id"}
    row.update(changes)
    return row


def seed_large(db: Database, ctx, factor: float | None = None) -> dict[str, int]:
    """Add the large workspace; returns the number of rows written per kind (also printed).

    `factor` scales every size (default: env MLOPS_LARGE_FACTOR, else 1 = the sizes of issue 8)."""
    if factor is None:
        factor = float(get_settings().large_factor or 1.0)

    t_start = time.monotonic()
    with db.read() as s:
        if s.execute(
            select(func.count()).select_from(_t(UseCase)).where(_t(UseCase).c.title.like(f"%{MARK}%"))
        ).scalar_one():
            ctx.lines.append("large workspace: already generated in this database; left as it is")
            return {}
    rnd = random.Random(8)  # noqa: S311 - reproducible demo data, not a secret
    now = utcnow()
    counts: dict[str, int] = {}
    users = {u: a for u, a in ctx.actors.items()}

    uc_ids = _use_cases(db, ctx, rnd, factor, now, users, counts)
    versions = _datasets(db, ctx, rnd, factor, now, uc_ids, users, counts)
    runs = _runs(db, ctx, rnd, factor, now, uc_ids, versions, users, counts)
    mv_ids = _models(db, ctx, rnd, factor, now, runs, users, counts)
    dep_ids = _deployments(db, ctx, rnd, factor, now, mv_ids, users, counts)
    _predictions(db, ctx, rnd, factor, now, dep_ids, counts)
    _monitoring(db, ctx, rnd, factor, now, dep_ids, counts)

    n_audit = _n("audit_events", factor)
    actors = list(users.values())
    audit_rows = []
    for i in range(n_audit):
        action, etype = AUDIT_ACTIONS[i % len(AUDIT_ACTIONS)]
        a = actors[i % len(actors)]
        audit_rows.append(
            {
                "at": now - timedelta(seconds=rnd.uniform(0, DAYS * 86400)),
                "actor_id": a.id,
                "actor_username": a.username,
                "action": action,
                "entity_type": etype,
                "entity_id": str(rnd.randint(1, 500)),
                "summary": f"{action} (large workspace)",
                "before": None,
                "after": {"generated": True},
            }
        )
    counts["audit_events"] = _stream(db, _t(AuditEvent), audit_rows, total=n_audit, label="audit events", ctx=ctx)

    _analyze(db, ctx)
    took = time.monotonic() - t_start
    summary = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items())
    ctx.lines.append(f"large workspace ({took:.0f}s): {summary}")
    _say(ctx, f"done in {took:.0f}s")
    return counts


def _analyze(db: Database, ctx) -> None:
    """Refresh the planner's statistics after the bulk load. Without them SQLite picks the
    (key, value) index of run_latest_metrics for "best metric of a use case" and scans every run's
    metric (48 ms per use case at 10,000 runs instead of 3 ms): the portfolio, which asks once per
    use case, took seconds. Postgres' autovacuum would get there eventually; do it now."""
    t0 = time.monotonic()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    _say(ctx, f"planner statistics refreshed ({time.monotonic() - t0:.0f}s)")


# --- stages ---------------------------------------------------------------------------------


def _use_cases(db, ctx, rnd, factor, now, users, counts) -> list[int]:
    n = _n("use_cases", factor)
    statuses = [s for s in STATUSES if s != "retired"]
    rows = []
    for i in range(n):
        rows.append(
            {
                "title": f"{DOMAINS[i % len(DOMAINS)]} {REGIONS[(i // len(DOMAINS)) % len(REGIONS)]} {i + 1:02d} {MARK}",
                "problem_statement": "Generated for the large-workspace benchmark.",
                "objectives": "Keep every page usable at company size.",
                "status": statuses[i % len(statuses)],
                "owner_id": users["alice"].id,
                "priority": "medium",
                "version": 1,
                "created_by_id": users["alice"].id,
                "created_at": now - timedelta(days=60 - i % 30),
                "updated_at": now,
                "updated_by": "alice",
            }
        )
    ids = _insert(db, _t(UseCase), rows, ids=True)
    members, kpis = [], []
    for uc in ids:
        for username, role in (
            ("alice", "business"),
            ("dan", "data_engineer"),
            ("sara", "data_scientist"),
            ("omar", "ops"),
        ):
            members.append({"use_case_id": uc, "user_id": users[username].id, "role": role})
        kpis += [
            {
                "use_case_id": uc,
                "kind": "model",
                "name": "Ranking quality",
                "metric": "roc_auc",
                "direction": ">=",
                "target": 0.8,
                "warning": 0.03,
                "unit": "",
                "baseline": None,
                "created_by": "alice",
                "created_at": now,
            },
            {
                "use_case_id": uc,
                "kind": "model",
                "name": "Catch rate",
                "metric": "recall",
                "direction": ">=",
                "target": 0.6,
                "warning": 0.05,
                "unit": "",
                "baseline": None,
                "created_by": "alice",
                "created_at": now,
            },
            {
                "use_case_id": uc,
                "kind": "business",
                "name": "Monthly saving",
                "metric": None,
                "direction": ">=",
                "target": 100000.0,
                "warning": None,
                "unit": "EUR",
                "baseline": 20000.0,
                "created_by": "alice",
                "created_at": now,
            },
        ]
    _insert(db, _t(UseCaseMember), members)
    _insert(db, _t(Kpi), kpis)
    counts["use_cases"], counts["kpis"] = len(ids), len(kpis)
    _say(ctx, f"{len(ids)} use cases, {len(kpis)} KPIs")
    return ids


def _fallback_parquet() -> dict[str, Any]:
    """A small real Parquet artifact when the small demo's customers versions are missing (tests)."""
    frame = make_customers(200, seed=8)
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    key = artifacts.put_bytes(f"datasets/{digest[:2]}/{digest}.parquet", data)
    kinds = {"i": "integer", "f": "number", "b": "boolean"}
    columns = [{"name": c, "type": kinds.get(frame[c].dtype.kind, "category")} for c in frame.columns]
    return {
        "artifact_key": key,
        "profile_key": None,
        "sample_key": None,
        "n_rows": len(frame),
        "n_cols": frame.shape[1],
        "size_bytes": len(data),
        "columns": columns,
        "status": "validated",
        "report": {"findings": [], "drift": None, "counts": {"errors": 0, "warnings": 0}},
        "source_kind": "sdk",
        "source": "large workspace generator",
    }


def _datasets(db, ctx, rnd, factor, now, uc_ids, users, counts) -> list[tuple[int, int]]:
    """200 versions over 40 datasets; returns [(version id, use case id)]."""
    t = _t(DatasetVersion)
    templates = []
    for vid in ctx.data.get("customers_version_ids", []) or []:
        row = _row(db, t, t.c.id == int(vid))
        if row:
            templates.append(row)
    if not templates:
        templates = [_fallback_parquet()]
    schema_tpl = None
    if templates[0].get("schema_id"):
        schema_tpl = _row(db, _t(DatasetSchema), _t(DatasetSchema).c.id == templates[0]["schema_id"])
    schema_cols = (schema_tpl or {}).get("columns") or [
        {"name": c["name"], "type": c["type"], "nullable": False, "max_null_share": 0.0}
        for c in templates[0]["columns"]
    ]

    n_versions = _n("dataset_versions", factor)
    n_sets = max(1, -(-n_versions // VERSIONS_PER_DATASET))
    set_rows = [
        {
            "use_case_id": uc_ids[i % len(uc_ids)],
            "name": f"large_{i + 1:03d}_customers",
            "description": f"Customers extract {i + 1} {MARK}",
            "owner_id": users["dan"].id,
            "created_at": now - timedelta(days=45),
            "updated_at": now,
        }
        for i in range(n_sets)
    ]
    set_ids = _insert(db, _t(Dataset), set_rows, ids=True)
    schema_ids = _insert(
        db,
        _t(DatasetSchema),
        [
            {
                "dataset_id": d,
                "version": 1,
                "columns": schema_cols,
                "note": "inferred",
                "created_by": "dan",
                "created_at": now - timedelta(days=45),
            }
            for d in set_ids
        ],
        ids=True,
    )
    out: list[tuple[int, int]] = []
    made = 0
    for k, (dataset_id, schema_id) in enumerate(zip(set_ids, schema_ids)):
        parent = None
        for v in range(1, VERSIONS_PER_DATASET + 1):
            if made >= n_versions:
                break
            tpl = templates[(v - 1) % len(templates)]
            keep = (
                "artifact_key",
                "profile_key",
                "sample_key",
                "n_rows",
                "n_cols",
                "size_bytes",
                "columns",
                "status",
                "report",
                "source_kind",
                "source",
            )
            row = {key: tpl.get(key) for key in keep}
            row.update(
                dataset_id=dataset_id,
                version=v,
                parent_id=parent,
                schema_id=schema_id,
                content_hash=hashlib.sha256(f"large-{dataset_id}-{v}".encode()).hexdigest(),
                created_by="dan",
                created_by_id=users["dan"].id,
                created_at=now - timedelta(days=40 - 7 * v, minutes=k),
            )
            row["source_kind"] = row.get("source_kind") or "sdk"
            row["source"] = row.get("source") or ""
            (parent,) = _insert(db, t, [row], ids=True)
            if row["status"] in ("validated", "waived"):
                out.append((parent, uc_ids[k % len(uc_ids)]))
            made += 1
    counts["datasets"], counts["dataset_versions"] = len(set_ids), made
    _say(ctx, f"{len(set_ids)} datasets, {made} dataset versions")
    return out or [(None, uc) for uc in uc_ids]


def _runs(db, ctx, rnd, factor, now, uc_ids, versions, users, counts) -> list[tuple[int, int, dict]]:
    """10,000 runs, 20 metrics each (+ the latest-metrics rows); returns finished [(run id, use case id, metrics)]."""
    tpl = _row(db, _t(Run), _t(Run).c.id == int(ctx.data["churn_run_id"])) if ctx.data.get("churn_run_id") else None
    n = _n("runs", factor)
    by_uc: dict[int, list[int]] = {}
    for vid, uc in versions:
        by_uc.setdefault(uc, []).append(vid)
    algorithms = list(ALGORITHMS)
    rows, metrics_of = [], []
    for i in range(n):
        uc = uc_ids[i % len(uc_ids)]
        vid = rnd.choice(by_uc.get(uc) or [versions[i % len(versions)][0]])
        alg = algorithms[i % len(algorithms)]
        params = ALGORITHMS[alg](rnd)
        # ~4% of runs end failed or cancelled, spread over every use case
        status = "finished" if (i // len(uc_ids)) % 25 else ("failed" if i % 2 else "cancelled")
        created = now - timedelta(seconds=(n - i) * (DAYS * 86400 / n))
        duration = rnd.uniform(3, 90)
        config = dict((tpl or {}).get("config") or {"target": "churned", "task": "classification"})
        config.update(algorithm=alg, params=params)
        rows.append(
            _clone(
                tpl,
                name=f"sweep {i // 100 + 1} · {alg} {MARK}",
                use_case_id=uc,
                dataset_version_id=vid,
                dataset_hash=hashlib.sha256(f"dv-{vid}".encode()).hexdigest(),
                status=status,
                source="sdk" if i % 3 == 0 else "ui",
                task="classification",
                target="churned",
                algorithm=alg,
                config=config,
                params=params,
                tags={"team": REGIONS[i % len(REGIONS)], "sweep": str(i // 100 + 1)},
                seed=i,
                code_version=(tpl or {}).get("code_version") or "large",
                package_versions=(tpl or {}).get("package_versions") or {},
                input_schema=(tpl or {}).get("input_schema"),
                model_artifact_key=(tpl or {}).get("model_artifact_key") if status == "finished" else None,
                job_id=None,
                progress=1.0 if status == "finished" else 0.4,
                progress_message="done" if status == "finished" else status,
                error="Training stopped: generated failure for the large workspace." if status == "failed" else None,
                reproduced_from_run_id=None,
                triggered_by_alert_id=None,
                created_by_id=users["sara"].id,
                created_by="sara",
                created_at=created,
                started_at=created + timedelta(seconds=2),
                finished_at=created + timedelta(seconds=2 + duration),
                duration_seconds=duration,
            )
        )
        q = rnd.uniform(0.6, 0.93)
        m = {
            "accuracy": q + 0.02,
            "f1": q - 0.1,
            "log_loss": 1.1 - q,
            "precision": q - 0.05,
            "recall": q - 0.15,
            "roc_auc": q,
            "balanced_accuracy": q - 0.04,
            "average_precision": q - 0.08,
            "brier_score": (1 - q) / 3,
            "mcc": q - 0.3,
        }
        m = {k: round(v + rnd.uniform(-0.01, 0.01), 4) for k, v in m.items()}
        metrics_of.append(m if status == "finished" else {})
    t0 = time.monotonic()
    run_ids = _insert(db, _t(Run), rows, ids=True)
    _say(ctx, f"{len(run_ids):,} runs ({time.monotonic() - t0:.0f}s)")

    def metric_rows():
        for rid, m in zip(run_ids, metrics_of):
            for k, v in m.items():
                for key, val in ((k, v), (f"train_{k}", round(min(v + 0.03, 1.0), 4))):
                    yield {"run_id": rid, "key": key, "value": val, "step": None}

    total = sum(len(m) * 2 for m in metrics_of)
    counts["runs"] = len(run_ids)
    counts["run_metrics"] = _stream(db, _t(RunMetric), metric_rows(), total=total, label="run metrics", ctx=ctx)
    counts["run_latest_metrics"] = _stream(
        db, _t(RunLatestMetric), metric_rows(), total=total, label="latest metrics", ctx=ctx
    )
    return [(rid, row["use_case_id"], m) for rid, row, m in zip(run_ids, rows, metrics_of) if m]


def _models(db, ctx, rnd, factor, now, runs, users, counts) -> list[tuple[int, int]]:
    """50 model versions (10 models x 5), sharing the demo champion's skops artifact; [(mv id, use case id)]."""
    tpl = None
    if ctx.data.get("churn_model_version_id"):
        tpl = _row(db, _t(ModelVersion), _t(ModelVersion).c.id == int(ctx.data["churn_model_version_id"]))
    n = _n("model_versions", factor)
    n_models = max(1, -(-n // VERSIONS_PER_MODEL))
    best = sorted(runs, key=lambda r: -r[2]["roc_auc"])[:n]
    model_rows = [
        {
            "name": f"large-model-{i + 1:02d}",
            "use_case_id": best[i % len(best)][1],
            "description": f"Generated model {MARK}",
            "created_by": "sara",
            "created_at": now - timedelta(days=20),
            "updated_at": now,
        }
        for i in range(n_models)
    ]
    model_ids = _insert(db, _t(RegisteredModel), model_rows, ids=True)
    mv_rows = []
    for j in range(n):
        run_id, uc, m = best[j]
        model_k = j % n_models
        mv_rows.append(
            _clone(
                tpl,
                model_id=model_ids[model_k],
                version=j // n_models + 1,
                run_id=run_id,
                use_case_id=model_rows[model_k]["use_case_id"],
                dataset_version_id=(tpl or {}).get("dataset_version_id"),
                artifact_key=(tpl or {}).get("artifact_key") or "models/large/missing.skops",
                task="classification",
                target="churned",
                input_schema=(tpl or {}).get("input_schema") or [],
                metrics={k: m[k] for k in ("accuracy", "f1", "log_loss", "precision", "recall", "roc_auc")},
                card=(tpl or {}).get("card") or {},
                created_by="sara",
                created_at=now - timedelta(days=20 - j % 20),
            )
        )
    mv_ids = _insert(db, _t(ModelVersion), mv_rows, ids=True)
    champions = {}
    for mv_id, row in zip(mv_ids, mv_rows):
        champions[row["model_id"]] = mv_id  # latest version of each model is its champion
    _insert(
        db,
        _t(ModelAlias),
        [
            {"model_id": mid, "alias": "champion", "model_version_id": mv, "updated_by": "sara", "updated_at": now}
            for mid, mv in champions.items()
        ],
    )
    counts["registered_models"], counts["model_versions"] = len(model_ids), len(mv_ids)
    _say(ctx, f"{len(model_ids)} models, {len(mv_ids)} model versions")
    return [(mv, row["use_case_id"]) for mv, row in zip(mv_ids, mv_rows)]


def _deployments(db, ctx, rnd, factor, now, mv_ids, users, counts) -> list[tuple[int, int, str]]:
    n = _n("deployments", factor)
    rows = []
    for i in range(n):
        mv, uc = mv_ids[-(i % len(mv_ids)) - 1]
        rows.append(
            {
                "name": f"large-{i + 1:02d}",
                "use_case_id": uc,
                "environment": "production" if i % 2 == 0 else "staging",
                "model_version_id": mv,
                "deployed_at": now - timedelta(days=DAYS + 1),
                "canary_model_version_id": None,
                "canary_share": 0.0,
                "regression_tolerance": 0.01,
                "generation": 1,
                "description": f"Generated endpoint {MARK}",
                "created_by": "omar",
                "created_at": now - timedelta(days=DAYS + 2),
                "updated_at": now,
            }
        )
    ids = _insert(db, _t(Deployment), rows, ids=True)
    _insert(
        db,
        _t(DeploymentEvent),
        [
            {
                "deployment_id": d,
                "kind": "deploy",
                "from_model_version_id": None,
                "to_model_version_id": r["model_version_id"],
                "request_id": None,
                "actor_username": "omar",
                "reason": "initial deployment",
                "at": r["deployed_at"],
            }
            for d, r in zip(ids, rows)
        ],
    )
    counts["deployments"] = len(ids)
    _say(ctx, f"{len(ids)} deployments")
    return [(d, r["model_version_id"], r["name"]) for d, r in zip(ids, rows)]


def _predictions(db, ctx, rnd, factor, now, deps, counts) -> None:
    """1,000,000 predictions over the deployments and 30 days; the last week drifts; older ones partly labelled."""
    n = _n("predictions", factor)
    calm = make_customers(2000, seed=81)
    drifted = make_customers(2000, seed=82, drift=0.6)

    def pool(frame):
        recs = []
        for rec in frame[FEATURES + [TARGET]].to_dict("records"):
            label = int(rec.pop(TARGET))
            recs.append(({k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}, label))
        return recs

    pools = (pool(calm), pool(drifted))
    per_dep = -(-n // len(deps))
    span = DAYS * 86400.0
    start = now - timedelta(days=DAYS)
    srnd = random.Random(83)  # noqa: S311 - demo data; own stream, the other rows stay as they were

    def score(pred: int, truth: int) -> float:
        """A positive-class probability on the predicted side of 0.5: confident when right, less when wrong
        (live roc_auc ~0.9)."""
        u = srnd.random()
        conf = u**0.5 if pred == truth else u**2
        return round(0.5 + (0.5 if pred == 1 else -0.5) * conf, 4)

    def rows():
        made = 0
        for d_i, (dep_id, mv, _name) in enumerate(deps):
            for i in range(per_dep):
                if made >= n:
                    return
                made += 1
                at = start + timedelta(seconds=(i + rnd.random()) * span / per_dep)
                age_days = (now - at).total_seconds() / 86400
                recs = pools[1] if (age_days < 7 and d_i % 2 == 0) else pools[0]
                inputs, truth = recs[(i * 7 + d_i) % len(recs)]
                if i % 200 == 199:
                    yield {
                        "request_id": f"lg{dep_id}-{i}",
                        "deployment_id": dep_id,
                        "model_version_id": mv,
                        "created_at": at,
                        "source": "api",
                        "inputs": None,
                        "prediction": None,
                        "score": None,
                        "latency_ms": 0.5,
                        "status": "error",
                        "error": "400: record 0: missing columns: contract",
                        "label": None,
                        "labelled_at": None,
                    }
                    continue
                pred = truth if rnd.random() < 0.8 else 1 - truth
                labelled = age_days > 2 and i % 3 == 0
                yield {
                    "request_id": f"lg{dep_id}-{i}",
                    "deployment_id": dep_id,
                    "model_version_id": mv,
                    "created_at": at,
                    "source": "api" if i % 10 else "batch",
                    "inputs": inputs,
                    "prediction": pred,
                    "score": score(pred, truth),
                    "latency_ms": round(rnd.uniform(2, 25), 2),
                    "status": "ok",
                    "error": "",
                    "label": truth if labelled else None,
                    "labelled_at": at + timedelta(days=2) if labelled else None,
                }

    counts["predictions"] = _stream(db, _t(Prediction), rows(), total=n, label="predictions", ctx=ctx)


def _monitoring(db, ctx, rnd, factor, now, deps, counts) -> None:
    """A monitor per deployment, a daily check for 30 days (per-column drift), and some alerts."""
    tc = _t(MonitorCheck)
    check_tpl = _row(db, tc, tc.c.status == "ok")
    mon_ids = _insert(
        db,
        _t(Monitor),
        [
            {
                "deployment_id": d,
                "deployment_name": name,
                "use_case_id": None,
                "name": "default",
                "window_kind": "last_hours",
                "window_size": 24,
                "schedule_seconds": 86400,
                "columns": None,
                "method_overrides": {},
                "threshold_overrides": {},
                "drift_share": 0.5,
                "watch_kpis": None,
                "max_error_rate": 0.05,
                "max_latency_p95_ms": 500.0,
                "min_label_coverage": None,
                "retraining_policy": "propose",
                "enabled": True,
                "version": 1,
                "created_by": "omar",
                "created_at": now - timedelta(days=DAYS),
                "updated_at": now,
            }
            for d, _mv, name in deps
        ],
        ids=True,
    )
    checks = []
    for mon, (d, mv, _name) in zip(mon_ids, deps):
        for day in range(DAYS, 0, -1):
            at = now - timedelta(days=day)
            share = round(rnd.uniform(0.0, 0.3) + (0.4 if day <= 7 else 0.0), 2)
            checks.append(
                _clone(
                    check_tpl,
                    monitor_id=mon,
                    deployment_id=d,
                    model_version_id=mv,
                    reference_dataset_version_id=None,
                    started_at=at,
                    finished_at=at + timedelta(seconds=1),
                    duration_ms=150.0,
                    triggered_by="system",
                    status="ok",
                    error="",
                    window_start=at - timedelta(days=1),
                    window_end=at,
                    n_rows=(check_tpl or {}).get("n_rows") or 1000,
                    n_reference_rows=(check_tpl or {}).get("n_reference_rows") or 5000,
                    dataset_drifted=share >= 0.5,
                    drift_share=share,
                    n_drifted_columns=round(share * len(FEATURES)),
                    n_columns=len(FEATURES),
                    prediction_drifted=False,
                    drift=(check_tpl or {}).get("drift") or {},
                    performance=(check_tpl or {}).get("performance") or {},
                    kpis=(check_tpl or {}).get("kpis") or [],
                    kpi_status=(check_tpl or {}).get("kpi_status") or "unknown",
                    health=(check_tpl or {}).get("health") or {},
                    health_status="ok",
                    report_key=None,
                )
            )
    check_ids = _insert(db, tc, checks, ids=True)
    col_rows = []
    for cid, chk in zip(check_ids, checks):
        for j, col in enumerate(FEATURES):
            score = round(rnd.uniform(0, 0.2) + (0.1 if chk["dataset_drifted"] else 0), 4)
            col_rows.append(
                {
                    "check_id": cid,
                    "column": col,
                    "column_type": "num" if j < 3 else "cat",
                    "method": "wasserstein" if j < 3 else "jensenshannon",
                    "score": score,
                    "threshold": 0.1,
                    "drifted": score >= 0.1,
                }
            )
    _insert(db, _t(MonitorCheckColumn), col_rows)
    seed_estimates(db, ctx, check_ids, checks)  # issue 17: estimated KPIs and segments, like the small demo
    n_alerts = _n("alerts", factor)
    alerts = []
    for i in range(n_alerts):
        d, _mv, name = deps[i % len(deps)]
        state = ("open", "acknowledged", "resolved")[i % 3]
        key = f"large:drift:{d}:{i}"
        at = now - timedelta(hours=rnd.uniform(1, DAYS * 24))
        alerts.append(
            {
                "kind": ("drift", "error_rate", "latency", "kpi_missed")[i % 4],
                "severity": "warning",
                "state": state,
                "title": f"Generated alert {i + 1} on {name}",
                "detail": "Generated for the large workspace.",
                "deployment_id": d,
                "deployment_name": name,
                "use_case_id": None,
                "monitor_id": mon_ids[i % len(mon_ids)],
                "check_id": None,
                "dedupe_key": key,
                "open_key": None if state == "resolved" else key,
                "evidence": {},
                "evidence_link": f"/deployment-monitoring?deployment={name}",
                "occurrences": 1,
                "created_at": at,
                "last_seen_at": at,
                "ack_note": "",
                "resolve_note": "",
                "webhook_status": "none",
                "webhook_attempts": 0,
                "webhook_error": "",
                "acknowledged_by": "omar" if state != "open" else None,
                "acknowledged_at": at if state != "open" else None,
                "resolved_by": "omar" if state == "resolved" else None,
                "resolved_at": at if state == "resolved" else None,
            }
        )
    _insert(db, _t(Alert), alerts)
    counts["monitors"], counts["monitor_checks"], counts["alerts"] = len(mon_ids), len(check_ids), len(alerts)
    _say(ctx, f"{len(mon_ids)} monitors, {len(check_ids)} checks, {len(alerts)} alerts")
