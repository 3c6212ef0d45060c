"""/api/v1 file downloads for pipelines: the use case report (HTML) and a deployment's bundle (zip).

Same services as the UI and the server-side CLI: `report.build_report` (the Use case page's Download report:
any signed-in user may read a use case) and `bundles.build_bundle` with the caller as actor (its role check
`deployment.deploy` and the gates / admin override rule apply, audited)."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ...services import bundles, report
from .deps import DB, CurrentActor

router = APIRouter(tags=["reports"])


class BundleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    override_reason: str = Field("", description="build despite failed gates (admins only; audited)")
    hub_url: str = Field("", description="the Hub API URL the bundle uploads its prediction log to")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "bundle"


@router.get(
    "/use-cases/{use_case}/report",
    summary="The use case report: one self-contained HTML file (id or title)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
def use_case_report(use_case: str, actor: CurrentActor, db: DB) -> Response:
    rep = report.build_report(db, use_case=use_case)
    return Response(
        rep.html.encode("utf-8"),
        media_type="text/html; charset=utf-8",
        headers={
            "X-Report-Sha256": rep.sha256,
            "X-Report-Missing": ",".join(rep.missing),
            "Content-Disposition": f'attachment; filename="{_slug(use_case)}-report.html"',
        },
    )


@router.post(
    "/deployments/{name}/bundle",
    summary="A deployment's model version as a self-contained folder, zipped",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def deployment_bundle(name: str, actor: CurrentActor, db: DB, body: BundleRequest | None = None) -> Response:
    body = body or BundleRequest()
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        out = Path(tmp) / "bundle"
        bundles.build_bundle(
            db,
            actor=actor,
            deployment_name=name,
            out_dir=out,
            override_reason=body.override_reason,
            hub_url=body.hub_url or None,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(out.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(out).as_posix())
    return Response(
        buf.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{_slug(name)}-bundle.zip"'},
    )
