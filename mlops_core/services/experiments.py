"""Experiments (stage 3): start runs (UI or SDK), train them in the worker, list/compare/rank them in SQL,
check them against the use case's model KPIs, cancel and reproduce them.

A UI run is created "queued" together with its "train" job in one transaction; the worker calls
`run_training(ctx)`, which moves it to running -> finished | failed | cancelled. If the worker dies,
the job queue's reaper fails the job and `_sync_with_jobs` carries that verdict over to the run, so a
run is never left "running" for ever.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd
from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from .. import artifacts, jobs, kpi as kpi_math
from ..config import get_settings
from ..db import Database, utcnow
from ..jobs import JobCancelled
from ..ml import persistence, training
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..models.experiments import (
    FINAL_STATUSES,
    RUN_STATUSES,
    PlotDataPublic,
    Run,
    RunArtifact,
    RunArtifactPublic,
    RunLatestMetric,
    RunMetric,
    RunPublic,
)
from ..models.jobs import Job
from ..models.usecases import Kpi, KpiCheck, KpiPublic
from . import audit, datasets, usecases
from .auth import Actor, can, require

MAX_PAGE = 500
# Metric keys stored for the training side: `train_<metric>`; per fold `fold_<metric>` (step = fold);
# boosting stages `staged_train_<metric>` / `staged_test_<metric>` (step = stage).
TRAIN_PREFIX = "train_"
HIDDEN_PREFIXES = ("train_", "fold_", "staged_", "cv_std_", "search_")

log = logging.getLogger(__name__)


# --- helpers --------------------------------------------------------------------------------------


def _latest_metrics(s: Session, run_ids: list[int]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {i: {} for i in run_ids}
    if not run_ids:
        return out
    for chunk_start in range(0, len(run_ids), 900):
        chunk = run_ids[chunk_start : chunk_start + 900]
        # The hot path of run lists and compare: plain SQL on the session's connection (ids are ints, inlined
        # after int()), no statement compile or type processing — half the time of the Core query.
        rows = (
            s.connection()
            .exec_driver_sql(
                f"SELECT run_id, key, value FROM {_LATEST.name} WHERE run_id IN ({','.join(str(int(i)) for i in chunk)})"  # noqa: S608 - a constant table name and int() ids
            )
            .all()
        )
        for rid, key, value in rows:
            out[rid][key] = float(value)
    return out


def _split_metrics(all_metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    test = {k: v for k, v in all_metrics.items() if not k.startswith(HIDDEN_PREFIXES)}
    train = {k[len(TRAIN_PREFIX) :]: v for k, v in all_metrics.items() if k.startswith(TRAIN_PREFIX)}
    return test, train


def _public(run: Run, metrics: dict[str, float] | None = None, job=None) -> RunPublic:
    data = run.model_dump()
    allm = metrics or {}
    data["metrics"], data["train_metrics"] = _split_metrics(allm)
    data["all_metrics"] = allm
    if job is not None and run.status in ("queued", "running"):
        data["progress"] = float(job.progress or 0.0)
        data["progress_message"] = job.progress_message or run.progress_message
    return RunPublic.model_validate(data)


def _publics(s: Session, runs: list[Run]) -> list[RunPublic]:

    ids = [r.id for r in runs]
    metrics = _latest_metrics(s, ids)
    job_ids = [r.job_id for r in runs if r.job_id and r.status in ("queued", "running")]
    jobs = {j.id: j for j in s.exec(select(Job).where(col(Job.id).in_(job_ids))).all()} if job_ids else {}
    return [_public(r, metrics.get(r.id), jobs.get(r.job_id)) for r in runs]


class _RunRow(dict):
    """A `runs` row read with Core (no ORM identity map): attribute access like a Run, for `_publics`.
    Listing and comparing runs read rows this way; it halves the time of the hot queries."""

    __getattr__ = dict.__getitem__

    def model_dump(self) -> dict:
        return dict(self)


RUNS = Run.__table__
_LATEST = RunLatestMetric.__table__


def _core_rows(s: Session, q) -> list[_RunRow]:
    return [_RunRow(r._mapping) for r in s.connection().execute(q).all()]


def _get_row(s: Session, run_id: int) -> Run:
    run = s.get(Run, int(run_id))
    if run is None:
        raise NotFound(f"there is no run {run_id}; pick one from the Experiments page")
    return run


def _stale(s: Session, run_ids: Iterable[int] | None = None) -> list:
    """Unfinished runs whose job already ended failed or cancelled: (run id, job status, job error)."""

    q = (
        select(Run.id, Job.status, Job.error)
        .join(Job, col(Job.id) == col(Run.job_id))
        .where(col(Run.status).in_(("queued", "running")), col(Job.status).in_(("failed", "cancelled")))
    )
    if run_ids is not None:
        ids = list(run_ids)
        if not ids:
            return []
        q = q.where(col(Run.id).in_(ids))
    return list(s.exec(q).all())


def _sync_with_jobs(db: Database, run_ids: Iterable[int] | None = None, stale: list | None = None) -> int:
    """Carry a final job verdict (worker died, job cancelled while queued) over to its unfinished run."""
    if stale is None:
        with db.read() as s:
            stale = _stale(s, run_ids)
    if not stale:
        return 0
    with db.unit_of_work() as s:
        for rid, job_status, job_error in stale:
            run = s.get(Run, rid)
            if run is None or run.status not in ("queued", "running"):
                continue
            now = utcnow()
            run.status = job_status
            run.finished_at = now
            if run.started_at:
                run.duration_seconds = (now - run.started_at).total_seconds()
            if job_status == "failed":
                run.error = job_error or "the training job failed"
                run.progress_message = (
                    "failed: " + (job_error or "").strip().splitlines()[0][:200] if job_error else "failed"
                )
            else:
                run.progress_message = "cancelled"
            s.add(run)
            audit.record(
                s,
                actor=Actor.system(),
                action=f"run.{job_status}",
                entity_type="run",
                entity_id=rid,
                summary=f"run {rid} {job_status} (its job ended: {(job_error or job_status)[:200]})",
                after={"status": job_status},
            )
    return len(stale)


def _dataset_version(db: Database, dataset_version_id: int):

    try:
        return datasets.get_version(db, int(dataset_version_id))
    except NotFound:
        raise NotFound(f"there is no dataset version {dataset_version_id}; choose one from the Data page") from None


def _check_trainable(version) -> None:

    if not datasets.is_trainable(version):
        label = _version_label(version)
        raise ValidationError(
            f"dataset version {label} is not validated (status: {getattr(version, 'status', '?')}); "
            "training may only use validated or waived versions — ask a data engineer to fix, approve or waive it"
        )


def _version_label(version) -> str:
    name = getattr(version, "dataset_name", None) or getattr(version, "name", None)
    return f"{name}@v{version.version}" if name else f"#{version.id} (v{version.version})"


def _load_frame(db: Database, dataset_version_id: int):

    return datasets.load_frame(db, int(dataset_version_id))


# --- start ---------------------------------------------------------------------------------------


def validate_launch(db: Database, *, dataset_version_id: int, config: dict[str, Any]) -> dict[str, Any]:
    """The config checked against the dataset version (no write): the normalised config, or a ValidationError."""

    version = _dataset_version(db, dataset_version_id)
    _check_trainable(version)
    frame = _load_frame(db, dataset_version_id)
    return training.validate_config(frame, config).to_dict()


def start_runs(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    dataset_version_id: int,
    config: dict[str, Any],
    algorithms: list[str] | None = None,
    params_by_algorithm: dict[str, dict[str, Any]] | None = None,
    triggered_by_alert_id: int | None = None,
    name: str | None = None,
    source: str = "ui",
    reproduced_from_run_id: int | None = None,
    tags: Mapping[str, Any] | None = None,
) -> list[RunPublic]:
    """Queue one run per algorithm (same data, target, split and seed) and its "train" job, in one transaction."""
    require(actor, "run.start")

    usecases.get_use_case(db, use_case_id=int(use_case_id))
    version = _dataset_version(db, dataset_version_id)
    _check_trainable(version)
    frame = _load_frame(db, dataset_version_id)
    algorithms = list(algorithms or [config.get("algorithm")])
    if not algorithms or not all(algorithms):
        raise ValidationError("choose at least one algorithm")
    configs = []
    for alg in algorithms:
        raw = dict(config, algorithm=alg)
        if params_by_algorithm is not None:
            raw["params"] = params_by_algorithm.get(alg, {})
        configs.append(training.validate_config(frame, raw).to_dict())
    del frame
    out = []
    with db.unit_of_work() as s:
        for cfg in configs:
            label = name or f"{cfg['algorithm']} · {cfg['target']}"
            run = Run(
                name=label[:200] if len(configs) == 1 or not name else f"{name} · {cfg['algorithm']}"[:200],
                use_case_id=int(use_case_id),
                dataset_version_id=int(version.id),
                dataset_hash=str(getattr(version, "content_hash", "") or ""),
                status="queued",
                source=source,
                task=cfg["task"],
                target=cfg["target"],
                algorithm=cfg["algorithm"],
                config=cfg,
                params={k: v for k, v in cfg["params"].items()},
                seed=cfg["seed"],
                reproduced_from_run_id=reproduced_from_run_id,
                triggered_by_alert_id=triggered_by_alert_id,
                tags={str(k): _json_value(v) for k, v in (tags or {}).items()},  # e.g. the CI commit and pipeline
                created_by_id=actor.id,
                created_by=actor.username,
                progress_message="waiting for a worker",
            )
            s.add(run)
            s.flush()
            run.job_id = jobs.enqueue(s, kind="train", payload={"run_id": run.id})
            s.add(run)
            audit.record(
                s,
                actor=actor,
                action="run.start",
                entity_type="run",
                entity_id=run.id,
                summary=f"queued run {run.id} ({cfg['algorithm']} on {_version_label(version)}, "
                f"target {cfg['target']})",
                after={"use_case_id": use_case_id, "dataset_version_id": version.id, "config": cfg, "source": source},
            )
            out.append(run)
        _note_experimentation(s, actor, int(use_case_id))
        s.flush()
        return _publics(s, out)


def start_run(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    dataset_version_id: int,
    config: dict[str, Any],
    triggered_by_alert_id: int | None = None,
    name: str | None = None,
) -> RunPublic:
    """Queue one run with its "train" job (contract seam; the worker trains it)."""
    return start_runs(
        db,
        actor=actor,
        use_case_id=use_case_id,
        dataset_version_id=dataset_version_id,
        config=config,
        triggered_by_alert_id=triggered_by_alert_id,
        name=name,
        source="retrain" if triggered_by_alert_id else "ui",
    )[0]


def _note_experimentation(s: Session, actor: Actor, use_case_id: int) -> None:
    usecases.note_stage_reached(
        s, actor=actor, use_case_id=use_case_id, status="experimentation", note="first run started"
    )


# --- the "train" job -------------------------------------------------------------------------------


def _set_status(db: Database, run_id: int, **fields) -> Run:
    with db.unit_of_work() as s:
        run = _get_row(s, run_id)
        for k, v in fields.items():
            setattr(run, k, v)
        s.add(run)
        return run


def _record_training(
    s: Session, run: Run, result, model_key: str, plots_key: str, plots_size: int, model_size: int
) -> None:
    rows: list[RunMetric] = []
    latest: dict[str, tuple[float, int | None]] = {}
    for k, v in result.test_metrics.items():
        latest[k] = (v, None)
    for k, v in result.train_metrics.items():
        latest[f"{TRAIN_PREFIX}{k}"] = (v, None)
    for i, fm in enumerate(result.fold_metrics, start=1):
        for k, v in fm.items():
            rows.append(RunMetric(run_id=run.id, key=f"fold_{k}", value=float(v), step=i))
    if result.fold_metrics:
        keys = set.intersection(*(set(m) for m in result.fold_metrics))
        for k in keys:
            vals = [m[k] for m in result.fold_metrics]
            mean = sum(vals) / len(vals)
            latest[f"cv_std_{k}"] = (math.sqrt(sum((x - mean) ** 2 for x in vals) / len(vals)), None)
    staged = result.plots.get("staged") or {}
    if staged:
        m = staged["metric"]
        for st, tr, te in zip(staged["stage"], staged["train"], staged["test"]):
            rows.append(RunMetric(run_id=run.id, key=f"staged_train_{m}", value=float(tr), step=int(st)))
            rows.append(RunMetric(run_id=run.id, key=f"staged_test_{m}", value=float(te), step=int(st)))
    for k, (v, step) in latest.items():
        if v is None or not math.isfinite(v):
            continue
        rows.append(RunMetric(run_id=run.id, key=k, value=float(v), step=step))
        s.add(RunLatestMetric(run_id=run.id, key=k, value=float(v), step=step))
    s.add_all(rows)
    s.add(
        RunArtifact(
            run_id=run.id,
            name="model.skops",
            kind="model",
            artifact_key=model_key,
            media_type="application/octet-stream",
            size_bytes=model_size,
        )
    )
    s.add(
        RunArtifact(
            run_id=run.id,
            name="plots.json",
            kind="plot_data",
            artifact_key=plots_key,
            media_type="application/json",
            size_bytes=plots_size,
        )
    )


def run_training(ctx) -> dict[str, Any]:
    """The "train" job handler: fit the run's pipeline on its dataset version and record everything."""

    db: Database = ctx.db
    run_id = int(ctx.payload["run_id"])
    with db.read() as s:
        run = _get_row(s, run_id)
        if run.status in FINAL_STATUSES:
            return {"run_id": run_id, "status": run.status, "note": "run already ended"}
        config, dataset_version_id = dict(run.config), run.dataset_version_id
        use_case_id = run.use_case_id
    from . import canvas  # issue 20: the canvas's positive class is what binary metrics are about

    _, positive_class = canvas.problem_settings(db, use_case_id)
    started = utcnow()
    _set_status(
        db,
        run_id,
        status="running",
        started_at=started,
        progress=0.0,
        progress_message="loading data",
        code_version=training.code_version(),
        package_versions=training.package_versions(),
    )
    wall = time.perf_counter()
    try:
        ctx.check_cancelled()
        ctx.progress(0.02, "loading data")
        frame = _load_frame(db, dataset_version_id)
        cfg = training.validate_config(frame, config)
        result = training.train(
            frame,
            cfg,
            progress=lambda f, m: ctx.progress(0.05 + 0.9 * f, m),
            check_cancelled=ctx.check_cancelled,
            dask_scheduler=get_settings().dask_scheduler,  # issue 16: the search's candidates run on Dask
            positive_class=positive_class or None,
        )
        ctx.check_cancelled()
        model_bytes = persistence.dump_model(result.pipeline)
        model_key = artifacts.put_bytes(f"runs/{run_id}/model.skops", model_bytes)
        plots = dict(result.plots)
        plots["search_results"] = result.search_results
        plots["n_train"], plots["n_test"] = result.n_train, result.n_test
        plots_bytes = json.dumps(plots, default=float).encode()
        plots_key = artifacts.put_bytes(f"runs/{run_id}/plots.json", plots_bytes)
        finished = utcnow()
        with db.unit_of_work() as s:
            run = _get_row(s, run_id)
            if run.status != "running":
                return {"run_id": run_id, "status": run.status}
            _record_training(s, run, result, model_key, plots_key, len(plots_bytes), len(model_bytes))
            run.status = "finished"
            run.params = dict(result.params)
            run.tags = {**run.tags, **_executor_tags(result)}
            run.input_schema = result.input_schema
            run.model_artifact_key = model_key
            run.finished_at = finished
            run.duration_seconds = time.perf_counter() - wall
            run.progress, run.progress_message = 1.0, "finished"
            s.add(run)
            audit.record(
                s,
                actor=Actor.system(),
                action="run.finish",
                entity_type="run",
                entity_id=run_id,
                summary=f"run {run_id} finished ({cfg.algorithm}): "
                + ", ".join(f"{k}={v:.4g}" for k, v in list(result.test_metrics.items())[:4]),
                after={"status": "finished", "metrics": result.test_metrics},
            )
            _emit_run(s, run, "finished")
            if run.triggered_by_alert_id is not None:
                # Close the loop at once: a retraining run that just finished is registered and requested on
                # its endpoint (a challenger if its gates pass) by a job queued with the finish, not at the next
                # monitor check. A job, not a call: services/retraining.py imports this module.
                jobs.enqueue(
                    s, kind="retraining_advance", payload={"run_id": run_id}, dedupe_key=f"retraining_advance:{run_id}"
                )
        return {"run_id": run_id, "status": "finished", "metrics": result.test_metrics}
    except JobCancelled:
        _end_run(db, run_id, "cancelled", None, wall)
        raise
    except BaseException as exc:
        _end_run(db, run_id, "failed", f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}", wall)
        raise


