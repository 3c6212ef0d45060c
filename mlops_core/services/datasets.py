"""Datasets: registry, immutable content-addressed versions, schemas, validation, profiles, waivers.

Seam for other stages (docs/CONTRACTS_INTERNAL.md, "Stage 2"): `register_version_from_frame`,
`resolve_ref`, `load_frame`, `get_version`, `trainable_versions`, `latest_trainable_version`,
`is_trainable`.

Registering a version (every source ends in `_register_converted`):
  permission check -> stream the source into a canonical staging Parquet file and hash it ->
  same hash already in this dataset? return that version (no duplicate) -> one streaming scan
  for profile + validation (+ drift against the parent version's stored sample) -> artifacts
  written atomically under content-derived keys -> ONE transaction: dataset (if new), schema v1
  (if first), version row, audit event. A failure before the transaction leaves no row; an
  artifact left behind by a failed transaction is harmless (content-addressed: the next
  registration of the same content reuses it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func
from sqlmodel import Session, col, select

from .. import artifacts, data_io, jobs
from ..db import Database, utcnow
from ..errors import Conflict, NotFound, ValidationError
from ..models.datasets import (
    FAILED,
    TRAINABLE_STATUSES,
    VALIDATED,
    WAIVED,
    DataDriftPublic,
    Dataset,
    DatasetDiffPublic,
    DatasetPublic,
    DatasetSchema,
    DatasetSchemaPublic,
    DatasetVersion,
    DatasetVersionPublic,
    DiffColumnPublic,
    FindingPublic,
    IngestionRun,
    IngestionRunPublic,
    IngestionSource,
    IngestionSourcePublic,
    ProfilePublic,
    ValidationReportPublic,
)
from ..models.usecases import UseCase
from ..monitoring.drift import detect_drift
from ..profiling import build_profile, scan_parquet
from ..validation import RULES, check_schema_columns, infer_schema, validate
from . import audit
from ._common import Progress, get_or_404, noop_progress
from .auth import Actor, require

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
REF_RE = re.compile(r"^\s*(?P<name>[^@\s]+)\s*(?:@\s*(?:v(?P<version>\d+)|(?P<latest>latest)))?\s*$", re.IGNORECASE)
MIN_WAIVER_REASON = 10


# --- conversions to Public objects -----------------------------------------------------------


def _version_public(v: DatasetVersion, d: Dataset, *, deduplicated: bool = False) -> DatasetVersionPublic:
    counts = (v.report or {}).get("counts", {})
    return DatasetVersionPublic(
        id=v.id,
        dataset_id=v.dataset_id,
        dataset_name=d.name,
        use_case_id=d.use_case_id,
        version=v.version,
        ref=f"{d.name}@v{v.version}",
        content_hash=v.content_hash,
        artifact_key=v.artifact_key,
        n_rows=v.n_rows,
        n_cols=v.n_cols,
        size_bytes=v.size_bytes,
        columns=list(v.columns or []),
        status=v.status,
        parent_id=v.parent_id,
        schema_id=v.schema_id,
        source_kind=v.source_kind,
        source=v.source,
        created_by=v.created_by,
        created_at=v.created_at,
        waived_by=v.waived_by,
        waived_reason=v.waived_reason,
        n_errors=int(counts.get("error", 0)),
        n_warnings=int(counts.get("warning", 0)),
        deduplicated=deduplicated,
    )


def _schema_public(s: DatasetSchema) -> DatasetSchemaPublic:
    return DatasetSchemaPublic.model_validate(s, from_attributes=True)


def _dataset_public(s: Session, d: Dataset) -> DatasetPublic:
    return _dataset_publics(s, [d])[0]


def _dataset_publics(s: Session, rows: list[Dataset]) -> list[DatasetPublic]:
    """Datasets with their version count and latest version: two grouped queries for all of them."""
    ids = [d.id for d in rows]
    counts: dict[int, tuple[int, int]] = {}
    status: dict[tuple[int, int], str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        agg = s.exec(
            select(DatasetVersion.dataset_id, func.count(), func.max(DatasetVersion.version))
            .where(col(DatasetVersion.dataset_id).in_(chunk))
            .group_by(DatasetVersion.dataset_id)
        ).all()
        counts.update({did: (int(n), int(top)) for did, n, top in agg})
        latest = (
            select(DatasetVersion.dataset_id, func.max(DatasetVersion.version).label("top"))
            .where(col(DatasetVersion.dataset_id).in_(chunk))
            .group_by(DatasetVersion.dataset_id)
            .subquery()
        )
        for did, version, st in s.exec(
            select(DatasetVersion.dataset_id, DatasetVersion.version, DatasetVersion.status).join(
                latest,
                (col(DatasetVersion.dataset_id) == latest.c.dataset_id) & (col(DatasetVersion.version) == latest.c.top),
            )
        ).all():
            status[(did, version)] = st
    out = []
    for d in rows:
        n, top = counts.get(d.id, (0, None))
        out.append(
            DatasetPublic(
                id=d.id,
                use_case_id=d.use_case_id,
                name=d.name,
                description=d.description,
                owner_id=d.owner_id,
                created_at=d.created_at,
                n_versions=n,
                latest_version=top,
                latest_status=status.get((d.id, top)),
            )
        )
    return out


# --- datasets --------------------------------------------------------------------------------


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError(
            f"dataset name {name!r} is not allowed; use 1-100 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. customers or churn_2024)"
        )
    return name


def _check_use_case(s: Session, use_case_id: int | None) -> None:
    if use_case_id is None:
        return
    if s.get(UseCase, int(use_case_id)) is None:
        raise NotFound(f"no use case with id {use_case_id}; pick one from the Use cases page")


def resolve_use_case(db: Database, ref: str | int | None) -> int | None:
    """A use case id from an id or a title (the CLI's --use-case)."""
    if ref is None or str(ref).strip() == "":
        return None
    text = str(ref).strip()
    with db.read() as s:
        if text.isdigit():
            uc = s.get(UseCase, int(text))
        else:
            uc = s.exec(select(UseCase).where(func.lower(UseCase.title) == text.lower())).first()
        if uc is None:
            raise NotFound(f"no use case {text!r}; give its id or exact title")
        return int(uc.id)


def _get_or_create_dataset(
    s: Session, *, actor: Actor, name: str, use_case_id: int | None, description: str
) -> tuple[Dataset, bool]:
    d = s.exec(select(Dataset).where(Dataset.name == name)).first()
    if d is not None:
        if use_case_id is not None and d.use_case_id is not None and d.use_case_id != int(use_case_id):
            raise ValidationError(
                f"dataset {name!r} belongs to another use case (id {d.use_case_id}); "
                "register under that use case or choose another dataset name"
            )
        if use_case_id is not None and d.use_case_id is None:
            d.use_case_id = int(use_case_id)
            d.updated_at = utcnow()
            s.add(d)
        return d, False
    _check_use_case(s, use_case_id)
    d = Dataset(name=name, use_case_id=use_case_id, description=(description or "").strip()[:2000], owner_id=actor.id)
    s.add(d)
    s.flush()
    audit.record(
        s,
        actor=actor,
        action="dataset.create",
        entity_type="dataset",
        entity_id=d.id,
        summary=f"created dataset {name}",
        after={"name": name, "use_case_id": use_case_id},
    )
    return d, True


def create_dataset(
    db: Database, *, actor: Actor, name: str, use_case_id: int | None = None, description: str = ""
) -> DatasetPublic:
    require(actor, "dataset.write")
    name = check_name(name)
    with db.unit_of_work() as s:
        if s.exec(select(Dataset).where(Dataset.name == name)).first():
            raise Conflict(f"a dataset named {name!r} already exists; add a version to it or choose another name")
        d, _ = _get_or_create_dataset(s, actor=actor, name=name, use_case_id=use_case_id, description=description)
        return _dataset_public(s, d)


def update_dataset(
    db: Database, *, actor: Actor, dataset_id: int, description: str | None = None, use_case_id: int | None = None
) -> DatasetPublic:
    require(actor, "dataset.write")
    with db.unit_of_work() as s:
        d = _dataset(s, dataset_id)
        before = {"description": d.description, "use_case_id": d.use_case_id}
        if description is not None:
            d.description = description.strip()[:2000]
        if use_case_id is not None:
            _check_use_case(s, use_case_id)
            d.use_case_id = int(use_case_id)
        d.updated_at = utcnow()
        s.add(d)
        audit.record(
            s,
            actor=actor,
            action="dataset.update",
            entity_type="dataset",
            entity_id=d.id,
            summary=f"edited dataset {d.name}",
            before=before,
            after={"description": d.description, "use_case_id": d.use_case_id},
        )
        return _dataset_public(s, d)


def _dataset(s: Session, dataset_id: int) -> Dataset:
    return get_or_404(s, Dataset, int(dataset_id), "dataset with id", "see the Datasets page")


def _version_row(s: Session, version_id: int) -> DatasetVersion:
    return get_or_404(s, DatasetVersion, int(version_id), "dataset version with id")


def list_datasets(db: Database, *, use_case_id: int | None = None) -> list[DatasetPublic]:
    """Everyone may read: datasets, newest first, optionally of one use case."""
    with db.read() as s:
        q = select(Dataset).order_by(col(Dataset.created_at).desc(), col(Dataset.id).desc())
        if use_case_id is not None:
            q = q.where(Dataset.use_case_id == int(use_case_id))
        return _dataset_publics(s, list(s.exec(q).all()))


def get_dataset(db: Database, dataset_id: int | None = None, *, name: str | None = None) -> DatasetPublic:
    with db.read() as s:
        if name is not None:
            d = s.exec(select(Dataset).where(Dataset.name == name.strip())).first()
            if d is None:
                raise NotFound(f"no dataset named {name!r}; see `python -m mlops_core dataset list`")
        else:
            d = _dataset(s, dataset_id)
        return _dataset_public(s, d)


# --- versions: reading (the seam) --------------------------------------------------------------


def get_version(db: Database, version_id: int) -> DatasetVersionPublic:
    with db.read() as s:
        v = _version_row(s, version_id)
        return _version_public(v, s.get(Dataset, v.dataset_id))


def list_versions(db: Database, dataset_id: int) -> list[DatasetVersionPublic]:
    """Newest first."""
    with db.read() as s:
        d = _dataset(s, dataset_id)
        rows = s.exec(
            select(DatasetVersion).where(DatasetVersion.dataset_id == d.id).order_by(col(DatasetVersion.version).desc())
        ).all()
        return [_version_public(v, d) for v in rows]


def resolve_ref(db: Database, ref: str) -> DatasetVersionPublic:
    """ "customers@v2" -> that version; "customers" or "customers@latest" -> its newest version."""
    m = REF_RE.match(ref or "")
    if not m:
        raise ValidationError(f"{ref!r} is not a dataset reference; write it as name@vN, e.g. customers@v2")
    name = m.group("name")
    with db.read() as s:
        d = s.exec(select(Dataset).where(Dataset.name == name)).first()
        if d is None:
            raise NotFound(f"no dataset named {name!r}; register it first (SDK register_dataset or the Datasets page)")
        q = select(DatasetVersion).where(DatasetVersion.dataset_id == d.id)
        if m.group("version"):
            v = s.exec(q.where(DatasetVersion.version == int(m.group("version")))).first()
            if v is None:
                known = (
                    ", ".join(
                        f"v{n}"
                        for n in s.exec(
                            select(DatasetVersion.version)
                            .where(DatasetVersion.dataset_id == d.id)
                            .order_by(DatasetVersion.version)
                        ).all()
                    )
                    or "none yet"
                )
                raise NotFound(f"dataset {name!r} has no version v{m.group('version')}; it has: {known}")
        else:
            v = s.exec(q.order_by(col(DatasetVersion.version).desc())).first()
            if v is None:
                raise NotFound(f"dataset {name!r} has no versions yet; upload one first")
        return _version_public(v, d)


def load_frame(db: Database, version_id: int, columns: list[str] | None = None):
    """The version's data as a pandas DataFrame (read from its Parquet artifact)."""
    v = get_version(db, version_id)
    path = artifacts.path(v.artifact_key)
    if not path.exists():
        raise NotFound(
            f"the data of {v.ref} is missing from the artifact store ({v.artifact_key}); "
            "check ARTIFACT_ROOT points at the shared artifact folder"
        )
    return data_io.read_frame(path, columns=columns)


def is_trainable(version: DatasetVersionPublic | DatasetVersion) -> bool:
    """Only validated versions, or failed ones waived with a reason, may be used for training."""
    return version.status in TRAINABLE_STATUSES


def trainable_versions(db: Database, *, use_case_id: int | None = None) -> list[DatasetVersionPublic]:
    """Validated or waived versions (newest first), optionally of one use case's datasets."""
    with db.read() as s:
        q = (
            select(DatasetVersion, Dataset)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(col(DatasetVersion.status).in_(TRAINABLE_STATUSES))
            .order_by(col(DatasetVersion.created_at).desc(), col(DatasetVersion.id).desc())
        )
        if use_case_id is not None:
            q = q.where(Dataset.use_case_id == int(use_case_id))
        return [_version_public(v, d) for v, d in s.exec(q).all()]


def latest_trainable_version(db: Database, dataset_id: int) -> DatasetVersionPublic | None:
    with db.read() as s:
        d = _dataset(s, dataset_id)
        v = s.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == d.id, col(DatasetVersion.status).in_(TRAINABLE_STATUSES))
            .order_by(col(DatasetVersion.version).desc())
        ).first()
        return _version_public(v, d) if v else None


