"""Experiments: queue runs with their train job, train them, list/sort/compare in SQL, KPI lights, cancel,
reproduce, and the guard rails on bad input."""

import pytest

from mlops_core import jobs
from mlops_core.errors import Conflict, PermissionDenied, ValidationError
from mlops_core.models.jobs import Job
from mlops_core.services import audit, datasets, experiments

from .experiments_world import FAST, make_world, run_jobs


def _start(db, people, world, algorithms=("logistic_regression",), **cfg):
    return experiments.start_runs(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", **FAST, **cfg},
        algorithms=list(algorithms),
        params_by_algorithm={
            "random_forest": {"n_estimators": 10},
            "gradient_boosting": {"n_estimators": 10},
            "hist_gradient_boosting": {"max_iter": 10},
        },
    )


def test_starting_a_run_queues_it_with_its_train_job_and_returns_at_once(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world)
    assert run.status == "queued" and run.job_id is not None
    job = jobs.get_job(db, run.job_id)
    assert job.kind == "train" and job.payload == {"run_id": run.id}
    assert audit.list_events(db, actor=people["admin"], action="run.start").total == 1


def test_the_worker_trains_a_run_and_records_metrics_params_and_reproducibility_facts(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world, algorithms=["gradient_boosting"])
    assert run_jobs(db) == ["finished"]
    got = experiments.get_run(db, run.id)
    assert got.status == "finished", got.error
    assert set(got.metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert set(got.train_metrics) >= {"accuracy", "roc_auc"}
    assert got.params["n_estimators"] == 10 and got.seed == 7
    assert got.dataset_hash and got.package_versions["scikit-learn"] and got.duration_seconds > 0
    assert [a.name for a in experiments.list_artifacts(db, run.id)] == ["model.skops", "plots.json"]
    plots = experiments.plot_data(db, run.id)
    assert plots.confusion_matrix and plots.roc and plots.pr and plots.feature_importance
    assert plots.staged.stage[-1] == 10  # per-stage learning curve of the boosting model


def test_cross_validation_records_every_fold_and_their_mean(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world, split="cv", folds=3)
    run_jobs(db)
    got = experiments.get_run(db, run.id)
    assert got.status == "finished", got.error
    folds = experiments.metric_history(db, run.id, "fold_accuracy")["fold_accuracy"]
    assert [s for s, _ in folds] == [1, 2, 3]
    assert got.metrics["accuracy"] == pytest.approx(sum(v for _, v in folds) / 3)


def test_runs_are_sorted_by_a_metric_filtered_and_paginated_in_sql(db, people):
    world = make_world(db, people)
    runs = _start(db, people, world, algorithms=["logistic_regression", "random_forest", "gradient_boosting"])
    run_jobs(db)
    page = experiments.list_runs(db, use_case_id=world.use_case_id, sort="metric:roc_auc", limit=2)
    assert page.total == 3 and len(page.items) == 2
    aucs = [experiments.get_run(db, r.id).metrics["roc_auc"] for r in runs]
    assert page.items[0].metrics["roc_auc"] == max(aucs)
    only_rf = experiments.list_runs(db, algorithm="random_forest")
    assert [r.algorithm for r in only_rf.items] == ["random_forest"]
    ranked = experiments.rank_by_kpi(db, use_case_id=world.use_case_id, kpi_id=world.kpi_ids["roc_auc"])
    assert ranked.items[0].id == page.items[0].id
    best = experiments.best_metrics(db, use_case_id=world.use_case_id, directions={"roc_auc": ">=", "log_loss": "<="})
    assert best["roc_auc"] == max(aucs)


def test_compare_shows_differing_params_and_kpi_lights_per_run(db, people):
    world = make_world(db, people)
    runs = _start(db, people, world, algorithms=["logistic_regression", "random_forest"])
    run_jobs(db)
    cmp = experiments.compare_runs(db, run_ids=[r.id for r in runs])
    # Each belongs to one of the two algorithms: blank for the other, not a difference (issue 15, problem 9).
    assert "n_estimators" not in cmp.differing_params and "C" not in cmp.differing_params
    assert {"n_estimators", "C"} <= set(cmp.param_keys)
    assert "roc_auc" in cmp.metric_keys
    lights = {c.kpi.metric: c.status for c in cmp.kpi[runs[0].id]}
    assert lights["roc_auc"] in ("met", "warning") and lights["recall"] == "missed"
    with pytest.raises(ValidationError, match="at least two"):
        experiments.compare_runs(db, run_ids=[runs[0].id])


def test_reproducing_a_run_gives_the_same_metrics_on_the_same_data_version(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world, algorithms=["random_forest"])
    run_jobs(db)
    again = experiments.reproduce_run(db, actor=people["data_scientist"], run_id=run.id)
    assert again.config == experiments.get_run(db, run.id).config and again.reproduced_from_run_id == run.id
    assert experiments.reproduction_report(db, again.id).status == "pending"
    run_jobs(db)
    report = experiments.reproduction_report(db, again.id)
    assert report.status == "match", report.differences


def test_cancelling_a_queued_run_cancels_its_job(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world)
    got = experiments.cancel_run(db, actor=people["data_scientist"], run_id=run.id)
    assert got.status == "cancelled"
    assert jobs.get_job(db, run.job_id).status == "cancelled"
    assert run_jobs(db) == []
    with pytest.raises(Conflict, match="already ended"):
        experiments.cancel_run(db, actor=people["data_scientist"], run_id=run.id)


def test_a_running_run_stops_at_its_next_check_when_cancelled(db, people):
    from mlops_core.jobs import queue, runner

    world = make_world(db, people)
    [run] = _start(db, people, world)
    job = queue.claim_next(db, worker="w1")
    experiments._set_status(db, run.id, status="running")
    experiments.cancel_run(db, actor=people["data_scientist"], run_id=run.id)
    assert experiments.get_run(db, run.id).status == "running"  # until the worker notices
    runner.CANCEL_CHECK_EVERY_S = 0.0
    assert (
        runner.execute(db, job_id=job.id, kind="train", payload=job.payload, worker="w1", attempt=job.attempts)
        == "cancelled"
    )
    assert experiments.get_run(db, run.id).status == "cancelled"


def test_a_run_whose_worker_died_is_shown_failed_not_running_for_ever(db, people):
    world = make_world(db, people)
    [run] = _start(db, people, world)
    from mlops_core.jobs import queue

    queue.claim_next(db, worker="doomed")
    experiments._set_status(db, run.id, status="running")
    with db.unit_of_work() as s:  # what the reaper writes when the heartbeat stops
        job = s.get(Job, run.job_id)
        job.status, job.error = "failed", "worker doomed stopped sending heartbeats"
    got = experiments.get_run(db, run.id)
    assert got.status == "failed" and "heartbeats" in got.error


def test_a_failing_training_marks_the_run_failed_with_the_traceback(db, people, monkeypatch):
    world = make_world(db, people)
    [run] = _start(db, people, world)
    from mlops_core.ml import training

    def boom(*a, **k):
        raise MemoryError("out of memory while fitting")

    monkeypatch.setattr(training, "train", boom)
    assert run_jobs(db) == ["failed"]
    got = experiments.get_run(db, run.id)
    assert got.status == "failed" and "out of memory" in got.error and "Traceback" in got.error


def test_only_data_scientists_and_admins_start_or_cancel_runs(db, people):
    world = make_world(db, people)
    for role in ("business", "data_engineer", "ops"):
        with pytest.raises(PermissionDenied):
            experiments.start_run(
                db,
                actor=people[role],
                use_case_id=world.use_case_id,
                dataset_version_id=world.version_id,
                config={"target": "churned", "algorithm": "logistic_regression"},
            )
    [run] = _start(db, people, world)
    with pytest.raises(PermissionDenied):
        experiments.cancel_run(db, actor=people["ops"], run_id=run.id)


def test_a_dataset_version_that_failed_validation_cannot_be_trained_on(db, people):
    world = make_world(db, people)
    from mlops_core.models.datasets import DatasetVersion

    with db.unit_of_work() as s:
        s.get(DatasetVersion, world.version_id).status = "failed"
    with pytest.raises(ValidationError, match="not validated.*approve or waive"):
        _start(db, people, world)
    assert experiments.list_runs(db).total == 0  # nothing half-written
    assert datasets.get_version(db, world.version_id).status == "failed"


def test_bad_launch_configs_are_refused_with_what_to_fix(db, people):
    world = make_world(db, people)
    with pytest.raises(ValidationError, match="not in this dataset version"):
        _start(db, people, world, target="nope")
    with pytest.raises(ValidationError, match="grid has 10,000 combinations.*limit of 200"):
        experiments.start_run(
            db,
            actor=people["data_scientist"],
            use_case_id=world.use_case_id,
            dataset_version_id=world.version_id,
            config={
                "target": "churned",
                "algorithm": "random_forest",
                "params": {"n_estimators": list(range(1, 101)), "min_samples_leaf": list(range(1, 101))},
            },
        )
    assert experiments.list_runs(db).total == 0


def test_a_worker_killed_with_sigkill_mid_training_leaves_the_run_failed_not_running(sqlite_db):
    """A real worker process is killed while it trains; the reaper's verdict reaches the run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from mlops_core.config import PROJECT_ROOT
    from mlops_core.jobs import queue
    from tests.conftest import make_people

    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    run = experiments.start_run(
        sqlite_db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={
            "target": "churned",
            "algorithm": "random_forest",
            "params": {"n_estimators": 5000},
            **{k: v for k, v in FAST.items() if k != "params"},
        },
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "worker", "--no-scheduler", "--name", "doomed"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLOPS_WORKER_POLL_SECONDS": "0.2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while experiments.get_run(sqlite_db, run.id).status != "running":
            assert time.monotonic() < deadline, "the worker never started the run"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert experiments.get_run(sqlite_db, run.id).status == "running"
    queue.reap_stale_jobs(sqlite_db, timeout_seconds=0)  # what any live worker does every few seconds
    got = experiments.get_run(sqlite_db, run.id)
    assert got.status == "failed" and "stopped responding" in got.error


def test_kpi_lights_of_many_use_cases_come_from_one_grouped_query_and_match_each_use_case_alone(db, people):
    from sqlalchemy import event

    from mlops_core.services import usecases

    first, second = make_world(db, people), make_world(db, people, name="customers2")
    _start(db, people, first, algorithms=["logistic_regression", "random_forest"])
    _start(db, people, second, algorithms=["gradient_boosting"])
    run_jobs(db)
    idle = usecases.create_use_case(db, actor=people["business"], title="No runs yet", problem_statement="p")
    usecases.add_kpi(db, actor=people["business"], use_case_id=idle.id, kind="model", metric="roc_auc", target=0.7)
    directions = {
        first.use_case_id: {"roc_auc": ">=", "log_loss": "<="},
        second.use_case_id: {"roc_auc": ">="},
        idle.id: {"roc_auc": ">="},
    }

    many = experiments.best_metrics_many(db, directions)
    for uc, d in directions.items():
        assert many[uc] == experiments.best_metrics(db, use_case_id=uc, directions=d)
    aucs = [r.metrics["roc_auc"] for r in experiments.list_runs(db, use_case_id=first.use_case_id).items]
    losses = [r.metrics["log_loss"] for r in experiments.list_runs(db, use_case_id=first.use_case_id).items]
    assert len(aucs) == 2 and many[first.use_case_id] == {"roc_auc": max(aucs), "log_loss": min(losses)}
    assert set(many[second.use_case_id]) == {"roc_auc"} and many[idle.id] == {}

    cases = [usecases.get_use_case(db, use_case_id=u) for u in directions]
    statements = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        lights = usecases.kpi_status_many(db, cases)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2  # not one per use case
    for uc in cases:
        assert [(c.kpi.id, c.value, c.status) for c in lights[uc.id]] == [
            (c.kpi.id, c.value, c.status) for c in usecases.kpi_status(db, uc)
        ]
    first_auc = next(c for c in lights[first.use_case_id] if c.kpi.metric == "roc_auc")
    assert first_auc.value == max(aucs) and first_auc.status != "unknown"
    assert [c.status for c in lights[idle.id]] == ["unknown"]


def test_runs_without_a_value_of_a_nullable_sort_column_come_last_either_way_and_newest_come_first(db, people):
    world = make_world(db, people)
    _start(db, people, world, algorithms=["logistic_regression", "random_forest"])
    run_jobs(db)
    [waiting] = _start(db, people, world)  # queued: no duration yet
    for descending in (True, False):
        ids = [r.id for r in experiments.list_runs(db, sort="duration", descending=descending).items]
        assert ids[-1] == waiting.id and len(ids) == 3
    newest = experiments.list_runs(db, use_case_id=world.use_case_id, sort="created_at").items
    assert newest[0].id == waiting.id
    assert [r.id for r in experiments.list_runs(db, sort="created_at", descending=False).items][-1] == waiting.id


def test_training_metrics_are_about_the_canvas_positive_class(db, people):
    """Issue 20: with the canvas's positive class "0" (not the default "1"), recall and the curves are about 0."""
    from mlops_core.services import canvas

    world = make_world(db, people)
    canvas.save_canvas(
        db, actor=people["business"], use_case_id=world.use_case_id, problem_type="binary", positive_class="0"
    )
    [run] = _start(db, people, world)
    run_jobs(db)  # the train job (and whatever else the canvas save queued)
    got = experiments.get_run(db, run.id)
    assert got.status == "finished", got.error
    plots = experiments.plot_data(db, run.id)
    assert plots.positive_class == "0"
    labels, cm = plots.confusion_matrix.labels, plots.confusion_matrix.matrix
    i = labels.index("0")
    assert got.metrics["recall"] == pytest.approx(cm[i][i] / sum(cm[i]))
    assert got.metrics["precision"] == pytest.approx(cm[i][i] / sum(row[i] for row in cm))