def _executor_tags(result: training.TrainingResult) -> dict[str, Any]:
    """Where the search ran (local, or the Dask scheduler and its worker count) and the seconds per candidate."""
    extra = result.extra or {}
    if not extra.get("dask_scheduler") and not result.search_results:
        return {}  # a single fit, locally: nothing to add
    tags: dict[str, Any] = {"executor": "dask" if extra.get("dask_scheduler") else "local"}
    if extra.get("dask_scheduler"):
        tags["dask_scheduler"] = extra["dask_scheduler"]
        tags["dask_workers"] = int(extra.get("dask_workers", 0))
        tags["dask_workers_lost"] = int(extra.get("dask_workers_lost", 0))
    if result.search_results:
        tags["search_seconds"] = extra.get("search_seconds")
        tags["search_candidate_seconds"] = [r.get("seconds") for r in result.search_results]
    return tags


def _end_run(
    db: Database, run_id: int, status: str, error: str | None, wall: float | None = None, actor: Actor | None = None
) -> None:
    with db.unit_of_work() as s:
        run = _get_row(s, run_id)
        if run.status in FINAL_STATUSES:
            return
        now = utcnow()
        run.status = status
        run.finished_at = now
        if wall is not None:
            run.duration_seconds = time.perf_counter() - wall
        elif run.started_at:
            run.duration_seconds = (now - run.started_at).total_seconds()
        run.error = error[-20000:] if error else None
        first = (error or "").strip().splitlines()[0][:200] if error else ""
        run.progress_message = status + (f": {first}" if first else "")
        s.add(run)
        audit.record(
            s,
            actor=actor or Actor.system(),
            action=f"run.{status}",
            entity_type="run",
            entity_id=run_id,
            summary=f"run {run_id} {status}" + (f": {first}" if first else ""),
            after={"status": status},
        )
        _emit_run(s, run, status)