def get_report(db: Database, version_id: int) -> ValidationReportPublic:
    """The stored validation report: findings (errors first), drift or None, counts per severity."""
    with db.read() as s:
        v = _version_row(s, version_id)
        return ValidationReportPublic.model_validate(v.report or {})


def get_profile(db: Database, version_id: int) -> ProfilePublic | None:
    """The stored profile (computed once at registration; never recomputed here); None if none is stored."""
    with db.read() as s:
        v = _version_row(s, version_id)
        key = v.profile_key
    if not key or not artifacts.exists(key):
        return None
    return ProfilePublic.model_validate_json(artifacts.get_bytes(key))


def export_csv(db: Database, version_id: int) -> bytes:
    """The version as CSV bytes, safe to open in a spreadsheet (formula-like cells are quoted)."""
    return data_io.to_safe_csv(load_frame(db, version_id))


# --- schemas ---------------------------------------------------------------------------------


def current_schema(db: Database, dataset_id: int) -> DatasetSchemaPublic | None:
    with db.read() as s:
        row = _current_schema(s, dataset_id)
        return _schema_public(row) if row else None


def _current_schema(s: Session, dataset_id: int) -> DatasetSchema | None:
    return s.exec(
        select(DatasetSchema)
        .where(DatasetSchema.dataset_id == int(dataset_id))
        .order_by(col(DatasetSchema.version).desc())
    ).first()


