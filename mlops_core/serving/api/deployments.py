"""/api/v1/deployments and /api/v1/deployment-requests: list, status with gates, request a model version
(NAME@ALIAS or NAME:VERSION), deploy / reject / rollback where the role allows.

Same service calls as the Deployments pages (services/deployments.py): a business token gets the same 403
sentence as the UI, and every move is in the audit log under the token's user."""

from __future__ import annotations

import re

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ValidationError
from ...services import canary, deployments, registry
from .deps import DB, CurrentActor, Pagination, dump, paginate

router = APIRouter(tags=["deployments"])

MODEL_REF = re.compile(r"^(?P<name>[^@:\s]+)(?:@(?P<alias>[A-Za-z0-9_.-]+)|:(?P<version>\d+))$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentRequestCreate(_Body):
    model: str | None = Field(None, description="NAME@ALIAS (e.g. churn@champion) or NAME:VERSION (churn:3)")
    model_version_id: int | None = Field(None, description="instead of `model`: the model version's id")
    environment: str = "production"
    note: str = Field("", max_length=2000)
    acknowledge_schema_change: bool = Field(
        False, description="the endpoint's inputs change with this model; recorded with the request (gate schema_match)"
    )


class Decision(_Body):
    override_reason: str | None = Field(
        None, max_length=2000, description="admins only: deploy despite failed gates, saying why"
    )
    reason: str = Field("", max_length=2000, description="why now; kept in the deployment's history")


class Reason(_Body):
    reason: str = Field("", max_length=2000)


def resolve_model(db, ref: str | None, model_version_id: int | None) -> int:
    """The model version id of NAME@ALIAS, NAME:VERSION, or an id (exactly one of them)."""
    if (ref is None) == (model_version_id is None):
        raise ValidationError('send either "model": "NAME@ALIAS" or "NAME:VERSION", or "model_version_id"')
    if model_version_id is not None:
        return registry.get_model_version(db, model_version_id).id
    m = MODEL_REF.match(ref.strip())
    if m is None:
        raise ValidationError(
            f"{ref!r} is not a model reference; write NAME@ALIAS (e.g. churn@champion) or NAME:VERSION (e.g. churn:3)"
        )
    version = int(m["version"]) if m["version"] else None
    return registry.resolve_version(db, model_name=m["name"], alias=m["alias"], version=version).id


def _request_with_gates(db, req) -> dict:
    """A request with its gate checklist as it stands now (pending: re-evaluated; decided: as decided)."""
    out = dump(req)
    gates = deployments.current_gates(db, req)
    out["gates"] = dump(gates)
    out["verdict"] = "failed" if any(g.status == "failed" for g in gates) else "passed"
    return out


@router.get("/deployments", summary="Deployments (endpoints), by name")
def list_deployments(actor: CurrentActor, db: DB, page: Pagination, use_case_id: int | None = None) -> dict:
    return paginate(deployments.list_deployments(db, use_case_id=use_case_id), page)


@router.get("/deployments/{name}", summary="One deployment: what it serves, its pending requests and their gates")
def get_deployment(name: str, actor: CurrentActor, db: DB) -> dict:
    dep = deployments.get_by_name(db, name)
    pending = deployments.list_requests(db, deployment_name=dep.name, status="pending")
    return {
        "deployment": dump(dep),
        "previous_model_version_id": deployments.previous_version(db, dep.name),
        "pending_requests": [_request_with_gates(db, r) for r in pending],
    }


@router.get("/deployments/{name}/history", summary="Every deploy and rollback, newest first")
def history(name: str, actor: CurrentActor, db: DB, page: Pagination) -> dict:
    return paginate(deployments.history(db, deployment_name=name), page)


@router.get(
    "/deployments/{name}/canary",
    summary="Canary results: champion vs challenger of the current or last canary, with significance",
)
def canary_results(name: str, actor: CurrentActor, db: DB) -> dict:
    """Both arms' requests, 5xx, latency, scores and realized KPI metrics, and per figure the difference
    (challenger minus champion), its 95% interval, the p-value and whether it is significant
    (`significant: null` and `enough: false` below the minimum of requests per arm)."""
    return dump(canary.canary_comparison(db, deployment_name=name))


@router.get("/deployments/{name}/requests", summary="Requests for a deployment, newest first")
def list_requests(name: str, actor: CurrentActor, db: DB, page: Pagination, status: str | None = None) -> dict:
    deployments.get_by_name(db, name)  # 404 for an unknown name
    rows = deployments.list_requests(db, deployment_name=name, status=status, limit=page.offset + page.limit + 1)
    return paginate(rows, page)


@router.post(
    "/deployments/{name}/requests",
    status_code=201,
    summary="Request a model version on this deployment (data scientists); the gates are evaluated now",
)
def request_deployment(name: str, body: DeploymentRequestCreate, actor: CurrentActor, db: DB) -> dict:
    mv_id = resolve_model(db, body.model, body.model_version_id)
    req = deployments.request_deployment(
        db,
        actor=actor,
        model_version_id=mv_id,
        deployment_name=name,
        environment=body.environment,
        note=body.note,
        acknowledge_schema_change=body.acknowledge_schema_change,
    )
    return _request_with_gates(db, req)


@router.post("/deployments/{name}/rollback", summary="Serve the previous version again (ops)")
def rollback(name: str, actor: CurrentActor, db: DB, body: Reason | None = None):
    return dump(deployments.rollback(db, actor=actor, deployment_name=name, reason=body.reason if body else ""))


@router.get("/deployment-requests/{request_id}", summary="One request with its gates")
def get_request(request_id: int, actor: CurrentActor, db: DB) -> dict:
    return _request_with_gates(db, deployments.get_request(db, request_id))


@router.post("/deployment-requests/{request_id}/reevaluate", summary="Check a pending request's gates again")
def reevaluate(request_id: int, actor: CurrentActor, db: DB) -> dict:
    return _request_with_gates(db, deployments.reevaluate_request(db, actor=actor, request_id=request_id))


@router.post("/deployment-requests/{request_id}/deploy", summary="Deploy a requested version (ops)")
def deploy(request_id: int, actor: CurrentActor, db: DB, body: Decision | None = None):
    return dump(
        deployments.deploy(
            db,
            actor=actor,
            request_id=request_id,
            override_reason=body.override_reason if body else None,
            reason=body.reason if body else "",
        )
    )


@router.post("/deployment-requests/{request_id}/reject", summary="Reject a pending request, saying why (ops)")
def reject(request_id: int, body: Reason, actor: CurrentActor, db: DB) -> dict:
    return _request_with_gates(
        db, deployments.reject_request(db, actor=actor, request_id=request_id, reason=body.reason)
    )