def _emit_run(s: Session, run: Run, status: str) -> None:
    """Watchers of the run's use case hear that it finished or failed (issue 18)."""
    from . import subscriptions

    subscriptions.emit(
        s,
        kind=f"run_{status}"[:32],
        title=f"run {run.id} ({run.name or run.algorithm}) {status}",
        entity_type="run",
        entity_id=run.id,
        actor_username=run.created_by or "",
    )
    if status == "finished":
        from . import kpi_events

        kpi_events.on_run_finished(s, run)  # "KPI met / missed" when the verdict changes


# --- cancel ------------------------------------------------------------------------------------------


def cancel_run(db: Database, *, actor: Actor, run_id: int) -> RunPublic:
    """Stop a queued or running run. A queued one is cancelled at once; a running one stops at its next
    check (the worker terminates it if it does not)."""
    require(actor, "run.cancel")

    with db.unit_of_work() as s:
        run = _get_row(s, run_id)
        if run.status in FINAL_STATUSES:
            raise Conflict(f"run {run_id} has already ended ({run.status}); there is nothing to cancel")
        before = run.status
        if run.job_id:
            job = jobs.request_cancel(s, run.job_id)
            if job.status == "cancelled" or run.status == "queued":
                run.status = "cancelled"
                run.finished_at = utcnow()
                run.progress_message = f"cancelled by {actor.username}"
            else:
                run.progress_message = f"cancel requested by {actor.username}"
        else:  # an SDK run: nothing runs on our side, so it ends now
            run.status = "cancelled"
            run.finished_at = utcnow()
            run.progress_message = f"cancelled by {actor.username}"
        s.add(run)
        audit.record(
            s,
            actor=actor,
            action="run.cancel",
            entity_type="run",
            entity_id=run_id,
            summary=f"cancel run {run_id} (was {before})",
            before={"status": before},
            after={"status": run.status},
        )
        s.flush()
        return _publics(s, [run])[0]


