"""Deployment targets and hybrid monitoring (issue 19).

A deployment runs on the Hub's scoring service (`hub`, the default) or as a bundle run elsewhere (`bundle`).
Gates, sign-offs, history and rollback are the deployment's own and apply to both: a bundle target's
"version to run" is the deployment's model version; a rollback of a bundle target also tells its owner
(inbox) to run the previous version's bundle.

A bundle sends its prediction log and labels to the Hub with an upload key of its deployment (only the SHA-256
is stored; revocable). Batches carry an id: a batch resent after a lost answer is acknowledged, not stored
twice (`upload_batches` is unique per deployment and batch id, and rows keep their request ids). Uploaded
rows land in `predictions` (source "bundle"), so drift, KPIs, alerts and retraining read them as any other.
A bundle target that has sent nothing for Settings.target_silence_hours raises an alert
(`silent_target_breaches`, called by the system health check).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ..config import get_settings
from ..db import Database, utcnow
from ..errors import AuthenticationFailed, Conflict, PermissionDenied, ValidationError
from ..models.deployments import Deployment, DeploymentRequest, Prediction
from ..models.targets import TARGETS, DeploymentTarget, TargetPublic, UploadBatch, UploadKey, UploadKeyPublic
from . import apikeys, audit, collab
from ._common import aware, deployment_by_name
from .auth import Actor, can, require

UPLOAD_KEY_PREFIX = "mlu_"
MAX_UPLOAD_ROWS = 5000
_PRED_TABLE = Prediction.__table__  # type: ignore[attr-defined]
_ROW_FIELDS = ("request_id", "model_version_id", "created_at", "inputs", "prediction", "score", "latency_ms")


hash_upload_key = apikeys.hash_key


def _row(s: Session, d: Deployment) -> DeploymentTarget | None:
    return s.get(DeploymentTarget, d.id)


def _public(s: Session, d: Deployment, t: DeploymentTarget | None, now: datetime | None = None) -> TargetPublic:
    from .deployments import model_version_label

    now = now or utcnow()
    last = aware(t.last_upload_at) if t is not None else None
    target = t.target if t is not None else "hub"
    return TargetPublic(
        deployment=d.name,
        target=target,
        owner=(t.owner if t is not None else "") or d.created_by,
        model_version_id=d.model_version_id,
        model_version=model_version_label(s, d.model_version_id) if d.model_version_id else "",
        bundle_manifest=t.bundle_manifest if t is not None else None,
        last_upload_at=last,
        rows_received=t.rows_received if t is not None else 0,
        backlog=t.backlog if t is not None else 0,
        dropped=t.dropped if t is not None else 0,
        silent_hours=round((now - last).total_seconds() / 3600, 2) if last is not None and target == "bundle" else None,
    )


def get_target(db: Database, deployment_name: str) -> TargetPublic:
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        return _public(s, d, _row(s, d))


def bundle_targets(db: Database) -> dict[str, TargetPublic]:
    """Deployment name -> its target, for the deployments that run as a bundle (the rest run on the Hub)."""
    with db.read() as s:
        now = utcnow()
        rows = s.exec(
            select(DeploymentTarget, Deployment)
            .join(Deployment, col(Deployment.id) == DeploymentTarget.deployment_id)
            .where(DeploymentTarget.target == "bundle")
        ).all()
        return {d.name: _public(s, d, t, now) for t, d in rows}


def set_target(db: Database, *, actor: Actor, deployment_name: str, target: str, owner: str = "") -> TargetPublic:
    """Where the deployment runs (`hub` or `bundle`) and who is told when its version to run changes."""
    require(actor, "deployment.deploy")
    if target not in TARGETS:
        raise ValidationError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    owner = (owner or "").strip()[:64]
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        t = _row(s, d)
        before = {"target": t.target, "owner": t.owner} if t is not None else {"target": "hub", "owner": ""}
        if t is None:
            t = DeploymentTarget(deployment_id=d.id)
        t.target, t.owner, t.updated_at = target, owner or t.owner or actor.username, utcnow()
        s.add(t)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="deployment.target",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"{d.name} runs on target {target} (owner {t.owner})",
            before=before,
            after={"target": t.target, "owner": t.owner},
        )
        return _public(s, d, t)


# --- upload keys ------------------------------------------------------------------------------------------


UPLOAD_KEYS = apikeys.KeyKind(UploadKey, UploadKeyPublic, UPLOAD_KEY_PREFIX, "upload key", "uploadkey", "upload key")


def create_upload_key(
    db: Database, *, actor: Actor, deployment_name: str, name: str = ""
) -> tuple[UploadKeyPublic, str]:
    """A key a bundle of `deployment_name` uploads its log with. Returns (public view, key): shown once."""
    return apikeys.create_kind_key(db, UPLOAD_KEYS, actor=actor, deployment_name=deployment_name, name=name)  # type: ignore[return-value]


def list_upload_keys(db: Database, *, deployment_name: str) -> list[UploadKeyPublic]:
    return apikeys.list_kind_keys(db, UPLOAD_KEYS, deployment_name=deployment_name)  # type: ignore[return-value]


def revoke_upload_key(db: Database, *, actor: Actor, key_id: int) -> UploadKeyPublic:
    return apikeys.revoke_kind_key(db, UPLOAD_KEYS, actor=actor, key_id=key_id)  # type: ignore[return-value]


def _authenticate(s: Session, deployment_name: str, key: str) -> Deployment:
    """The deployment, when `key` is an unrevoked upload key of it: 401 for no/unknown/revoked key, 403 for a
    key of another deployment (never saying which)."""
    if not key:
        raise AuthenticationFailed("an upload key is required: send 'Authorization: Bearer <upload key>'")
    k = s.exec(select(UploadKey).where(UploadKey.key_hash == hash_upload_key(key))).first()
    if k is None or k.revoked_at is not None:
        raise AuthenticationFailed("the upload key is unknown or revoked; ask ops for a new one (deployment page)")
    d = deployment_by_name(s, deployment_name)
    if k.deployment_id != d.id:
        raise PermissionDenied(f"this upload key is not for {deployment_name!r}")
    return d


# --- uploads ----------------------------------------------------------------------------------------------


def _check_batch_id(batch_id: Any) -> str:
    if not isinstance(batch_id, str) or not (8 <= len(batch_id) <= 64) or not batch_id.isprintable():
        raise ValidationError("`batch_id` must be a text of 8 to 64 characters, unique per batch (e.g. a uuid4 hex)")
    return batch_id


def _clean_float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _prediction_rows(d: Deployment, rows: Any) -> list[dict[str, Any]]:
    from .predictions import prediction_row

    if not isinstance(rows, list):
        raise ValidationError("`rows` must be a list of prediction records")
    if len(rows) > MAX_UPLOAD_ROWS:
        raise ValidationError(f"at most {MAX_UPLOAD_ROWS:,} rows per batch; send smaller batches")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ValidationError(f"row {i} is not an object")
        rid = r.get("request_id")
        if not isinstance(rid, str) or not rid or len(rid) > 64:
            raise ValidationError(f"row {i}: `request_id` must be a text of at most 64 characters")
        inputs = r.get("inputs")
        if inputs is not None and not isinstance(inputs, dict):
            raise ValidationError(f"row {i}: `inputs` must be the record (an object) or null")
        created = r.get("created_at")
        try:
            at = datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            raise ValidationError(f"row {i}: `created_at` must be an ISO 8601 time") from None
        status = r.get("status", "ok")
        out.append(
            prediction_row(
                request_id=rid,
                deployment_id=d.id,
                model_version_id=r.get("model_version_id") if type(r.get("model_version_id")) is int else None,
                inputs=inputs,
                prediction=r.get("prediction"),
                latency_ms=_clean_float(r.get("latency_ms")) or 0.0,
                status="error" if status == "error" else "ok",
                source="bundle",
                error=str(r.get("error") or "")[:500],
                created_at=aware(at) if at is not None else None,
                score=_clean_float(r.get("score")),
            )
        )
    return out


def _counter(v: Any) -> int:
    return int(v) if type(v) is int and v >= 0 else 0


def receive_predictions(
    db: Database, *, deployment_name: str, key: str, batch_id: Any, rows: Any, backlog: Any = 0, dropped: Any = 0
) -> dict[str, Any]:
    """Store one uploaded batch of a bundle's prediction log (idempotent per batch id). Rows whose request id
    is already stored (a batch split differently after a retry) are skipped, never doubled."""
    batch_id = _check_batch_id(batch_id)
    with db.unit_of_work() as s:
        d = _authenticate(s, deployment_name, key)
        values = _prediction_rows(d, rows)
        if s.exec(
            select(UploadBatch.id).where(UploadBatch.deployment_id == d.id, UploadBatch.batch_id == batch_id)
        ).first():
            _note_upload(s, d, 0, backlog, dropped)
            return {"batch_id": batch_id, "duplicate": True, "stored": 0}
        ids = [v["request_id"] for v in values]
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            known.update(
                s.exec(
                    select(Prediction.request_id).where(col(Prediction.request_id).in_(ids[start : start + 500]))
                ).all()
            )
        fresh = [v for v in values if v["request_id"] not in known]
        try:
            with s.begin_nested():
                s.add(UploadBatch(deployment_id=d.id, batch_id=batch_id, kind="predictions", rows=len(fresh)))
                s.flush()
        except IntegrityError:  # the same batch, resent while the first answer was on its way
            return {"batch_id": batch_id, "duplicate": True, "stored": 0}
        if fresh:
            s.execute(insert(_PRED_TABLE), fresh)
        _note_upload(s, d, len(fresh), backlog, dropped)
        return {"batch_id": batch_id, "duplicate": False, "stored": len(fresh), "skipped": len(values) - len(fresh)}


def _note_upload(s: Session, d: Deployment, stored: int, backlog: Any, dropped: Any) -> None:
    t = _row(s, d)
    if t is None:
        t = DeploymentTarget(deployment_id=d.id, target="bundle", owner=d.created_by)
    now = utcnow()
    t.last_upload_at, t.updated_at = now, now
    t.rows_received += stored
    t.backlog, t.dropped = _counter(backlog), max(t.dropped, _counter(dropped))
    s.add(t)


def receive_labels(db: Database, *, deployment_name: str, key: str, batch_id: Any, labels: Any) -> dict[str, Any]:
    """Labels sent by a bundle (joined by request id, as /feedback); idempotent per batch id."""
    from .predictions import apply_labels

    batch_id = _check_batch_id(batch_id)
    with db.unit_of_work() as s:
        d = _authenticate(s, deployment_name, key)
        dep_id = d.id
        if s.exec(
            select(UploadBatch.id).where(UploadBatch.deployment_id == dep_id, UploadBatch.batch_id == batch_id)
        ).first():
            return {"batch_id": batch_id, "duplicate": True}
    result = apply_labels(db, deployment_id=dep_id, labels=labels)
    with db.unit_of_work() as s:
        try:
            with s.begin_nested():
                s.add(UploadBatch(deployment_id=dep_id, batch_id=batch_id, kind="labels", rows=len(result.accepted)))
                s.flush()
        except IntegrityError:
            pass  # labels are idempotent by themselves (the same label set twice)
        d = s.get(Deployment, dep_id)
        t = _row(s, d)
        if t is not None:
            t.last_upload_at = utcnow()
            s.add(t)
    return {"batch_id": batch_id, "duplicate": False, **result.as_dict()}


# --- version to run, bundles, silence ---------------------------------------------------------------------


def notify_version_to_run(s: Session, d: Deployment, *, actor: Actor, kind: str) -> None:
    """After a deploy or rollback of a bundle target: tell its owner which version to run now (inbox)."""
    t = _row(s, d)
    if t is None or t.target != "bundle":
        return
    from .deployments import model_version_label

    label = model_version_label(s, d.model_version_id)
    collab.notify(
        s,
        usernames=[t.owner or d.created_by],
        kind="bundle_version",
        title=f"{d.name} ({kind}): run {label} now — build its bundle with "
        f"`python -m mlops_core deploy bundle --deployment {d.name} --out DIR`",
        entity_type="deployment",
        entity_id=d.id,
        from_username=actor.username,
    )


def bundle_source(db: Database, *, actor: Actor, deployment_name: str, override_reason: str = "") -> dict[str, Any]:
    """What a bundle of the deployment packs: its current model version, when the request that deployed it
    passed its gates or an admin overrode them (audited then). A failed-gate version without an override is
    refused; an admin may build it anyway with a reason (audited here)."""
    require(actor, "deployment.deploy")
    override_reason = (override_reason or "").strip()
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        if d.model_version_id is None:
            raise Conflict(f"{deployment_name} serves no model version yet: deploy one, then build its bundle")
        req = s.exec(
            select(DeploymentRequest)
            .where(
                DeploymentRequest.deployment_id == d.id,
                DeploymentRequest.model_version_id == d.model_version_id,
                DeploymentRequest.status == "deployed",
            )
            .order_by(col(DeploymentRequest.id).desc())
        ).first()
        failed = [g for g in (req.gates if req is not None else []) if g.get("status") == "failed"]
        overridden = req is not None and bool(req.overridden_by)
        if req is None or (failed and not overridden):
            why = (
                "no deployment request of it passed its gates"
                if req is None
                else "it failed its gates: " + "; ".join(f"{g.get('title')}: {g.get('detail')}" for g in failed)
            )
            if not override_reason:
                raise ValidationError(
                    f"no bundle of {deployment_name}: {why}. Fix the gates and deploy again, or ask an admin to "
                    "build it with an override reason (--override-reason)"
                )
            if not can(actor, "deployment.override_gates"):
                raise PermissionDenied(
                    f"{actor.username} ({actor.role}) may not override failed gates; only an admin may, with a reason"
                )
            audit.record(
                s,
                actor=actor,
                action="deployment.override",
                entity_type="deployment",
                entity_id=d.id,
                summary=f"built a bundle of {d.name} despite failed gates: {override_reason}",
                after={"model_version_id": d.model_version_id, "reason": override_reason, "bundle": True},
            )
        return {
            "deployment_id": d.id,
            "deployment": d.name,
            "model_version_id": d.model_version_id,
            "request_id": req.id if req is not None else None,
            "gates": [{"gate": g.get("gate"), "status": g.get("status")} for g in (req.gates if req else [])],
            "override": (req.override_reason if overridden else "") or override_reason,
        }


def record_bundle(db: Database, *, actor: Actor, deployment_name: str, manifest: dict[str, Any]) -> TargetPublic:
    """Remember the manifest of the bundle just built (shown on the deployment page), audited."""
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        t = _row(s, d) or DeploymentTarget(deployment_id=d.id, target="bundle", owner=actor.username)
        t.bundle_manifest, t.updated_at = manifest, utcnow()
        s.add(t)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="deployment.bundle",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"built the bundle of {d.name} ({manifest.get('model_version')}, sha256 "
            f"{str(manifest.get('model_sha256', ''))[:12]}…)",
            after={"model_version_id": manifest.get("model_version_id"), "model_sha256": manifest.get("model_sha256")},
        )
        return _public(s, d, t)


def silent_target_breaches(s: Session, now: datetime):
    """A Breach per bundle target with nothing uploaded for Settings.target_silence_hours (since its last
    upload, or since it became a bundle target when it never uploaded)."""
    from .monitoring.alerts import Breach

    hours = float(get_settings().target_silence_hours)
    limit = now - timedelta(hours=hours)
    out = []
    rows = s.exec(
        select(DeploymentTarget, Deployment)
        .join(Deployment, col(Deployment.id) == DeploymentTarget.deployment_id)
        .where(DeploymentTarget.target == "bundle", col(Deployment.model_version_id).is_not(None))
    ).all()
    for t, d in rows:
        since = aware(t.last_upload_at or t.updated_at)
        if since >= limit:
            continue
        silent_h = (now - since).total_seconds() / 3600
        out.append(
            Breach(
                kind="target_silent",
                severity="warning",
                key=f"target_silent:{d.name}",
                title=f"{d.name} has sent nothing for {silent_h:.0f} h",
                detail=f"the bundle of {d.name} has uploaded no predictions since {since:%Y-%m-%d %H:%M} UTC "
                f"(limit {hours:g} h, MLOPS_TARGET_SILENCE_HOURS). Check that it runs, that it reaches the Hub, "
                "and that its upload key was not revoked; its buffer keeps the log until then.",
                evidence={
                    "last_upload_at": t.last_upload_at.isoformat() if t.last_upload_at else None,
                    "backlog": t.backlog,
                    "dropped": t.dropped,
                },
                link=f"/deployment?deployment={d.name}",
                deployment_id=d.id,
                deployment_name=d.name,
                use_case_id=d.use_case_id,
            )
        )
    return out
