"""What runs inside a job's own process: the JobContext given to handlers, and the entry point.

Each job runs in a child process of the worker, so that the worker can stop it on cancel and
a crashing job (segfault, os._exit, out of memory) cannot take the worker down. The child
records its own outcome (finished / failed with the traceback / cancelled); when it dies
without a word the worker records that instead.
"""

from __future__ import annotations

import importlib
import json
import gc
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

from ..config import get_settings
from ..db import Database
from .queue import JobCancelled, fail_job, finish_job, is_cancel_requested, mark_cancelled, set_progress

log = logging.getLogger(__name__)

# Progress and cancel checks hit the database at most this often (handlers may call them in tight loops).
PROGRESS_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 0.5


class JobContext:
    """Given to a handler: `job_id`, `payload`, `db`, `attempt`, `worker`, `progress()`, `check_cancelled()`."""

    def __init__(self, *, job_id: int, payload: dict[str, Any], db, attempt: int = 1, worker: str = "inline"):
        self.job_id = job_id
        self.payload = payload
        self.db = db
        self.attempt = attempt
        self.worker = worker
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1) and a short message on the job row, for pages to show live."""
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        try:
            set_progress(
                self.db,
                job_id=self.job_id,
                worker=self.worker,
                attempt=self.attempt,
                fraction=fraction,
                message=message,
            )
        except Exception as exc:  # noqa: BLE001 - progress is best effort; the job itself goes on
            log.warning("job %s: could not record progress: %s", self.job_id, exc)

    def check_cancelled(self) -> None:
        """Raise JobCancelled if someone asked to cancel this job (checked at most twice a second)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_EVERY_S:
            self._last_cancel_check = now
            try:
                self._cancelled = is_cancel_requested(self.db, self.job_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("job %s: could not check for cancellation: %s", self.job_id, exc)
        if self._cancelled:
            raise JobCancelled(f"job {self.job_id} was cancelled")

    @property
    def cancel_requested(self) -> bool:
        try:
            self.check_cancelled()
        except JobCancelled:
            return True
        return False


def resolve_handler(kind: str) -> Callable:
    from .handlers import HANDLERS  # a real cycle: the handlers import the services, which import this package

    target = HANDLERS.get(kind)
    if target is None:
        raise LookupError(f"no handler for job kind {kind!r}; add it to mlops_core/jobs/handlers.py::HANDLERS")
    module_name, _, func_name = target.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def _json_safe(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"value": value}
    return json.loads(json.dumps(value, default=str))


def execute(db, *, job_id: int, kind: str, payload: dict[str, Any], worker: str, attempt: int) -> str:
    """Run one claimed job in this process and record its outcome. Returns the status written."""
    ctx = JobContext(job_id=job_id, payload=payload, db=db, attempt=attempt, worker=worker)
    try:
        fn = resolve_handler(kind)
        result = fn(ctx)
    except JobCancelled:
        mark_cancelled(db, job_id=job_id, worker=worker, attempt=attempt, message="cancelled by request")
        return "cancelled"
    except BaseException as exc:  # noqa: BLE001 - everything a handler raises is the job's failure
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}\n\n{tb}"
        status = fail_job(db, job_id=job_id, worker=worker, attempt=attempt, error=error[-20000:])
        return status or "lost"
    ok = finish_job(db, job_id=job_id, worker=worker, attempt=attempt, result=_json_safe(result))
    return "finished" if ok else "lost"


# Exit codes of a job process whose outcome is recorded (any other code: it died without recording it).
EXIT_CODES = {"finished": 0, "failed": 10, "queued": 11, "cancelled": 12, "lost": 13}
STATUS_BY_EXIT_CODE = {v: k for k, v in EXIT_CODES.items()}


def child_main(database_url: str, job_id: int, kind: str, payload: dict[str, Any], worker: str, attempt: int) -> None:
    """Entry point of a job's process (multiprocessing target)."""
    # Ctrl-C in a terminal (SIGINT) and `systemctl stop` (SIGTERM) reach the whole process group:
    # the worker decides what happens to its jobs (finish, or give back), so a job ignores both;
    # the worker stops a job with SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=get_settings().log_level,
        format=f"%(asctime)s %(levelname)s job-{job_id}[{os.getpid()}] %(name)s: %(message)s",
    )
    db = Database(database_url)
    try:
        status = execute(db, job_id=job_id, kind=kind, payload=payload, worker=worker, attempt=attempt)
    finally:
        db.dispose()
    # The exit code tells the worker what was recorded, so it need not read the job back.
    sys.exit(EXIT_CODES.get(status, 1))


# What the handlers import lazily (inside functions, to keep pages and the worker light): loaded once
# in the fork server too, or every training job would pay ~2-3 s of imports (numpy, pandas, pyarrow,
# scikit-learn, and ~1 s for skops alone) before its first fit. Import only: nothing here may start a
# thread pool or an OpenMP region in the fork server (a forked child cannot inherit those).
PRELOAD_MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "scipy.sparse",
    "threadpoolctl",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "skops.io",
    "mlops_core.data_io",
    "mlops_core.ml.training",
)


def _preload() -> None:
    """Import the handler modules and the libraries they use once in the fork server, so each job
    starts in milliseconds and trains at once. Best effort: a module that fails to import fails its
    own jobs later, with the traceback."""
    # The fork server must outlive a SIGTERM sent to the whole process group while the worker
    # drains its jobs; it exits by itself when the worker is gone.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .handlers import HANDLERS  # the same cycle as resolve_handler's

    for name in [t.partition(":")[0] for t in sorted(set(HANDLERS.values()))] + list(PRELOAD_MODULES):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
            pass
    try:
        from ..ml import training  # inside the try: preloading is best effort

        # Facts every run records (importlib.metadata scan, `git rev-parse`): read once, here, where
        # the code the jobs will run was imported, instead of in every job process.
        training.package_versions()
        training.code_version()
        training.warm_up()
    except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
        pass
    try:
        get_settings()
    except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
        pass
    # Everything loaded so far lives as long as the fork server: keep it out of the garbage collector
    # of the job processes, whose collections would otherwise walk (and copy-on-write) all of it.
    gc.collect()
    gc.freeze()
    try:
        import sqlite3  # noqa: F401

        import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        import mlops_core.models  # noqa: F401

        # Done once here instead of in every job process (it costs ~0.1 s with all the tables).
        configure_mappers()
    except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
        pass
    try:
        import psycopg  # noqa: F401

        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
        pass