# --- read ----------------------------------------------------------------------------------------------


def get_run(db: Database, run_id: int, *, actor: Actor | None = None) -> RunPublic:
    """One run with its latest test metrics (`metrics`), train metrics, params, config and status."""
    _sync_with_jobs(db, [int(run_id)])
    with db.read() as s:
        return _publics(s, [_get_row(s, run_id)])[0]


@dataclass
class RunPage:
    items: list[RunPublic]
    total: int
    limit: int
    offset: int


SORTABLE = {
    "created_at": Run.created_at,
    "id": Run.id,
    "name": Run.name,
    "status": Run.status,
    "algorithm": Run.algorithm,
    "duration": Run.duration_seconds,
}


def list_runs(
    db: Database,
    *,
    actor: Actor | None = None,
    use_case_id: int | None = None,
    dataset_version_id: int | None = None,
    status: str | list[str] | None = None,
    algorithm: str | None = None,
    source: str | None = None,
    created_by: str | None = None,
    search: str | None = None,
    sort: str = "created_at",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
    with_total: bool = True,
) -> RunPage | list[RunPublic]:
    """Runs filtered, sorted and paginated in SQL. `sort` is a column name or "metric:<key>" (runs without
    that metric come last). Returns a RunPage (the list alone with `with_total=False`)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    with db.read() as s:
        stale = _stale(s)
        if stale:  # rare: a worker died or a queued job was cancelled elsewhere; fix the runs, then read
            s.rollback()
            _sync_with_jobs(db, stale=stale)
        conds = []
        if use_case_id is not None:
            conds.append(Run.use_case_id == int(use_case_id))
        if dataset_version_id is not None:
            conds.append(Run.dataset_version_id == int(dataset_version_id))
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = [x for x in statuses if x not in RUN_STATUSES]
            if bad:
                raise ValidationError(f"unknown run status {bad[0]!r}; use one of: {', '.join(RUN_STATUSES)}")
            conds.append(col(Run.status).in_(statuses))
        if algorithm:
            conds.append(Run.algorithm == algorithm)
        if source:
            conds.append(Run.source == source)
        if created_by:
            conds.append(Run.created_by == created_by)
        if search:
            like = f"%{search.strip().lower()}%"
            conds.append(
                or_(
                    func.lower(Run.name).like(like),
                    func.lower(Run.target).like(like),
                    func.lower(Run.algorithm).like(like),
                )
            )
        q = select(RUNS)
        if sort.startswith("metric:"):
            key = sort.split(":", 1)[1]
            q = q.outerjoin(
                RunLatestMetric, and_(col(RunLatestMetric.run_id) == col(Run.id), RunLatestMetric.key == key)
            )
            order = col(RunLatestMetric.value)
            q = q.order_by(order.is_(None), order.desc() if descending else order.asc(), col(Run.id).desc())
        else:
            if sort not in SORTABLE:
                raise ValidationError(
                    f"cannot sort runs by {sort!r}; use one of: {', '.join(SORTABLE)} or metric:<name>"
                )
            c = col(SORTABLE[sort])
            # "nulls last" only where a column can be null: on a NOT NULL column the extra term only stops
            # the database from walking the column's index (a sort of every run instead of reading `limit`).
            nulls_last = [c.is_(None)] if RUNS.c[c.key].nullable else []
            q = q.order_by(*nulls_last, c.desc() if descending else c.asc(), col(Run.id).desc())
        for c in conds:
            q = q.where(c)
        rows = _core_rows(s, q.offset(offset).limit(limit))
        items = _publics(s, rows)
        if not with_total:
            return items
        cq = select(func.count()).select_from(Run)
        for c in conds:
            cq = cq.where(c)
        total = int(s.exec(cq).one())
        return RunPage(items=items, total=total, limit=limit, offset=offset)


def filter_choices(db: Database, *, use_case_id: int | None = None) -> dict[str, list[str]]:
    """Distinct algorithms, people and metric keys, for the runs table filters (all from SQL)."""
    with db.read() as s:
        base = select(Run.algorithm).distinct()
        who = select(Run.created_by).distinct()
        mk = select(RunLatestMetric.key).distinct()
        if use_case_id is not None:
            base = base.where(Run.use_case_id == use_case_id)
            who = who.where(Run.use_case_id == use_case_id)
            mk = mk.join(Run, col(Run.id) == col(RunLatestMetric.run_id)).where(Run.use_case_id == use_case_id)
        keys = sorted(k for k in s.exec(mk).all() if not k.startswith(HIDDEN_PREFIXES))
        return {
            "algorithm": sorted(a for a in s.exec(base).all() if a),
            "created_by": sorted(w for w in s.exec(who).all() if w),
            "metric": keys,
        }


def status_counts(db: Database, *, use_case_id: int | None = None) -> dict[str, int]:
    with db.read() as s:
        q = select(Run.status, func.count()).group_by(Run.status)
        if use_case_id is not None:
            q = q.where(Run.use_case_id == use_case_id)
        return {st: int(n) for st, n in s.exec(q).all()}


def latest_active_use_case(db: Database, use_case_ids: Iterable[int]) -> int | None:
    """Of `use_case_ids`, the one whose newest run is the most recent (None when none has a run): the
    use case a page opens on when nothing is chosen yet. One query, walking the runs' created_at index."""
    ids = [int(i) for i in use_case_ids]
    if not ids:
        return None
    with db.read() as s:
        return s.exec(
            select(Run.use_case_id).where(col(Run.use_case_id).in_(ids)).order_by(col(Run.created_at).desc()).limit(1)
        ).first()


def active_runs(db: Database, *, use_case_id: int | None = None, limit: int = 20) -> list[RunPublic]:
    """Queued and running runs, newest first (what the live progress panel polls)."""
    page = list_runs(db, use_case_id=use_case_id, status=["queued", "running"], limit=limit)
    return page.items


def metric_history(db: Database, run_id: int, key: str | None = None) -> dict[str, list[tuple[int | None, float]]]:
    """Every logged value of a run's metrics: key -> [(step, value)], in logging order."""
    with db.read() as s:
        q = select(RunMetric.key, RunMetric.step, RunMetric.value).where(RunMetric.run_id == int(run_id))
        if key:
            q = q.where(RunMetric.key == key)
        out: dict[str, list[tuple[int | None, float]]] = {}
        for k, step, value in s.exec(q.order_by(RunMetric.key, RunMetric.step, RunMetric.id)).all():
            out.setdefault(k, []).append((step, float(value)))
        return out


