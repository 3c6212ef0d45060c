"""/api/v1/datasets: datasets and their versions (list, get, upload, download, validation report, profile).

An upload is streamed from the request straight into the registration path the UI uses
(services/datasets.register_version_from_upload stages it chunk by chunk in a staging file): nothing is
held in memory, the size limit (MLOPS_MAX_UPLOAD_MB) is enforced while reading (413), and an upload cut
off mid-stream deletes its staging file and stores nothing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.from_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ... import artifacts, data_io
from ...errors import NotFound, ValidationError
from ...services import datasets
from ...services.auth import require
from .deps import DB, CurrentActor, Pagination, dump, paginate
from .errors import TooLarge

router = APIRouter(prefix="/datasets", tags=["datasets"])


def _version(db, name: str, version: str):
    """A version from the path: "3", "v3" or "latest" (the service resolves it and names the fix)."""
    v = version.strip().lower()
    if v == "latest":
        return datasets.resolve_ref(db, f"{name}@latest")
    if v.startswith("v"):
        v = v[1:]
    if not v.isdigit():
        raise ValidationError(f"version {version!r} is not a version number; write it as 3, v3 or latest")
    return datasets.resolve_ref(db, f"{name}@v{int(v)}")


def _use_case_id(db, use_case: str | None) -> int | None:
    return datasets.resolve_use_case(db, use_case) if use_case not in (None, "") else None


@router.get("", summary="Datasets, newest first (optionally of one use case, by id or title)")
def list_datasets(db: DB, actor: CurrentActor, page: Pagination, use_case: str | None = None) -> dict[str, Any]:
    return paginate(datasets.list_datasets(db, use_case_id=_use_case_id(db, use_case)), page)


@router.get("/{name}", summary="One dataset")
def get_dataset(name: str, db: DB, actor: CurrentActor) -> Any:
    return dump(datasets.get_dataset(db, name=name))


@router.get("/{name}/versions", summary="The versions of a dataset, newest first")
def list_versions(name: str, db: DB, actor: CurrentActor, page: Pagination) -> dict[str, Any]:
    d = datasets.get_dataset(db, name=name)
    return paginate(datasets.list_versions(db, d.id), page)


@router.get("/{name}/versions/{version}", summary="One version (3, v3 or latest): status, columns, counts")
def get_version(name: str, version: str, db: DB, actor: CurrentActor) -> Any:
    return dump(_version(db, name, version))


@router.get("/{name}/versions/{version}/report", summary="The version's validation report")
def get_report(name: str, version: str, db: DB, actor: CurrentActor) -> Any:
    return dump(datasets.get_report(db, _version(db, name, version).id))


@router.get("/{name}/versions/{version}/profile", summary="The version's profile (computed at registration)")
def get_profile(name: str, version: str, db: DB, actor: CurrentActor) -> Any:
    v = _version(db, name, version)
    profile = datasets.get_profile(db, v.id)
    if profile is None:
        raise NotFound(f"{v.ref} has no stored profile; revalidate it on the Data page to compute one")
    return dump(profile)


@router.get(
    "/{name}/versions/{version}/data",
    summary="Download the version as Parquet (default) or CSV",
    response_class=Response,
)
def download(
    name: str,
    version: str,
    db: DB,
    actor: CurrentActor,
    format: Annotated[Literal["parquet", "csv"], Query(description="parquet or csv")] = "parquet",
):  # noqa: A002 - the query parameter's public name
    v = _version(db, name, version)
    filename = f"{v.dataset_name}_v{v.version}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "csv":
        # to_safe_csv: formula-like cells are quoted, so the file is safe to open in a spreadsheet.
        return Response(datasets.export_csv(db, v.id), media_type="text/csv; charset=utf-8", headers=headers)
    path = artifacts.path(v.artifact_key)
    if not path.exists():
        raise NotFound(f"the data of {v.ref} is missing from the artifact store ({v.artifact_key})")
    return FileResponse(path, media_type="application/vnd.apache.parquet", headers=headers)


class _BodyReader:
    """A blocking file object over the request's async body stream, for the registration code (which runs in a
    worker thread): each read() fetches the next chunk on the event loop. It counts bytes and stops the
    upload past `limit` with a 413 before the staging file grows further."""

    def __init__(self, request: Request, limit: int, declared: int | None):
        self._chunks = request.stream().__aiter__()
        self._limit = limit
        self.size = declared  # stage_upload checks a declared size before reading anything
        self.read_bytes = 0

    def read(self, _n: int = -1) -> bytes:
        try:
            chunk = anyio.from_thread.run(self._chunks.__anext__)
        except StopAsyncIteration:
            return b""
        except ClientDisconnect:
            raise ValidationError("the upload was cut off before its end; nothing was stored: send it again") from None
        self.read_bytes += len(chunk)
        if self.read_bytes > self._limit:
            raise _too_large(self.read_bytes, self._limit, partial=True)
        return chunk


def _too_large(size: int, limit: int, *, partial: bool = False) -> TooLarge:
    what = f"over {size / 1e6:,.1f} MB" if partial else f"{size / 1e6:,.1f} MB"
    return TooLarge(
        f"the upload is {what}, over the limit of {limit / 1024 / 1024:,.0f} MB "
        "(MLOPS_MAX_UPLOAD_MB); nothing was stored: split it, send it as compressed Parquet, or ask an "
        "admin to raise the limit"
    )


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Upload a CSV or Parquet file (the request body) as a new version; validated like any upload",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload(
    name: str,
    request: Request,
    db: DB,
    actor: CurrentActor,
    filename: Annotated[str, Query(description="the file's name (.csv or .parquet)")] = "upload.csv",
    use_case: Annotated[str | None, Query(description="use case id or title")] = None,
    description: str = "",
) -> Any:
    # The role first: a user who may not register data is refused before a byte of the body is read.
    require(actor, "dataset.write")
    limit = data_io.max_upload_bytes()
    length = request.headers.get("content-length")
    declared = None
    if length is not None:
        if not length.isdigit():
            raise ValidationError("the Content-Length header is not a number")
        declared = int(length)
        if declared > limit:
            raise _too_large(declared, limit)
    use_case_id = await run_in_threadpool(_use_case_id, db, use_case)
    reader = _BodyReader(request, limit, declared)

    def register():
        return datasets.register_version_from_upload(
            db,
            actor=actor,
            dataset_name=name,
            fileobj=reader,
            filename=filename,
            use_case_id=use_case_id,
            description=description,
            source_kind="api",
        )

    try:
        version = await run_in_threadpool(register)
    except ValidationError as exc:
        # stage_upload's own limit check (the same limit) answers 413 too.
        if "over the upload limit" in str(exc):
            raise TooLarge(str(exc)) from None
        raise
    return dump(version)
