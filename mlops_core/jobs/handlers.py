"""Job kinds -> handler functions, as "module:function" strings (imported only by the job's process).

A handler is `fn(ctx: mlops_core.jobs.JobContext) -> dict | None`: read `ctx.payload`, use
`ctx.db`, report with `ctx.progress(fraction, message)`, call `ctx.check_cancelled()` between
steps; the returned dict is stored as the job's result. Raise to fail the attempt (the
worker records the traceback; jobs enqueued with max_attempts > 1 are retried).

Stages add one line each. Keep this module free of heavy imports.
"""

from __future__ import annotations

import os
import time

HANDLERS: dict[str, str] = {
    # built-in kinds (tests, smoke checks, benchmarks)
    "noop": "mlops_core.jobs.handlers:noop",
    "sleep": "mlops_core.jobs.handlers:sleep",
    "fail": "mlops_core.jobs.handlers:fail",
    # stage kinds (one line each):
    "ingest": "mlops_core.services.ingestion:run_ingestion",
    "train": "mlops_core.services.experiments:run_training",
    "monitor": "mlops_core.services.monitoring.checks:monitor_job",
    "alert_webhook": "mlops_core.services.monitoring.alerts:webhook_job",
    "monitor_report": "mlops_core.services.monitoring.reports:report_job",
    "retraining_advance": "mlops_core.services.retraining:advance_job",
    "batch_score": "mlops_core.services.predictions:batch_score_job",
    "notify_deliver": "mlops_core.services.delivery:deliver_job",
    "notify_retry": "mlops_core.services.delivery:retry_job",
    "notify_digest": "mlops_core.services.delivery:digest_job",
}


def _log_run(ctx) -> None:
    """With payload["log_file"], append one line per execution (tests count how often a job ran)."""
    path = ctx.payload.get("log_file")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{ctx.job_id} {ctx.worker} {os.getpid()}\n")


def noop(ctx) -> dict:
    """Does nothing; returns its payload (used to measure job start latency)."""
    _log_run(ctx)
    return {"ok": True, "echo": ctx.payload.get("echo")}


def sleep(ctx) -> dict:
    """Sleeps `seconds` in small steps, reporting progress. With `ignore_cancel` it never looks at
    cancellation (so the worker has to stop it); with `crash_at` it exits abruptly at that point."""
    seconds = float(ctx.payload.get("seconds", 1.0))
    ignore_cancel = bool(ctx.payload.get("ignore_cancel", False))
    crash_at = ctx.payload.get("crash_at")
    _log_run(ctx)
    step = min(0.1, seconds) if seconds > 0 else 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        if crash_at is not None and elapsed >= float(crash_at):
            os._exit(3)
        if not ignore_cancel:
            ctx.check_cancelled()
        ctx.progress(elapsed / seconds, f"slept {elapsed:.1f} of {seconds:g} s")
        time.sleep(step)
    if not ignore_cancel:
        ctx.check_cancelled()
    return {"slept": seconds}


def fail(ctx) -> None:
    """Always raises (to test failure and retry)."""
    raise RuntimeError(ctx.payload.get("message", "this job always fails"))
