"""/api/v1/deployments/{name}/predictions:upload and .../labels:upload: a bundle run elsewhere sends its
prediction log and labels to the Hub (issue 19, hybrid monitoring).

Authenticated by an upload key of the deployment (`Authorization: Bearer mlu_...`, created on the deployment
page; not a personal access token): no/unknown/revoked key 401, a key of another deployment 403. The body is
JSON, gzip-compressed when sent with `Content-Encoding: gzip` (bounded after decompression):

    {"batch_id": "<8-64 chars, unique per batch>", "rows": [{request_id, created_at, inputs, prediction,
     score, latency_ms, model_version_id, status, error}, ...], "backlog": <rows still buffered>,
     "dropped": <rows dropped from a full buffer, cumulative>}
    {"batch_id": "...", "labels": [{"request_id": "...", "label": ...}, ...]}

A batch id seen before is answered 200 with "duplicate": true and stores nothing (a retry after a lost answer).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ...errors import ValidationError
from ...services import targets
from .deps import get_db
from .errors import TooLarge

router = APIRouter(tags=["deployments"])

MAX_COMPRESSED = 8_000_000
MAX_DECOMPRESSED = 64_000_000


def _key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


async def _body(request: Request) -> dict[str, Any]:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_COMPRESSED:
            raise TooLarge(f"the upload is over {MAX_COMPRESSED:,} bytes; send smaller batches")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = d.decompress(raw, MAX_DECOMPRESSED)
        except zlib.error as exc:
            raise ValidationError(f"the body is not valid gzip ({exc})") from None
        if d.unconsumed_tail:
            raise TooLarge(f"the upload is over {MAX_DECOMPRESSED:,} bytes once decompressed; send smaller batches")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValidationError('the body must be a JSON object: {"batch_id": ..., "rows": [...]}')
    return doc


@router.post("/deployments/{name}/predictions:upload")
async def upload_predictions(name: str, request: Request):
    key = _key(request)
    doc = await _body(request)
    return await run_in_threadpool(
        targets.receive_predictions,
        get_db(request),
        deployment_name=name,
        key=key,
        batch_id=doc.get("batch_id"),
        rows=doc.get("rows"),
        backlog=doc.get("backlog", 0),
        dropped=doc.get("dropped", 0),
    )


@router.post("/deployments/{name}/labels:upload")
async def upload_labels(name: str, request: Request):
    key = _key(request)
    doc = await _body(request)
    return await run_in_threadpool(
        targets.receive_labels,
        get_db(request),
        deployment_name=name,
        key=key,
        batch_id=doc.get("batch_id"),
        labels=doc.get("labels"),
    )