def schema_history(db: Database, dataset_id: int) -> list[DatasetSchemaPublic]:
    with db.read() as s:
        rows = s.exec(
            select(DatasetSchema)
            .where(DatasetSchema.dataset_id == int(dataset_id))
            .order_by(col(DatasetSchema.version).desc())
        ).all()
        return [_schema_public(r) for r in rows]


def update_schema(
    db: Database,
    *,
    actor: Actor,
    dataset_id: int,
    columns: list[dict[str, Any]],
    note: str = "",
    expected_version: int | None = None,
) -> DatasetSchemaPublic:
    """Store an edited schema as a new schema version; later data versions are validated against it."""
    require(actor, "dataset.write")
    cleaned = check_schema_columns(columns)
    with db.unit_of_work() as s:
        d = _dataset(s, dataset_id)
        cur = _current_schema(s, d.id)
        if expected_version is not None and cur is not None and cur.version != expected_version:
            raise Conflict(
                f"the schema of {d.name} changed to v{cur.version} while you were editing v{expected_version}; "
                "reload the page and apply your change again"
            )
        if cur is not None and cur.columns == cleaned:
            raise ValidationError("the schema is unchanged; edit a column before saving")
        row = DatasetSchema(
            dataset_id=d.id,
            version=(cur.version + 1) if cur else 1,
            columns=cleaned,
            note=(note or "").strip()[:1000],
            created_by=actor.username,
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="dataset.schema.update",
            entity_type="dataset",
            entity_id=d.id,
            summary=f"{d.name}: schema v{row.version}" + (f" ({row.note})" if row.note else ""),
            before={"version": cur.version if cur else None, "columns": cur.columns if cur else None},
            after={"version": row.version, "columns": cleaned},
        )
        return _schema_public(row)


