"""Deployment targets (issue 19): where a deployment runs, and the hybrid monitoring of the ones run elsewhere.

Tables:
- `deployment_targets`: one row per deployment that is not (only) served by the Hub: its target (`hub`, the
  default when there is no row, or `bundle`: a self-contained package run elsewhere), the person told when the
  version to run changes, and what its uploads reported (last upload, backlog and dropped rows of its buffer).
- `upload_keys`: per-deployment keys a bundle uses to send its prediction log and labels; only the SHA-256
  is stored, revocable like scoring API keys.
- `upload_batches`: one row per accepted upload batch (unique per deployment and batch id), so a batch resent
  after a lost answer is acknowledged and not counted twice.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .deployments import DeploymentKeyBase, DeploymentKeyPublic

TARGETS = ("hub", "bundle")


class DeploymentTarget(SQLModel, table=True):
    __tablename__ = "deployment_targets"

    deployment_id: int = Field(foreign_key="deployments.id", primary_key=True)
    target: str = Field(default="hub", max_length=16)
    owner: str = Field(default="", max_length=64)
    # The latest bundle built for the deployment: its manifest (model version, sha256, signature).
    bundle_manifest: dict | None = Field(default=None, sa_type=JSON)
    last_upload_at: datetime | None = None
    rows_received: int = Field(default=0)
    backlog: int = Field(default=0)  # rows waiting in the bundle's buffer at its last upload
    dropped: int = Field(default=0)  # rows the bundle dropped from a full buffer (cumulative, as it reports)
    updated_at: datetime = Field(default_factory=utcnow)


class UploadKey(DeploymentKeyBase, table=True):
    __tablename__ = "upload_keys"

    id: int | None = Field(default=None, primary_key=True)


class UploadBatch(SQLModel, table=True):
    __tablename__ = "upload_batches"
    __table_args__ = (UniqueConstraint("deployment_id", "batch_id", name="uq_upload_batch"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id", index=True)
    batch_id: str = Field(max_length=64)
    kind: str = Field(default="predictions", max_length=16)  # predictions | labels
    rows: int = Field(default=0)
    received_at: datetime = Field(default_factory=utcnow)


class TargetPublic(BaseModel):
    deployment: str
    target: str
    owner: str
    model_version_id: int | None
    model_version: str
    bundle_manifest: dict | None
    last_upload_at: datetime | None
    rows_received: int
    backlog: int
    dropped: int
    silent_hours: float | None  # hours since the last upload (None: never uploaded, or a hub target)


class UploadKeyPublic(DeploymentKeyPublic):
    pass
