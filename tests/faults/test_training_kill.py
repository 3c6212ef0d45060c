"""A worker killed with SIGKILL in the middle of a training run (issue 8's first fault): real worker
processes on the shared database (Postgres when its leg is on). The run ends failed with the reason,
found by the surviving worker by itself; nothing stays "running"; no model is half-registered."""

from __future__ import annotations

import signal

import psutil
from sqlalchemy import text

from mlops_core import jobs
from mlops_core.db import Database
from mlops_core.services import experiments
from tests.conftest import make_people
from tests.faults.workers import HEARTBEAT_TIMEOUT, wait_for
from tests.services.experiments_world import make_world


def _count(db: Database, table: str) -> int:
    with db.read() as s:
        return s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_sigkill_mid_training_fails_the_run_and_registers_nothing(db_url, workers_for, artifact_root):  # noqa: F811
    db = Database(db_url)
    people = make_people(db)
    world = make_world(db, people, n=5000)
    models_before = _count(db, "model_versions")
    run = experiments.start_run(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={
            "target": "churned",
            "algorithm": "random_forest",
            "params": {"n_estimators": 5000},
            "split": "holdout",
            "test_size": 0.25,
            "seed": 7,
        },
    )
    w = workers_for(db_url)
    doomed = w.start("doomed")
    wait_for(lambda: experiments.get_run(db, run.id).status == "running", 90, "the worker to start training")
    job_procs = [c for c in psutil.Process(doomed.pid).children(recursive=True)]
    assert job_procs, "the job runs in a process of its own"

    survivor = w.start("survivor")
    wait_for(lambda: any(x.name == "survivor" for x in jobs.list_workers(db)), 60, "the second worker to start")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in job_procs),
        15,
        "the training process to die with its worker",
    )

    got = wait_for(
        lambda: (r := experiments.get_run(db, run.id)).status not in ("queued", "running") and r,
        HEARTBEAT_TIMEOUT + 60,
        "the surviving worker to settle the dead worker's run",
    )
    assert got.status == "failed", got.status
    assert "stopped responding" in (got.error or ""), got.error
    assert jobs.list_jobs(db, status="running") == []
    assert _count(db, "model_versions") == models_before
    assert got.model_artifact_key is None, "a killed run has no stored model"
    assert _count(db, "run_artifacts") == 0
    assert survivor.poll() is None, "the surviving worker keeps running"
    db.dispose()