# --- versions: registering -------------------------------------------------------------------


def _content_keys(content_hash: str) -> tuple[str, str, str]:
    h = content_hash
    return (f"datasets/{h[:2]}/{h}.parquet", f"profiles/{h[:2]}/{h}.json", f"samples/{h[:2]}/{h}.parquet")


def _store_file(key: str, src: Path, *, move: bool) -> None:
    """Put a staging file at `key` atomically (a rename into a folder store, one upload to a URL store)."""
    if artifacts.exists(key):
        if move:
            src.unlink(missing_ok=True)
        return
    with artifacts.open_for_write(key) as tmp:
        if move:
            os.replace(src, tmp)
        else:
            shutil.copyfile(src, tmp)


def _load_sample(key: str | None):
    if not key or not artifacts.exists(key):
        return None
    return data_io.read_frame(artifacts.path(key))


def _register_converted(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    converted: data_io.ConvertedData,
    use_case_id: int | None,
    source_kind: str,
    source: str,
    description: str = "",
    progress: Progress = noop_progress,
) -> DatasetVersionPublic:
    try:
        data_key, profile_key, sample_key = _content_keys(converted.content_hash)
        # 1. Same content already registered in this dataset? Then that is the version (no duplicate).
        with db.read() as s:
            d = s.exec(select(Dataset).where(Dataset.name == dataset_name)).first()
            existing = None
            schema_cols = None
            parent = None
            if d is not None:
                existing = s.exec(
                    select(DatasetVersion).where(
                        DatasetVersion.dataset_id == d.id, DatasetVersion.content_hash == converted.content_hash
                    )
                ).first()
                cur = _current_schema(s, d.id)
                schema_cols = list(cur.columns) if cur else None
                parent = s.exec(
                    select(DatasetVersion)
                    .where(DatasetVersion.dataset_id == d.id)
                    .order_by(col(DatasetVersion.version).desc())
                ).first()
            if existing is not None:
                progress(1.0, f"same content as {d.name}@v{existing.version}: nothing new stored")
                return _version_public(existing, d, deduplicated=True)
            parent_label = f"{dataset_name}@v{parent.version}" if parent else ""
            parent_sample_key = parent.sample_key if parent else None
            parent_id = parent.id if parent else None

        # 2. One streaming pass: profile + validation counts + sample.
        progress(0.55, "profiling and validating")
        scan = scan_parquet(
            converted.path,
            converted.columns,
            schema_cols,
            rules=RULES,
            progress=lambda f, m: progress(0.55 + 0.3 * f, m),
        )
        inferred = None
        if schema_cols is None:
            inferred = infer_schema(scan)
            schema_cols = inferred
        previous_sample = _load_sample(parent_sample_key)
        report = validate(
            scan, schema_cols, previous_sample=previous_sample, previous_label=parent_label or "the previous version"
        )
        if inferred is not None:
            report.findings.append(
                FindingPublic(
                    severity="info",
                    column=None,
                    kind="schema_inferred",
                    message="This is the first version: the schema (types, allowed "
                    "nulls, categories and ranges) was inferred from it. Review "
                    "it in the Schema tab; later versions are checked against it.",
                )
            )
            report.counts["info"] = report.counts.get("info", 0) + 1
        status = FAILED if report.counts.get("error", 0) else VALIDATED
        profile = build_profile(scan)

        # 3. Artifacts, atomically, under content-derived keys.
        progress(0.9, "storing")
        sample_path = data_io.new_staging_path(".parquet")
        try:
            pq.write_table(pa.Table.from_pandas(scan.sample, preserve_index=False), sample_path)
            _store_file(sample_key, sample_path, move=True)
        finally:
            sample_path.unlink(missing_ok=True)
        if not artifacts.exists(profile_key):
            artifacts.put_bytes(profile_key, json.dumps(profile, default=str).encode())
        _store_file(data_key, converted.path, move=True)

        # 4. One transaction: dataset (if new), schema v1 (if first), version, audit.
        with db.unit_of_work() as s:
            d, _created = _get_or_create_dataset(
                s, actor=actor, name=dataset_name, use_case_id=use_case_id, description=description
            )
            again = s.exec(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == d.id, DatasetVersion.content_hash == converted.content_hash
                )
            ).first()
            if again is not None:  # someone registered the same content meanwhile
                return _version_public(again, d, deduplicated=True)
            schema_row = _current_schema(s, d.id)
            if schema_row is None:
                schema_row = DatasetSchema(
                    dataset_id=d.id,
                    version=1,
                    columns=schema_cols,
                    note="inferred from the first version",
                    created_by=actor.username,
                )
                s.add(schema_row)
                s.flush()
            latest = s.exec(select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == d.id)).one()
            report.schema_version = schema_row.version
            report.compared_with = parent_label or None
            v = DatasetVersion(
                dataset_id=d.id,
                version=int(latest or 0) + 1,
                content_hash=converted.content_hash,
                artifact_key=data_key,
                profile_key=profile_key,
                sample_key=sample_key,
                n_rows=converted.n_rows,
                n_cols=converted.n_cols,
                size_bytes=converted.size_bytes,
                columns=converted.columns,
                status=status,
                parent_id=parent_id if parent_id is not None else None,
                schema_id=schema_row.id,
                source_kind=source_kind,
                source=(source or "")[:500],
                report=report.model_dump(mode="json"),
                created_by=actor.username,
                created_by_id=actor.id,
            )
            s.add(v)
            s.flush()
            audit.record(
                s,
                actor=actor,
                action="dataset.version.register",
                entity_type="dataset",
                entity_id=d.id,
                summary=f"{d.name}@v{v.version}: {v.n_rows:,} rows x {v.n_cols} columns, {status}",
                after={
                    "version_id": v.id,
                    "version": v.version,
                    "content_hash": v.content_hash,
                    "status": status,
                    "source": v.source,
                    "errors": report.counts.get("error", 0),
                },
            )
            from . import subscriptions  # issue 18: watchers of the dataset and its use case hear of it

            subscriptions.emit(
                s,
                kind=f"dataset_version_{status}"[:32],
                title=f"{d.name}@v{v.version}: {status} ({v.n_rows:,} rows)",
                entity_type="dataset",
                entity_id=d.id,
                actor_username=actor.username,
            )
            pub = _version_public(v, d)
        progress(1.0, f"{pub.ref}: {status}")
        return pub
    finally:
        converted.discard()


