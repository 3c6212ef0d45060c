"""The mlflow-artifacts proxy: PUT/GET/list files under a run's artifact folder (or an MLflow logged model's
folder) in the Hub's artifact store, with the same token and role checks as every other route.

URIs handed out: mlflow-artifacts:/<experiment>/<run>/artifacts/<path> for a run's files and
mlflow-artifacts:/<experiment>/models/<model_id>/artifacts/<file> for a logged model's files; both map to
the run (a logged model id names its run), so reads and writes are checked against that run.
Store keys: runs/<run>/mlflow/<path> and runs/<run>/mlflow-models/<model_id>/<file>."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ... import artifacts
from ...errors import NotFound
from ...services import experiments, mlflow_bridge
from ...services.users import authenticate_token
from ._common import TAG, MlflowError, bad, bearer, error_response, get_db, not_found

router = APIRouter()
PREFIX = "/api/2.0/mlflow-artifacts"
# Largest single artifact accepted (bytes beyond it are refused mid-stream and nothing is stored). The
# client only switches to multipart uploads at 500 MiB, which this server does not offer.
MAX_ARTIFACT_BYTES = 2 * 1024**3


@dataclass
class Target:
    experiment: str
    run_id: int
    rel: str  # path inside the run's (or the model's) folder, "" for the folder itself
    model_id: str | None  # set for a logged model's folder

    @property
    def name(self) -> str:  # run_artifacts.name
        return mlflow_bridge.model_file_name(self.model_id, self.rel) if self.model_id else self.rel

    @property
    def key(self) -> str:
        sub = f"mlflow-models/{self.model_id}" if self.model_id else "mlflow"
        return f"runs/{self.run_id}/{sub}/{self.rel}"


def parse(path: str, *, folder_ok: bool = False) -> Target | None:
    """The run (or logged model) a proxy path points into; None for paths outside any (an empty listing)."""
    parts = [p for p in (path or "").strip("/").split("/")]
    if any(p in ("..", ".") or "\\" in p or "\x00" in p for p in parts) or (path or "").startswith("~"):
        raise bad(f"Invalid artifact path '{path}': '..', '.' and backslashes are not allowed")
    if parts and parts[-1] == "" and len(parts) > 1:
        raise bad(f"Invalid artifact path '{path}'")
    if len(parts) >= 3 and parts[1].isdigit() and parts[2] == "artifacts":
        target = Target(parts[0], int(parts[1]), "/".join(parts[3:]), None)
    elif len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        try:
            run_id = mlflow_bridge.run_of_model_id(parts[2])
        except NotFound as exc:
            raise not_found(str(exc)) from None
        target = Target(parts[0], run_id, "/".join(parts[4:]), parts[2])
    elif folder_ok:
        return None
    else:
        raise not_found(f"'{path}' is not inside a run's or a logged model's artifact folder")
    if not folder_ok and not target.rel:
        raise bad(f"'{path}' names a folder; name a file inside it")
    if len(target.name) > 200:
        raise bad("artifact paths are at most 200 characters")
    if not target.model_id and target.rel.startswith("mlflow-models/"):
        raise bad("'mlflow-models/' is reserved for logged models; choose another artifact path")
    return target


def _files_of(db, actor, target: Target):
    """The run's stored files of this folder (run files, or one logged model's files), after the checks."""
    try:
        run = experiments.get_run(db, target.run_id, actor=actor)
    except NotFound:
        raise not_found(f"Run '{target.run_id}' not found.") from None
    if str(run.use_case_id) != target.experiment:
        raise not_found(
            f"run {target.run_id} is not in experiment {target.experiment}; use the artifact URI "
            "that MLflow returned for the run"
        )
    rows = experiments.list_artifacts(db, target.run_id)
    if target.model_id:
        return [r for r in rows if r.kind == mlflow_bridge.MODEL_FILE_KIND]
    return [r for r in rows if r.kind != mlflow_bridge.MODEL_FILE_KIND]


def _authorise_upload(db, token: str, path: str):
    actor = authenticate_token(db, token=token)
    target = parse(path)
    _files_of(db, actor, target)
    mlflow_bridge.check_upload(db, actor=actor, run_id=target.run_id)
    return actor, target


@router.put(PREFIX + "/artifacts/{path:path}", tags=[TAG], summary="Upload one artifact (raw body)")
async def upload(path: str, request: Request):
    db = get_db(request)
    try:
        actor, target = await run_in_threadpool(_authorise_upload, db, bearer(request), path)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_ARTIFACT_BYTES:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"the artifact is {int(declared):,} bytes; the limit is {MAX_ARTIFACT_BYTES:,}",
                413,
            )
        size = 0
        # Streamed to a temporary file that becomes the artifact only when the whole body arrived.
        with artifacts.open_for_write(target.key) as tmp:
            with open(tmp, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_ARTIFACT_BYTES:
                        raise MlflowError(
                            "INVALID_PARAMETER_VALUE",
                            f"the artifact is over the limit of {MAX_ARTIFACT_BYTES:,} bytes; nothing was stored",
                            413,
                        )
                    f.write(chunk)
        media = request.headers.get("content-type") or mimetypes.guess_type(target.rel)[0] or "application/octet-stream"
        await run_in_threadpool(
            mlflow_bridge.record_file,
            db,
            actor=actor,
            run_id=target.run_id,
            name=target.name,
            key=target.key,
            size=size,
            media_type=media,
            kind=mlflow_bridge.MODEL_FILE_KIND if target.model_id else "file",
        )
    except ClientDisconnect:
        return JSONResponse(
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "the upload was cut off; nothing was stored: send it again",
            },
            status_code=400,
        )
    except Exception as exc:  # noqa: BLE001 - MLflow's error JSON, never a 500
        return error_response(exc)
    return JSONResponse({})


def _download(db, token: str, path: str) -> tuple[bytes, str]:
    actor = authenticate_token(db, token=token)
    target = parse(path)
    for row in _files_of(db, actor, target):
        if row.name == target.name:
            try:
                return artifacts.get_bytes(row.artifact_key), row.media_type
            except FileNotFoundError:
                break
    raise not_found(f"Artifact '{path}' not found.")


@router.get(PREFIX + "/artifacts/{path:path}", tags=[TAG], summary="Download one artifact")
async def download(path: str, request: Request):
    try:
        data, media = await run_in_threadpool(_download, get_db(request), bearer(request), path)
    except Exception as exc:  # noqa: BLE001
        return error_response(exc)
    return Response(data, media_type="application/octet-stream" if not media else media)


def _list(db, token: str, path: str) -> dict:
    actor = authenticate_token(db, token=token)
    target = parse(path, folder_ok=True)
    if target is None:
        return {"files": []}
    try:
        rows = _files_of(db, actor, target)
    except MlflowError as exc:
        if exc.status == 404:
            return {"files": []}  # "nothing there" is an empty list to the client (register_model probes)
        raise
    prefix = target.name + "/" if target.name else ""
    if target.model_id:
        prefix = mlflow_bridge.model_file_name(target.model_id, target.rel + "/" if target.rel else "")
    files: dict[str, dict] = {}
    for r in rows:
        if not r.name.startswith(prefix):
            continue
        head, sep, _ = r.name[len(prefix) :].partition("/")
        files[head] = (
            {"path": head, "is_dir": True} if sep else {"path": head, "is_dir": False, "file_size": int(r.size_bytes)}
        )
    return {"files": sorted(files.values(), key=lambda f: f["path"])}


@router.get(PREFIX + "/artifacts", tags=[TAG], summary="List a folder of artifacts")
async def list_artifacts(request: Request, path: str = ""):
    try:
        return JSONResponse(await run_in_threadpool(_list, get_db(request), bearer(request), path))
    except Exception as exc:  # noqa: BLE001
        return error_response(exc)
