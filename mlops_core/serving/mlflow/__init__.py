"""MLflow-compatible tracking (issue 14, section 4): the REST routes the MLflow 3.17 Python client calls,
one module per resource as GitLab's lib/api/ml/mlflow does, under /api/2.0/mlflow, /ajax-api/2.0/mlflow and
/api/2.0/mlflow-artifacts. Every route calls the same services as the UI with the token's Actor (roles and
audit identical). Anything else under those prefixes answers MLflow's error JSON with 404/501, never 500.

    MLFLOW_TRACKING_URI=http://<hub>:<port>  MLFLOW_TRACKING_TOKEN=<hub personal access token>
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from . import artifacts, experiments, logged_models, metrics, model_versions, registered_models, runs
from ._common import TAG

MLFLOW_VERSION = "3.17.2"  # the client version these routes were mapped from (routes.md)

router = APIRouter()
for _module in (experiments, runs, metrics, artifacts, logged_models, registered_models, model_versions):
    router.routes.extend(_module.router.routes)  # flat: the catch-all below must come after every one of them


@router.get("/api/3.0/mlflow/server-info", tags=[TAG])
@router.get("/ajax-api/3.0/mlflow/server-info", tags=[TAG])
async def server_info():
    """Probed before artifact downloads: no multipart transfers, no workspaces (served without a token, as
    MLflow's own server does; it says nothing about the Hub's data)."""
    return {
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
    }


@router.get("/version", tags=[TAG], include_in_schema=False)
async def version():
    return PlainTextResponse(MLFLOW_VERSION)


# Last: whatever the routes above do not serve under the MLflow prefixes.
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_NOT_IMPLEMENTED = (
    "mlflow/traces",
    "mlflow/gateway",
    "mlflow/scorers",
    "mlflow/prompts",
    "mlflow/webhooks",
    "mlflow-artifacts/mpu",
    "mlflow-artifacts/presigned",
)


@router.api_route("/api/{api_version}/mlflow/{rest:path}", methods=_METHODS, include_in_schema=False)
@router.api_route("/ajax-api/{api_version}/mlflow/{rest:path}", methods=_METHODS, include_in_schema=False)
@router.api_route("/api/{api_version}/mlflow-artifacts/{rest:path}", methods=_METHODS, include_in_schema=False)
async def not_served(request: Request, api_version: str, rest: str):
    path = request.url.path
    if any(f"/{p}" in path for p in _NOT_IMPLEMENTED):
        return JSONResponse(
            {
                "error_code": "NOT_IMPLEMENTED",
                "message": f"{request.method} {path} is not implemented by MLOps Hub's MLflow-compatible API",
            },
            status_code=501,
        )
    return JSONResponse(
        {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"No route for {request.method} {path} in "
            "MLOps Hub's MLflow-compatible API (see README: MLflow)",
        },
        status_code=404,
    )