def _ingest(
    db: Database,
    actor: Actor,
    dataset_name: str,
    convert: Callable[[Progress], tuple[data_io.ConvertedData, str]],
    use_case_id: int | None,
    source_kind: str,
    description: str,
    progress: Progress | None,
) -> DatasetVersionPublic:
    """The one registration path of every source: role and name checked first, then `convert` turns the
    source into Parquet (reporting into the first half of the progress) and says what to record as its
    source, then the content is registered (deduplicated, validated, profiled)."""
    require(actor, "dataset.write")
    name = check_name(dataset_name)
    progress = progress or noop_progress
    converted, source = convert(progress)
    return _register_converted(
        db,
        actor=actor,
        dataset_name=name,
        converted=converted,
        use_case_id=use_case_id,
        source_kind=source_kind,
        source=source,
        description=description,
        progress=progress,
    )


def register_version_from_frame(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    frame,
    use_case_id: int | None = None,
    source: str = "sdk",
    description: str = "",
    progress: Progress | None = None,
) -> DatasetVersionPublic:
    """Register a pandas DataFrame as a version (dedup by content; validated). The SDK's entry point."""

    def convert(progress: Progress) -> tuple[data_io.ConvertedData, str]:
        return data_io.frame_to_parquet(frame, progress=lambda f, m: progress(0.5 * f, m)), source

    source_kind = "sdk" if source == "sdk" else "frame"
    return _ingest(db, actor, dataset_name, convert, use_case_id, source_kind, description, progress)


def register_version_from_upload(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    fileobj: IO[bytes],
    filename: str,
    use_case_id: int | None = None,
    description: str = "",
    source_kind: str = "upload",
    progress: Progress | None = None,
) -> DatasetVersionPublic:
    """An uploaded CSV or Parquet file: size-checked before reading, staged in chunks, then registered."""

    def convert(progress: Progress) -> tuple[data_io.ConvertedData, str]:
        safe_name = data_io.sanitize_filename(filename)
        staged = data_io.stage_upload(fileobj, safe_name, progress=lambda f, m: progress(0.2 * f, m))
        try:
            return data_io.convert_file(staged, safe_name, progress=lambda f, m: progress(0.2 + 0.3 * f, m)), safe_name
        finally:
            staged.unlink(missing_ok=True)

    return _ingest(db, actor, dataset_name, convert, use_case_id, source_kind, description, progress)


