"""The "ingest" job: read one scheduled ingestion source (a path or a SQL query) once.

Run by the worker when the source's schedule fires (see `datasets.schedule_ingestion`). A new
dataset version is created only when the content changed; a failed run is recorded with its
message on the run and the source (visible on the dataset page), then the job fails too.
"""

from __future__ import annotations

from typing import Any

from ..jobs import JobContext
from .datasets import run_ingestion_source


def run_ingestion(ctx: JobContext) -> dict[str, Any]:
    source_id = ctx.payload.get("source_id")
    if source_id is None:
        raise ValueError("an ingest job needs payload {'source_id': <id>}")

    def progress(fraction: float, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress(fraction, message)

    run = run_ingestion_source(ctx.db, source_id=int(source_id), job_id=ctx.job_id, progress=progress)
    return {"run_id": run.id, "status": run.status, "version_id": run.version_id}