def list_artifacts(db: Database, run_id: int) -> list[RunArtifactPublic]:
    with db.read() as s:
        rows = s.exec(select(RunArtifact).where(RunArtifact.run_id == int(run_id)).order_by(RunArtifact.id)).all()
        return [RunArtifactPublic.model_validate(r, from_attributes=True) for r in rows]


def plot_data(db: Database, run_id: int) -> PlotDataPublic | None:
    """What the run page plots (confusion matrix, ROC/PR, residuals, importance, staged curves); None if none."""
    with db.read() as s:
        art = s.exec(
            select(RunArtifact).where(RunArtifact.run_id == int(run_id), RunArtifact.kind == "plot_data")
        ).first()
        key = art.artifact_key if art is not None else None
    if key is None or not artifacts.exists(key):
        return None
    return PlotDataPublic.model_validate(json.loads(artifacts.get_bytes(key)))  # json: scores may be NaN


def suggest_task_for(db: Database, *, dataset_version_id: int, target: str) -> str:
    """Classification or regression, suggested from the target column's values (reads that column only)."""

    if not target:
        return "classification"
    frame = datasets.load_frame(db, int(dataset_version_id), columns=[target])
    return training.suggest_task(frame[target])


def artifact_bytes(db: Database, *, artifact_id: int) -> tuple[str, bytes]:
    """(file name, content) of a run artifact, for download."""
    with db.read() as s:
        art = s.get(RunArtifact, int(artifact_id))
        if art is None:
            raise NotFound(f"there is no artifact {artifact_id}")
        name, key = art.name, art.artifact_key
    if not artifacts.exists(key):
        raise NotFound(f"the file of artifact {name} is missing from the artifact store ({key})")
    return name, artifacts.get_bytes(key)


# --- KPI checks, ranking, best ------------------------------------------------------------------------


def kpi_checks(db: Database, run_id: int) -> list[KpiCheck]:
    """Per model KPI of the run's use case: the run's value and met / warning / missed / unknown."""
    run = get_run(db, run_id)
    if run.use_case_id is None:
        return []
    return usecases.evaluate_metrics(db, run.use_case_id, run.metrics)


def _model_kpis_in(s: Session, use_case_ids: set[int]) -> dict[int, list[KpiPublic]]:
    out: dict[int, list[KpiPublic]] = {u: [] for u in use_case_ids}
    if use_case_ids:
        t = Kpi.__table__
        for k in (
            s.connection()
            .execute(select(t).where(t.c.use_case_id.in_(list(use_case_ids)), t.c.kind == "model").order_by(t.c.id))
            .all()
        ):
            out[k.use_case_id].append(KpiPublic.model_validate(dict(k._mapping)))
    return out


def kpi_lights(db: Database, runs: list[RunPublic], *, session: Session | None = None) -> dict[int, list[KpiCheck]]:
    """run id -> KPI checks, fetching the KPIs of all their use cases in one query (for tables of many runs)."""

    uc_ids = {r.use_case_id for r in runs if r.use_case_id is not None}
    if session is not None:
        kpis_by_uc = _model_kpis_in(session, uc_ids)
    else:
        with db.read() as s:
            kpis_by_uc = _model_kpis_in(s, uc_ids)
    out: dict[int, list[KpiCheck]] = {}
    for r in runs:
        if r.use_case_id is None:
            out[r.id] = []
            continue
        checks = []
        for k in kpis_by_uc[r.use_case_id]:
            v = r.metrics.get(k.metric) if k.metric else None
            checks.append(KpiCheck(kpi=k, value=v, status=kpi_math.evaluate(k.direction, k.target, k.warning, v)))
        out[r.id] = checks
    return out


def rank_by_kpi(db: Database, *, use_case_id: int, kpi_id: int, limit: int = 20, offset: int = 0) -> RunPage:
    """Finished runs of a use case, best first by one model KPI's metric (its direction decides)."""
    kpi = next((k for k in usecases.model_kpis(db, use_case_id) if k.id == int(kpi_id)), None)
    if kpi is None or not kpi.metric:
        raise NotFound(f"use case {use_case_id} has no model KPI {kpi_id}; pick one of its model KPIs")
    return list_runs(
        db,
        use_case_id=use_case_id,
        status="finished",
        sort=f"metric:{kpi.metric}",
        descending=kpi.direction == ">=",
        limit=limit,
        offset=offset,
    )


def best_metrics(db: Database, *, use_case_id: int, directions: Mapping[str, str]) -> dict[str, float]:
    """Best value of each metric over the use case's finished runs (one aggregate query per direction)."""
    out: dict[str, float] = {}
    with db.read() as s:
        for direction in (">=", "<="):
            keys = [m for m, d in directions.items() if d == direction]
            if not keys:
                continue
            agg = func.max(RunLatestMetric.value) if direction == ">=" else func.min(RunLatestMetric.value)
            rows = s.exec(
                select(RunLatestMetric.key, agg)
                .join(Run, col(Run.id) == col(RunLatestMetric.run_id))
                .where(
                    Run.use_case_id == int(use_case_id), Run.status == "finished", col(RunLatestMetric.key).in_(keys)
                )
                .group_by(RunLatestMetric.key)
            ).all()
            out.update({k: float(v) for k, v in rows if v is not None})
    return out


def best_metrics_many(db: Database, directions: Mapping[int, Mapping[str, str]]) -> dict[int, dict[str, float]]:
    """`best_metrics` of many use cases at once (use case id -> metric -> direction), in one grouped query:
    what a board of use-case cards needs instead of one query per card. Use cases without a finished run
    with those metrics get an empty dict."""
    directions = {int(u): d for u, d in directions.items()}
    out: dict[int, dict[str, float]] = {u: {} for u in directions}
    keys = sorted({m for d in directions.values() for m in d})
    if not out or not keys:
        return out
    with db.read() as s:
        rows = s.exec(
            select(
                Run.use_case_id, RunLatestMetric.key, func.max(RunLatestMetric.value), func.min(RunLatestMetric.value)
            )
            .join(Run, col(Run.id) == col(RunLatestMetric.run_id))
            .where(col(Run.use_case_id).in_(list(out)), Run.status == "finished", col(RunLatestMetric.key).in_(keys))
            .group_by(Run.use_case_id, RunLatestMetric.key)
        ).all()
    for uc, key, hi, lo in rows:
        direction = directions.get(uc, {}).get(key)
        value = hi if direction == ">=" else lo if direction == "<=" else None
        if value is not None:
            out[uc][key] = float(value)
    return out