def register_version_from_path(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    path: str,
    use_case_id: int | None = None,
    description: str = "",
    source_kind: str = "path",
    restrict_to_roots: bool = True,
    progress: Progress | None = None,
) -> DatasetVersionPublic:
    """A CSV or Parquet file on this machine. From the UI only inside MLOPS_INGEST_ROOTS; the CLI and SDK
    (which run as the user on their own machine) pass restrict_to_roots=False."""

    def convert(progress: Progress) -> tuple[data_io.ConvertedData, str]:
        if restrict_to_roots:
            p = data_io.check_server_path(path)
        else:
            p = Path(path).expanduser()
            if not p.is_file():
                raise ValidationError(f"no file at {p}; check the path")
        data_io.check_file_size(p)
        return data_io.convert_file(p, p.name, progress=lambda f, m: progress(0.5 * f, m)), str(p)

    return _ingest(db, actor, dataset_name, convert, use_case_id, source_kind, description, progress)


def register_version_from_sql(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    connection: str,
    query: str,
    use_case_id: int | None = None,
    description: str = "",
    source_kind: str = "sql",
    progress: Progress | None = None,
) -> DatasetVersionPublic:
    """The result of a read-only query on a named connection (MLOPS_SQL_CONNECTIONS)."""

    def convert(progress: Progress) -> tuple[data_io.ConvertedData, str]:
        # app_db: the source is compared with this database by identity, not only by URL spelling.
        converted = data_io.query_to_parquet(connection, query, progress=lambda f, m: progress(0.5 * f, m), app_db=db)
        return converted, f"sql:{connection}: {' '.join(query.split())}"

    return _ingest(db, actor, dataset_name, convert, use_case_id, source_kind, description, progress)


# --- waivers and re-validation -------------------------------------------------------------


def waive_version(db: Database, *, actor: Actor, version_id: int, reason: str) -> DatasetVersionPublic:
    """Accept a failed version for training anyway, with a reason (audited)."""
    require(actor, "dataset.approve")
    reason = (reason or "").strip()
    if len(reason) < MIN_WAIVER_REASON:
        raise ValidationError(
            f"a waiver needs a reason of at least {MIN_WAIVER_REASON} characters that says why the failed checks "
            "are acceptable (e.g. 'negative charges are refunds, confirmed with billing')"
        )
    with db.unit_of_work() as s:
        v = _version_row(s, version_id)
        d = s.get(Dataset, v.dataset_id)
        if v.status != FAILED:
            raise ValidationError(f"{d.name}@v{v.version} is {v.status}; only a failed version can be waived")
        v.status = WAIVED
        v.waived_by = actor.username
        v.waived_reason = reason[:1000]
        v.waived_at = utcnow()
        s.add(v)
        audit.record(
            s,
            actor=actor,
            action="dataset.version.waive",
            entity_type="dataset",
            entity_id=d.id,
            summary=f"waived {d.name}@v{v.version}: {reason[:200]}",
            before={"status": FAILED},
            after={"status": WAIVED, "version_id": v.id, "reason": reason},
        )
        return _version_public(v, d)


def revalidate_version(db: Database, *, actor: Actor, version_id: int) -> DatasetVersionPublic:
    """Check a version again against the dataset's current schema (after the schema was edited)."""
    require(actor, "dataset.approve")
    with db.read() as s:
        v = _version_row(s, version_id)
        d = s.get(Dataset, v.dataset_id)
        schema = _current_schema(s, d.id)
        schema_cols, schema_version, dataset_id = list(schema.columns), schema.version, d.id
        parent = s.get(DatasetVersion, v.parent_id) if v.parent_id else None
        columns, key = list(v.columns), v.artifact_key
        parent_sample, parent_label = (parent.sample_key, f"{d.name}@v{parent.version}") if parent else (None, "")
    scan = scan_parquet(artifacts.path(key), columns, schema_cols, rules=RULES)
    report = validate(
        scan,
        schema_cols,
        previous_sample=_load_sample(parent_sample),
        previous_label=parent_label or "the previous version",
    )
    report.schema_version = schema_version
    report.compared_with = parent_label or None
    new_status = FAILED if report.counts.get("error", 0) else VALIDATED
    with db.unit_of_work() as s:
        row = s.get(DatasetVersion, int(version_id))
        before = row.status
        if not (row.status == WAIVED and new_status == FAILED):
            row.status = new_status
        row.report = report.model_dump(mode="json")
        s.add(row)
        d = s.get(Dataset, dataset_id)
        audit.record(
            s,
            actor=actor,
            action="dataset.version.revalidate",
            entity_type="dataset",
            entity_id=d.id,
            summary=f"re-checked {d.name}@v{row.version} against schema v{schema_version}: {row.status}",
            before={"status": before},
            after={"status": row.status, "version_id": row.id},
        )
        return _version_public(row, d)


# --- diffs ---------------------------------------------------------------------------------

_DIFF_CACHE: "OrderedDict[tuple, DatasetDiffPublic]" = OrderedDict()
_DIFF_CACHE_LOCK = threading.Lock()
_DIFF_CACHE_SIZE = 64


def diff_versions(db: Database, *, from_version_id: int, to_version_id: int) -> DatasetDiffPublic:
    """What changed between two versions: rows, columns, types, per-column summaries, and drift (on samples).

    Computed once per pair and process: a version's content, profile and sample never change, so the diff
    of two versions never does (the dataset page shows it on every render; it reads two samples and tests
    drift)."""
    a, b = get_version(db, from_version_id), get_version(db, to_version_id)
    # Ids repeat across workspaces (databases, artifact stores) served by one process: key by those too,
    # and by the content hashes.
    key = (db.url, artifacts.store_id(), a.id, a.content_hash, b.id, b.content_hash)
    with _DIFF_CACHE_LOCK:
        if key in _DIFF_CACHE:
            _DIFF_CACHE.move_to_end(key)
            return _DIFF_CACHE[key].model_copy(deep=True)
    out = _diff(db, a, b)
    with _DIFF_CACHE_LOCK:
        _DIFF_CACHE[key] = out
        while len(_DIFF_CACHE) > _DIFF_CACHE_SIZE:
            _DIFF_CACHE.popitem(last=False)
    return out.model_copy(deep=True)


def _diff(db: Database, a: DatasetVersionPublic, b: DatasetVersionPublic) -> DatasetDiffPublic:
    pa_, pb = get_profile(db, a.id), get_profile(db, b.id)
    ta = {c["name"]: c["type"] for c in a.columns}
    tb = {c["name"]: c["type"] for c in b.columns}
    stats_a = {c.name: c for c in (pa_.columns if pa_ else [])}
    stats_b = {c.name: c for c in (pb.columns if pb else [])}

    def pair(name: str, figure: str) -> tuple:
        ca, cb = stats_a.get(name), stats_b.get(name)
        return (getattr(ca, figure) if ca else None, getattr(cb, figure) if cb else None)

    rows = []
    for name in list(dict.fromkeys(list(ta) + list(tb))):
        rows.append(
            DiffColumnPublic(
                column=name,
                change="added"
                if name not in ta
                else "removed"
                if name not in tb
                else ("type changed" if ta[name] != tb[name] else ""),
                type=f"{ta.get(name, '—')} → {tb.get(name, '—')}" if ta.get(name) != tb.get(name) else ta[name],
                null_share=pair(name, "null_share"),
                mean=pair(name, "mean"),
                min=pair(name, "min"),
                max=pair(name, "max"),
                distinct=pair(name, "distinct"),
            )
        )
    drift = None
    with db.read() as s:
        ka = s.get(DatasetVersion, a.id).sample_key
        kb = s.get(DatasetVersion, b.id).sample_key
    sa, sb = _load_sample(ka), _load_sample(kb)
    if sa is not None and sb is not None:
        shared = [
            c
            for c in sb.columns
            if c in sa.columns
            and (sa[c].dtype.kind in "iuf") == (sb[c].dtype.kind in "iuf")
            and sa[c].notna().any()
            and sb[c].notna().any()
        ]
        if shared and len(sa) and len(sb):
            try:
                drift = DataDriftPublic.model_validate(detect_drift(sa[shared], sb[shared], columns=shared).to_dict())
            except ValueError:
                drift = None
    return DatasetDiffPublic(
        from_ref=a.ref,
        to_ref=b.ref,
        rows=(a.n_rows, b.n_rows),
        same_content=a.content_hash == b.content_hash,
        columns=rows,
        drift=drift,
    )


# --- scheduled ingestion ---------------------------------------------------------------------


def _source_public(r: IngestionSource) -> IngestionSourcePublic:
    return IngestionSourcePublic.model_validate(r, from_attributes=True)


def schedule_ingestion(
    db: Database,
    *,
    actor: Actor,
    dataset_name: str,
    kind: str,
    location: str,
    query: str | None = None,
    interval_seconds: int | None = None,
    cron: str | None = None,
    use_case_id: int | None = None,
    enabled: bool = True,
) -> IngestionSourcePublic:
    """Attach a schedule to a path or SQL source; the worker runs it (job kind "ingest")."""
    require(actor, "ingestion.schedule")
    name = check_name(dataset_name)
    if kind not in ("path", "sql"):
        raise ValidationError("an ingestion source is either a file path ('path') or a SQL query ('sql')")
    location = (location or "").strip()
    if kind == "path":
        data_io.check_server_path(location)
        query = None
    else:
        conns = data_io.sql_connections()
        if location not in conns:
            raise ValidationError(
                f"unknown SQL connection {location!r}; known: {', '.join(sorted(conns)) or 'none configured'}"
            )
        if not query or not data_io._READ_ONLY_SQL.match(query):
            raise ValidationError("give one read-only query starting with SELECT or WITH")
    if (interval_seconds is None) == (not cron or not cron.strip()):
        raise ValidationError("give either an interval in seconds or a cron expression (exactly one)")
    if interval_seconds is not None and int(interval_seconds) < 60:
        raise ValidationError("ingest at most once a minute: use an interval of at least 60 seconds")
    with db.unit_of_work() as s:
        d, _ = _get_or_create_dataset(s, actor=actor, name=name, use_case_id=use_case_id, description="")
        n = s.exec(select(func.count()).select_from(IngestionSource).where(IngestionSource.dataset_id == d.id)).one()
        src = IngestionSource(
            dataset_id=d.id,
            kind=kind,
            location=location,
            query=query,
            interval_seconds=int(interval_seconds) if interval_seconds is not None else None,
            cron=cron.strip() if cron else None,
            enabled=enabled,
            schedule_name=f"ingest:{d.name}:{int(n) + 1}",
            created_by=actor.username,
        )
        s.add(src)
        s.flush()
        src.schedule_name = f"ingest:{d.name}:{src.id}"
        s.add(src)
        jobs.upsert_schedule(
            s,
            name=src.schedule_name,
            kind="ingest",
            payload={"source_id": src.id},
            interval_seconds=src.interval_seconds,
            cron=src.cron,
            enabled=enabled,
        )
        audit.record(
            s,
            actor=actor,
            action="ingestion.schedule",
            entity_type="dataset",
            entity_id=d.id,
            summary=f"{d.name}: ingest {kind} {location} "
            + (f"every {src.interval_seconds}s" if src.interval_seconds else f"on cron '{src.cron}'"),
            after={
                "source_id": src.id,
                "kind": kind,
                "location": location,
                "query": query,
                "interval_seconds": src.interval_seconds,
                "cron": src.cron,
            },
        )
        return _source_public(src)