# --- compare -------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    runs: list[RunPublic]
    param_keys: list[str]
    metric_keys: list[str]
    differing_params: list[str]
    differing_metrics: list[str]
    kpi: dict[int, list[KpiCheck]] = field(default_factory=dict)

    def params_table(self) -> list[dict[str, Any]]:
        """Text cells: a parameter a run's algorithm does not have is blank, integers stay integers."""
        return [
            {"param": k, **{f"run {r.id}": _param_text(r.params.get(k)) for r in self.runs}} for k in self.param_keys
        ]

    def metrics_table(self) -> list[dict[str, Any]]:
        return [{"metric": k, **{f"run {r.id}": r.all_metrics.get(k) for r in self.runs}} for k in self.metric_keys]


def _fmt(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v


def _applies(v: Any) -> bool:
    """A parameter that means something for this run (None / "" : its algorithm has no such parameter)."""
    return v is not None and v != ""


def _param_text(v: Any) -> str:
    if not _applies(v):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(_fmt(v))


MAX_COMPARE = 50


def compare_runs(
    db: Database, *, run_ids: list[int], actor: Actor | None = None, include_train: bool = True
) -> Comparison:
    """Params and metrics of the selected runs side by side, with the keys where they differ."""
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    if len(ids) < 2:
        raise ValidationError("select at least two runs to compare")
    if len(ids) > MAX_COMPARE:
        raise ValidationError(f"compare at most {MAX_COMPARE} runs at a time; {len(ids)} are selected")
    with db.read() as s:
        rows = _core_rows(s, select(RUNS).where(RUNS.c.id.in_(ids)))
        found = {r.id for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"run(s) {', '.join(map(str, missing))} do not exist")
        by_id = {r.id: r for r in rows}
        runs = _publics(s, [by_id[i] for i in ids])
        lights = kpi_lights(db, runs, session=s)
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted(
        {
            k
            for r in runs
            for k in (r.all_metrics if include_train else r.metrics)
            if not k.startswith(("fold_", "staged_"))
        },
        key=lambda k: (k.startswith(HIDDEN_PREFIXES), k),
    )
    # Compared among the runs it applies to: a parameter another algorithm lacks is not a difference.
    differing_params = [
        k for k in param_keys if len({_param_text(r.params.get(k)) for r in runs if _applies(r.params.get(k))}) > 1
    ]
    differing_metrics = [k for k in metric_keys if len({r.all_metrics.get(k) for r in runs}) > 1]
    return Comparison(
        runs=runs,
        param_keys=param_keys,
        metric_keys=metric_keys,
        differing_params=differing_params,
        differing_metrics=differing_metrics,
        kpi=lights,
    )


# --- reproduce -----------------------------------------------------------------------------------------


# Runs logged from the user's own code: the Hub holds no configuration it could re-run.
CODE_SOURCES = ("sdk", "mlflow")


def reproduce_run(db: Database, *, actor: Actor, run_id: int) -> RunPublic:
    """Queue a new run with the exact configuration and dataset version of `run_id`."""
    original = get_run(db, run_id)
    if original.source in CODE_SOURCES or not original.config:
        raise ValidationError(
            f"run {run_id} was logged from code (SDK or MLflow); re-run your script to reproduce it — only runs "
            "launched from the Experiments page carry a configuration MLOps Hub can re-run"
        )
    if original.use_case_id is None or original.dataset_version_id is None:
        raise ValidationError(f"run {run_id} has no use case or dataset version to reproduce it on")
    return start_runs(
        db,
        actor=actor,
        use_case_id=original.use_case_id,
        dataset_version_id=original.dataset_version_id,
        config=dict(original.config),
        name=f"reproduce run {run_id}",
        source="reproduce",
        reproduced_from_run_id=original.id,
    )[0]


@dataclass
class Reproduction:
    original: RunPublic
    reproduction: RunPublic
    status: str  # "pending" | "match" | "mismatch" | "failed"
    differences: dict[str, tuple[float | None, float | None]]
    tolerance: float

    @property
    def matches(self) -> bool:
        return self.status == "match"


def reproduction_report(db: Database, run_id: int, *, tolerance: float = 1e-9) -> Reproduction:
    """For a reproduction run: do its metrics equal the original's? (`run_id` is the reproduction.)"""
    rep = get_run(db, run_id)
    if rep.reproduced_from_run_id is None:
        raise ValidationError(f"run {run_id} is not a reproduction of another run")
    orig = get_run(db, rep.reproduced_from_run_id)
    if rep.status in ("queued", "running"):
        return Reproduction(orig, rep, "pending", {}, tolerance)
    if rep.status != "finished":
        return Reproduction(orig, rep, "failed", {}, tolerance)
    diffs = {}
    for k in sorted(set(orig.all_metrics) | set(rep.all_metrics)):
        a, b = orig.all_metrics.get(k), rep.all_metrics.get(k)
        if a is None or b is None or abs(a - b) > tolerance * max(1.0, abs(a)):
            diffs[k] = (a, b)
    return Reproduction(orig, rep, "match" if not diffs else "mismatch", diffs, tolerance)


def reproductions_of(db: Database, run_id: int) -> list[RunPublic]:
    with db.read() as s:
        rows = s.exec(select(Run).where(Run.reproduced_from_run_id == int(run_id)).order_by(col(Run.id).desc())).all()
        return _publics(s, list(rows))


# --- SDK side (mlops_core.tracking calls these) ----------------------------------------------------


def create_sdk_run(
    db: Database, *, actor: Actor, use_case_id: int | None, dataset_version_id: int, name: str | None = None
) -> RunPublic:
    """A run logged from code: created "running" (the caller's process trains)."""
    require(actor, "run.start")

    version = _dataset_version(db, dataset_version_id)
    _check_trainable(version)
    if use_case_id is None:
        use_case_id = getattr(version, "use_case_id", None)
    now = utcnow()
    with db.unit_of_work() as s:
        run = Run(
            name=(name or f"sdk run by {actor.username}")[:200],
            use_case_id=use_case_id,
            dataset_version_id=int(version.id),
            dataset_hash=str(getattr(version, "content_hash", "") or ""),
            status="running",
            source="sdk",
            created_by_id=actor.id,
            created_by=actor.username,
            started_at=now,
            code_version=training.code_version(),
            package_versions=training.package_versions(),
            progress_message="logging from code",
        )
        s.add(run)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="run.start",
            entity_type="run",
            entity_id=run.id,
            summary=f"run {run.id} started from code on {_version_label(version)}",
            after={"use_case_id": use_case_id, "dataset_version_id": version.id, "source": "sdk"},
        )
        if use_case_id is not None:
            _note_experimentation(s, actor, int(use_case_id))
        return _public(run, {})


def _own_running_run(s: Session, actor: Actor, run_id: int) -> Run:
    run = _get_row(s, run_id)
    if run.created_by != actor.username and not can(actor, "run.write_any"):
        raise ValidationError(f"run {run_id} belongs to {run.created_by}; log to your own runs")
    if run.status != "running":
        raise Conflict(f"run {run_id} is {run.status}; only a running run accepts new values")
    return run