def set_ingestion_enabled(db: Database, *, actor: Actor, source_id: int, enabled: bool) -> IngestionSourcePublic:
    require(actor, "ingestion.schedule")
    with db.unit_of_work() as s:
        src = get_or_404(s, IngestionSource, int(source_id), "ingestion source with id")
        src.enabled = bool(enabled)
        s.add(src)
        jobs.upsert_schedule(
            s,
            name=src.schedule_name,
            kind="ingest",
            payload={"source_id": src.id},
            interval_seconds=src.interval_seconds,
            cron=src.cron,
            enabled=src.enabled,
        )
        audit.record(
            s,
            actor=actor,
            action="ingestion.enable" if enabled else "ingestion.disable",
            entity_type="dataset",
            entity_id=src.dataset_id,
            summary=f"{'resumed' if enabled else 'paused'} ingestion {src.schedule_name}",
            before={"enabled": not enabled},
            after={"enabled": enabled},
        )
        return _source_public(src)


def list_ingestion_sources(db: Database, dataset_id: int) -> list[IngestionSourcePublic]:
    with db.read() as s:
        rows = s.exec(
            select(IngestionSource).where(IngestionSource.dataset_id == int(dataset_id)).order_by(IngestionSource.id)
        ).all()
        return [_source_public(r) for r in rows]


def list_ingestion_runs(db: Database, source_id: int, limit: int = 20) -> list[IngestionRunPublic]:
    with db.read() as s:
        rows = s.exec(
            select(IngestionRun)
            .where(IngestionRun.source_id == int(source_id))
            .order_by(col(IngestionRun.id).desc())
            .limit(limit)
        ).all()
        return [IngestionRunPublic.model_validate(r, from_attributes=True) for r in rows]


def run_ingestion_source(
    db: Database, *, source_id: int, job_id: int | None = None, progress: Progress | None = None
) -> IngestionRunPublic:
    """Read the source once, as the system: a new version if the content changed, else "unchanged".
    A failure is recorded on the run and the source (with its message) and re-raised."""
    progress = progress or noop_progress
    system = Actor.system()
    with db.unit_of_work() as s:
        src = get_or_404(s, IngestionSource, int(source_id), "ingestion source with id", "its schedule may be stale")
        d = s.get(Dataset, src.dataset_id)
        run = IngestionRun(source_id=src.id, job_id=job_id, status="running")
        s.add(run)
        s.flush()
        run_id, kind, location, query, name = run.id, src.kind, src.location, src.query, d.name
        actor = Actor(id=None, username=f"system:{src.created_by}"[:64], role=system.role)
    status, version_id, error = "failed", None, None
    try:
        if kind == "path":
            v = register_version_from_path(
                db, actor=actor, dataset_name=name, path=location, source_kind="ingestion", progress=progress
            )
        else:
            v = register_version_from_sql(
                db,
                actor=actor,
                dataset_name=name,
                connection=location,
                query=query or "",
                source_kind="ingestion",
                progress=progress,
            )
        status, version_id = ("unchanged" if v.deduplicated else "created"), v.id
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised for the job to fail visibly
        error = str(exc)[:2000] or type(exc).__name__
        raise
    finally:
        with db.unit_of_work() as s:
            run = s.get(IngestionRun, run_id)
            run.status, run.version_id, run.error, run.finished_at = status, version_id, error, utcnow()
            src = s.get(IngestionSource, int(source_id))
            src.last_run_at, src.last_status, src.last_error = run.finished_at, status, error
            s.add(run)
            s.add(src)
            audit.record(
                s,
                actor=system,
                action="ingestion.run",
                entity_type="dataset",
                entity_id=src.dataset_id,
                summary=f"ingestion {src.schedule_name}: {status}" + (f" ({error[:200]})" if error else ""),
                after={"run_id": run_id, "status": status, "version_id": version_id},
            )
            out = IngestionRunPublic.model_validate(run, from_attributes=True)
    return out