def log_batch(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    params: Mapping[str, Any] | None = None,
    metrics: list[tuple[str, float, int | None]] | None = None,
    tags: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> int:
    """Params, metric values and tags of a run in ONE transaction (the SDK buffers and flushes here)."""
    require(actor, "run.start")
    metrics = list(metrics or [])
    for key, value, _step in metrics:
        if not isinstance(key, str) or not key:
            raise ValidationError("metric names must be non-empty strings")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(float(value)):
            raise ValidationError(f"metric {key!r} must be a finite number, got {value!r}")
    with db.unit_of_work() as s:
        run = _own_running_run(s, actor, run_id)
        if params:
            run.params = {**run.params, **{str(k): _json_value(v) for k, v in params.items()}}
        if tags:
            run.tags = {**run.tags, **{str(k): _json_value(v) for k, v in tags.items()}}
        if seed is not None:
            run.seed = int(seed)
        if params or tags or seed is not None:
            s.add(run)
        if metrics:
            s.bulk_insert_mappings(
                RunMetric, [{"run_id": run.id, "key": k, "value": float(v), "step": st} for k, v, st in metrics]
            )
            latest: dict[str, tuple[float, int | None]] = {}
            for k, v, st in metrics:
                prev = latest.get(k)
                if prev is None or st is None or prev[1] is None or st >= prev[1]:
                    latest[k] = (float(v), st)
            existing = {
                m.key: m
                for m in s.exec(
                    select(RunLatestMetric).where(
                        RunLatestMetric.run_id == run.id, col(RunLatestMetric.key).in_(list(latest))
                    )
                ).all()
            }
            new = []
            for k, (v, st) in latest.items():
                row = existing.get(k)
                if row is None:
                    new.append({"run_id": run.id, "key": k, "value": v, "step": st})
                elif st is None or row.step is None or st >= row.step:
                    row.value, row.step = v, st
                    s.add(row)
            if new:
                s.bulk_insert_mappings(RunLatestMetric, new)
        audit.record(
            s,
            actor=actor,
            action="run.log",
            entity_type="run",
            entity_id=run_id,
            summary=f"run {run_id}: logged {len(params or {})} params, {len(metrics)} metric values, "
            f"{len(tags or {})} tags",
        )
    return len(metrics)


def _json_value(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


def log_model_for_run(db: Database, *, actor: Actor, run_id: int, estimator, input_example=None) -> str:
    """Store a fitted estimator of an SDK run with skops; the input schema comes from `input_example`
    (a DataFrame of training features) or, failing that, from the estimator's `feature_names_in_`."""
    require(actor, "run.start")

    with db.read() as s:
        _own_running_run(s, actor, run_id)
    schema = None
    if input_example is not None:
        schema = training.infer_input_schema(pd.DataFrame(input_example))
    elif getattr(estimator, "feature_names_in_", None) is not None:
        schema = [{"name": str(n), "type": "number"} for n in estimator.feature_names_in_]
    try:
        data = persistence.dump_model(estimator)
    except Exception as exc:  # noqa: BLE001 - skops refuses what it cannot persist safely
        raise ValidationError(
            f"this model cannot be saved with skops ({type(exc).__name__}: {exc}); "
            "log a scikit-learn estimator or Pipeline"
        ) from exc
    return log_model_bytes(
        db, actor=actor, run_id=run_id, data=data, input_schema=schema, label=type(estimator).__name__
    )


def refuse_disallowed_model(
    db: Database, *, actor: Actor, run_id: int, data: bytes, what: str, record_types: bool = False
) -> None:
    """Refuse now, by name and audited, a skops file that holds what nothing would ever load (builtins.eval,
    numpy.full_like, ...): the types are read from the file's schema, nothing is built, nothing is stored.
    Raises the ValidationError naming the refused types; returns when the file is fine."""
    refused = persistence.refused_model_types(data)
    if not refused:
        return
    with db.unit_of_work() as s:
        audit.record(
            s,
            actor=actor,
            action="run.log_model_refused",
            entity_type="run",
            entity_id=run_id,
            summary=f"run {run_id}: {what} refused: it contains {', '.join(refused)}"[:500],
            after={"refused_types": refused[:50]} if record_types else None,
        )
    persistence.check_model_bytes(data)  # raises the ValidationError naming the refused types


def log_model_bytes(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    data: bytes,
    input_schema: list[dict[str, Any]] | None = None,
    label: str = "model",
) -> str:
    """Store a skops model file of a running run (the Hub API receives bytes, never an object): refused by
    name, and nothing stored, if it holds a type outside the exact allow-list."""
    require(actor, "run.start")

    with db.read() as s:
        _own_running_run(s, actor, run_id)
    refuse_disallowed_model(db, actor=actor, run_id=run_id, data=data, what=f"model {label}", record_types=True)
    key = artifacts.put_bytes(f"runs/{run_id}/model.skops", data)
    with db.unit_of_work() as s:
        run = _own_running_run(s, actor, run_id)
        run.model_artifact_key = key
        if input_schema is not None:
            run.input_schema = input_schema
        s.add(run)
        art = s.exec(select(RunArtifact).where(RunArtifact.run_id == run.id, RunArtifact.name == "model.skops")).first()
        if art is None:
            s.add(RunArtifact(run_id=run.id, name="model.skops", kind="model", artifact_key=key, size_bytes=len(data)))
        else:
            art.size_bytes = len(data)
            s.add(art)
        audit.record(
            s,
            actor=actor,
            action="run.log_model",
            entity_type="run",
            entity_id=run_id,
            summary=f"run {run_id}: model {label} stored ({len(data):,} bytes)",
        )
    return key


def check_artifact_path(path: str) -> str:
    """A run artifact's path ("plots/roc.json"), checked: relative, no '..', '.', empty or hidden parts."""
    norm = str(path or "").strip().replace("\\", "/")
    parts = norm.split("/")
    if (
        not norm
        or norm.startswith("/")
        or ":" in parts[0]
        or len(norm) > 200
        or any(p in ("", ".", "..") or not p.isprintable() for p in parts)
    ):
        raise ValidationError(
            f"invalid artifact path {path!r}: use a relative path like 'plots/roc.json' "
            "(no '..', no leading '/', at most 200 characters)"
        )
    return norm


def log_artifact_bytes(
    db: Database, *, actor: Actor, run_id: int, path: str, data: bytes, media_type: str = "application/octet-stream"
) -> RunArtifactPublic:
    """Store a file of a running run under its path (replacing a file of the same path)."""
    require(actor, "run.start")
    name = check_artifact_path(path)
    if name == "model.skops":
        raise ValidationError("model.skops is the run's model: log it with log_model, not as a file")
    with db.read() as s:
        _own_running_run(s, actor, run_id)
    key = artifacts.put_bytes(f"runs/{int(run_id)}/files/{name}", data)
    with db.unit_of_work() as s:
        run = _own_running_run(s, actor, run_id)
        art = s.exec(select(RunArtifact).where(RunArtifact.run_id == run.id, RunArtifact.name == name)).first()
        if art is None:
            art = RunArtifact(run_id=run.id, name=name, kind="file", artifact_key=key)
        art.size_bytes, art.media_type = len(data), (media_type or "application/octet-stream")[:100]
        s.add(art)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="run.log_artifact",
            entity_type="run",
            entity_id=run_id,
            summary=f"run {run_id}: file {name} stored ({len(data):,} bytes)",
        )
        return RunArtifactPublic.model_validate(art, from_attributes=True)


def artifact_by_path(db: Database, *, run_id: int, path: str) -> tuple[RunArtifactPublic, bytes]:
    """A run's file by its path, with its content (for download)."""
    name = check_artifact_path(path)
    with db.read() as s:
        _get_row(s, run_id)
        art = s.exec(select(RunArtifact).where(RunArtifact.run_id == int(run_id), RunArtifact.name == name)).first()
        if art is None:
            raise NotFound(
                f"run {run_id} has no file {name!r}; list its files with GET /api/v1/runs/{run_id}/artifacts"
            )
        pub = RunArtifactPublic.model_validate(art, from_attributes=True)
    if not artifacts.exists(pub.artifact_key):
        raise NotFound(f"the file {name} of run {run_id} is missing from the artifact store ({pub.artifact_key})")
    return pub, artifacts.get_bytes(pub.artifact_key)


def end_sdk_run(
    db: Database, *, actor: Actor, run_id: int, status: str = "finished", error: str | None = None
) -> RunPublic:
    require(actor, "run.start")
    if status not in FINAL_STATUSES:
        raise ValidationError(f"a run ends finished, failed or cancelled, not {status!r}")
    with db.read() as s:
        run = _get_row(s, run_id)
        if run.created_by != actor.username and not can(actor, "run.write_any"):
            raise ValidationError(f"run {run_id} belongs to {run.created_by}")
    _end_run(db, run_id, status, error, actor=actor)
    return get_run(db, run_id)


# --- notes and tags (issue 15: what MLflow and W&B users edit on a run) ------------------------------------

# The run's notes are MLflow's: the tag `mlflow.note.content`, so an MLflow client sees them as the run's
# description and a note set from code shows on the run page.
NOTE_TAG = "mlflow.note.content"
# Tags the hub or a client's integration sets and reads (run name, dataset link, CI origin, where the search
# ran): shown, never edited by hand.
SYSTEM_TAG_PREFIXES = ("mlflow.", "mlops.", "ci.")
SYSTEM_TAG_KEYS = frozenset(
    {"executor", "dask_scheduler", "dask_workers", "dask_workers_lost", "search_seconds", "search_candidate_seconds"}
)
MAX_TAG_KEY = 250  # MLflow's limit
MAX_TAG_VALUE = 5000
MAX_NOTES = 50_000
MAX_USER_TAGS = 100


def is_system_tag(key: str) -> bool:
    return key in SYSTEM_TAG_KEYS or key.startswith(SYSTEM_TAG_PREFIXES)


def run_notes(run: RunPublic) -> str:
    return str(run.tags.get(NOTE_TAG) or "")


def user_tags(run: RunPublic) -> dict[str, str]:
    """The run's own tags (what people set), without the notes and the system tags."""
    return {k: str(v) for k, v in sorted(run.tags.items()) if not is_system_tag(k)}


def may_annotate(actor: Actor | None, run: RunPublic) -> bool:
    """The run's owner, or a role with run.annotate (data scientists, admins)."""
    return actor is not None and (run.created_by == actor.username or can(actor, "run.annotate"))


def _tag_key(key: Any) -> str:
    text = str(key).strip()
    if not text or len(text) > MAX_TAG_KEY:
        raise ValidationError(f"a tag name has 1 to {MAX_TAG_KEY} characters, got {str(key)[:40]!r}")
    if is_system_tag(text):
        raise ValidationError(
            f"tag {text!r} is set by the hub or a client integration (names starting with "
            f"{', '.join(SYSTEM_TAG_PREFIXES)} and where the search ran); choose another name"
        )
    return text


def annotate_run(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    notes: str | None = None,
    tags: Mapping[str, Any] | None = None,
    remove_tags: Iterable[str] = (),
) -> RunPublic:
    """Edit a run's notes (None: unchanged, "": cleared) and tags (set `tags`, delete `remove_tags`), in any
    status. The run's owner may; anyone else needs run.annotate. One unit of work, audited before/after."""
    if actor is None:
        raise PermissionDenied("you must be logged in to do this")
    new_tags = {_tag_key(k): str(v if v is not None else "") for k, v in (tags or {}).items()}
    for k, v in new_tags.items():
        if len(v) > MAX_TAG_VALUE:
            raise ValidationError(f"tag {k!r}: a value has at most {MAX_TAG_VALUE:,} characters, got {len(v):,}")
    gone = {_tag_key(k) for k in remove_tags} - set(new_tags)
    if notes is not None and len(notes) > MAX_NOTES:
        raise ValidationError(f"notes have at most {MAX_NOTES:,} characters, got {len(notes):,}")
    with db.unit_of_work() as s:
        run = _get_row(s, run_id)
        if run.created_by != actor.username and not can(actor, "run.annotate"):
            require(actor, "run.annotate")  # raises with the sentence naming the roles that may
        old = dict(run.tags)
        merged = {k: v for k, v in old.items() if k not in gone}
        merged.update(new_tags)
        if notes is not None:
            if notes.strip():
                merged[NOTE_TAG] = notes
            else:
                merged.pop(NOTE_TAG, None)
        if len([k for k in merged if not is_system_tag(k)]) > MAX_USER_TAGS:
            raise ValidationError(f"a run has at most {MAX_USER_TAGS} tags of its own; remove some first")
        changed = sorted(k for k in set(old) | set(merged) if old.get(k) != merged.get(k))
        if not changed:
            return _publics(s, [run])[0]
        run.tags = merged
        s.add(run)
        what = []
        if NOTE_TAG in changed:
            what.append("notes")
        if tag_changes := [k for k in changed if k != NOTE_TAG]:
            what.append("tags " + ", ".join(tag_changes[:10]) + (" …" if len(tag_changes) > 10 else ""))
        audit.record(
            s,
            actor=actor,
            action="run.annotate",
            entity_type="run",
            entity_id=run.id,
            summary=f"run {run.id}: edited {' and '.join(what)}",
            before={k: old.get(k) for k in changed},
            after={k: merged.get(k) for k in changed},
        )
        s.flush()
        return _publics(s, [run])[0]
