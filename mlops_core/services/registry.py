"""The model registry (stage 3): named models, auto-incremented versions from finished runs, model cards,
aliases (champion, challenger, ...) and lineage use case -> dataset version -> run -> model version.

A version points at its run's skops file; artifacts are immutable, so the version never changes under
a deployment. `register_model` and `load_model` refuse a file holding any type outside the exact allow-list
(ml.persistence.trusted_model_types()), by name, before anything in it is built.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from .. import artifacts
from ..db import Database, utcnow
from ..errors import NotFound, ValidationError
from ..ml import persistence
from ..models.deployments import Deployment
from ..models.experiments import (
    ModelAlias,
    ModelVersion,
    ModelVersionPublic,
    RegisteredModel,
    RegisteredModelPublic,
    Run,
    RunLatestMetric,
)
from . import audit, datasets, subscriptions
from .auth import Actor, require
from .usecases import evaluate_metrics, get_use_case

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
HIDDEN_PREFIXES = ("train_", "fold_", "staged_", "cv_std_", "search_")


def _check_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not NAME_RE.match(name):
        raise ValidationError(
            f"model name {name!r} is not allowed; use 2-100 characters: lower-case letters, digits, . _ - "
            "(e.g. churn-classifier)"
        )
    return name


def _check_alias(alias: str) -> str:
    alias = (alias or "").strip().lower()
    if not ALIAS_RE.match(alias):
        raise ValidationError(f"alias {alias!r} is not allowed; use a lower-case word such as champion or challenger")
    if alias.startswith("v") and alias[1:].isdigit():
        raise ValidationError(f"alias {alias!r} looks like a version number; choose a word such as champion")
    return alias


def _aliases_of(s: Session, version_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not version_ids:
        return out
    for a in s.exec(
        select(ModelAlias).where(col(ModelAlias.model_version_id).in_(version_ids)).order_by(ModelAlias.alias)
    ).all():
        out.setdefault(a.model_version_id, []).append(a.alias)
    return out


def _version_publics(s: Session, rows: list[ModelVersion]) -> list[ModelVersionPublic]:
    names = {}
    ids = list({r.model_id for r in rows})
    if ids:
        names = dict(
            s.exec(select(RegisteredModel.id, RegisteredModel.name).where(col(RegisteredModel.id).in_(ids))).all()
        )
    aliases = _aliases_of(s, [r.id for r in rows])
    out = []
    for r in rows:
        data = r.model_dump()
        data["model_name"] = names.get(r.model_id, "?")
        data["aliases"] = aliases.get(r.id, [])
        out.append(ModelVersionPublic.model_validate(data))
    return out


def _model_public(s: Session, m: RegisteredModel) -> RegisteredModelPublic:
    latest = s.exec(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == m.id)).one()
    aliases = {
        a: v
        for a, v in s.exec(
            select(ModelAlias.alias, ModelVersion.version)
            .join(ModelVersion, col(ModelVersion.id) == col(ModelAlias.model_version_id))
            .where(ModelAlias.model_id == m.id)
        ).all()
    }
    data = m.model_dump()
    data.update(latest_version=latest, aliases=aliases)
    return RegisteredModelPublic.model_validate(data)


# --- register -------------------------------------------------------------------------------------


def _check_run_model_file(db: Database, run_id: int) -> None:
    """Refuse to register a run whose model file holds types we do not load (a file that reached the store
    by another way than log_model): reads the file's schema only, builds nothing."""

    with db.read() as s:
        run = s.get(Run, int(run_id))
        key = run.model_artifact_key if run is not None else None
    if key and artifacts.exists(key):
        data = artifacts.get_bytes(key)
        # An MLflow pickle model is registered (stored as logged) but never loaded: load_model and the
        # deployment gate refuse it with persistence.PICKLE_REFUSED.
        if not persistence.is_pickle(data):
            persistence.check_model_bytes(data)


def register_model(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    name: str,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
    alias: str | None = None,
) -> ModelVersionPublic:
    """Make the next version of model `name` from a finished run that has a model (creates the model
    on first use)."""
    require(actor, "model.register")
    name = _check_name(name)
    alias = _check_alias(alias) if alias else None
    _check_run_model_file(db, run_id)
    with db.unit_of_work() as s:
        run = s.get(Run, int(run_id))
        if run is None:
            raise NotFound(f"there is no run {run_id}; pick a finished run on the Experiments page")
        if run.status != "finished":
            raise ValidationError(f"run {run_id} is {run.status}; only a finished run can be registered as a model")
        if not run.model_artifact_key:
            raise ValidationError(
                f"run {run_id} has no stored model; with the SDK call run.log_model(estimator) before the run ends"
            )
        model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first()
        if model is None:
            model = RegisteredModel(
                name=name,
                use_case_id=run.use_case_id,
                description=description.strip()[:5000],
                created_by=actor.username,
            )
            s.add(model)
            s.flush()
            audit.record(
                s,
                actor=actor,
                action="model.create",
                entity_type="registered_model",
                entity_id=model.id,
                summary=f"model {name} created",
                after={"name": name, "use_case_id": run.use_case_id},
            )
        elif model.use_case_id is not None and run.use_case_id is not None and model.use_case_id != run.use_case_id:
            raise ValidationError(
                f"model {name} belongs to another use case (id {model.use_case_id}) than run {run_id} "
                f"(id {run.use_case_id}); choose another model name"
            )
        last = s.exec(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)).one() or 0
        metrics = {
            k: float(v)
            for k, v in s.exec(
                select(RunLatestMetric.key, RunLatestMetric.value).where(RunLatestMetric.run_id == run.id)
            ).all()
            if not k.startswith(HIDDEN_PREFIXES)
        }
        mv = ModelVersion(
            model_id=model.id,
            version=int(last) + 1,
            run_id=run.id,
            use_case_id=run.use_case_id,
            dataset_version_id=run.dataset_version_id,
            artifact_key=run.model_artifact_key,
            task=run.task,
            target=run.target,
            input_schema=list(run.input_schema or []),
            metrics=metrics,
            card={"intended_use": intended_use.strip()[:5000], "limitations": limitations.strip()[:5000]},
            created_by=actor.username,
        )
        s.add(mv)
        model.updated_at = utcnow()
        s.add(model)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="model.register",
            entity_type="model_version",
            entity_id=mv.id,
            summary=f"{name} v{mv.version} registered from run {run.id}",
            after={"model": name, "version": mv.version, "run_id": run.id, "metrics": metrics},
        )
        subscriptions.emit(  # watchers of the use case hear of it (issue 18)
            s,
            kind="model_registered",
            title=f"{name} v{mv.version} registered from run {run.id}",
            entity_type="model_version",
            entity_id=mv.id,
            actor_username=actor.username,
        )
        if alias:
            _set_alias_in(s, actor=actor, model=model, alias=alias, mv=mv)
        s.flush()
        return _version_publics(s, [mv])[0]


def _set_alias_in(s: Session, *, actor: Actor, model: RegisteredModel, alias: str, mv: ModelVersion) -> None:
    row = s.exec(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)).first()
    before = None
    if row is None:
        row = ModelAlias(model_id=model.id, alias=alias, model_version_id=mv.id, updated_by=actor.username)
    else:
        prev = s.get(ModelVersion, row.model_version_id)
        before = {"version": prev.version if prev else None}
        row.model_version_id = mv.id
        row.updated_by = actor.username
        row.updated_at = utcnow()
    s.add(row)
    audit.record(
        s,
        actor=actor,
        action="model.alias",
        entity_type="registered_model",
        entity_id=model.id,
        summary=f"{model.name}@{alias} -> v{mv.version}",
        before=before,
        after={"version": mv.version},
    )
    subscriptions.emit(  # watchers of the version and its use case hear of it (issue 18)
        s,
        kind="model_aliased",
        title=f"{model.name}@{alias} now points at v{mv.version}",
        entity_type="model_version",
        entity_id=mv.id,
        actor_username=actor.username,
    )


def set_alias(db: Database, *, actor: Actor, model_name: str, alias: str, version: int) -> ModelVersionPublic:
    """Point `alias` (e.g. champion) of a model at one of its versions (moving it if it pointed elsewhere)."""
    require(actor, "model.register")
    alias = _check_alias(alias)
    with db.unit_of_work() as s:
        model = _model_row(s, model_name)
        mv = s.exec(
            select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == int(version))
        ).first()
        if mv is None:
            raise NotFound(f"model {model.name} has no version {version}")
        _set_alias_in(s, actor=actor, model=model, alias=alias, mv=mv)
        s.flush()
        return _version_publics(s, [mv])[0]


def remove_alias(db: Database, *, actor: Actor, model_name: str, alias: str) -> None:
    require(actor, "model.register")
    with db.unit_of_work() as s:
        model = _model_row(s, model_name)
        row = s.exec(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)).first()
        if row is None:
            raise NotFound(f"model {model.name} has no alias {alias!r}")
        s.delete(row)
        audit.record(
            s,
            actor=actor,
            action="model.alias_remove",
            entity_type="registered_model",
            entity_id=model.id,
            summary=f"{model.name}@{alias} removed",
        )


def update_card(
    db: Database,
    *,
    actor: Actor,
    model_version_id: int,
    intended_use: str | None = None,
    limitations: str | None = None,
    notes: str | None = None,
) -> ModelVersionPublic:
    require(actor, "model.register")
    with db.unit_of_work() as s:
        mv = s.get(ModelVersion, int(model_version_id))
        if mv is None:
            raise NotFound(f"there is no model version {model_version_id}")
        before = dict(mv.card)
        card = dict(mv.card)
        for k, v in (("intended_use", intended_use), ("limitations", limitations), ("notes", notes)):
            if v is not None:
                card[k] = v.strip()[:5000]
        mv.card = card
        s.add(mv)
        audit.record(
            s,
            actor=actor,
            action="model.card",
            entity_type="model_version",
            entity_id=mv.id,
            summary=f"model card of version {mv.version} edited",
            before=before,
            after=card,
        )
        s.flush()
        return _version_publics(s, [mv])[0]


# --- read -------------------------------------------------------------------------------------------


def _model_row(s: Session, model_name: str) -> RegisteredModel:
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == (model_name or "").strip().lower())).first()
    if model is None:
        names = s.exec(select(RegisteredModel.name).order_by(RegisteredModel.name).limit(20)).all()
        raise NotFound(f"there is no model {model_name!r}; registered models: {', '.join(names) or 'none yet'}")
    return model


def get_model_version(db: Database, model_version_id: int) -> ModelVersionPublic:
    """A model version: input_schema, metrics, run_id, dataset_version_id, aliases (contract seam)."""
    with db.read() as s:
        mv = s.get(ModelVersion, int(model_version_id))
        if mv is None:
            raise NotFound(f"there is no model version {model_version_id}; see the Models page")
        return _version_publics(s, [mv])[0]


def resolve_version(
    db: Database, *, model_name: str, version: int | None = None, alias: str | None = None
) -> ModelVersionPublic:
    """`name` + version number, or `name` + alias (e.g. champion); the latest version with neither."""
    with db.read() as s:
        model = _model_row(s, model_name)
        if alias:
            a = s.exec(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)).first()
            if a is None:
                raise NotFound(f"model {model.name} has no alias {alias!r}")
            mv = s.get(ModelVersion, a.model_version_id)
        else:
            q = select(ModelVersion).where(ModelVersion.model_id == model.id)
            q = (
                q.where(ModelVersion.version == int(version))
                if version
                else q.order_by(col(ModelVersion.version).desc())
            )
            mv = s.exec(q).first()
        if mv is None:
            raise NotFound(f"model {model.name} has no version {version or ''}".strip())
        return _version_publics(s, [mv])[0]


def list_models(
    db: Database, *, search: str | None = None, use_case_id: int | None = None, limit: int = 50, offset: int = 0
) -> list[RegisteredModelPublic]:
    with db.read() as s:
        q = select(RegisteredModel)
        if search:
            q = q.where(func.lower(RegisteredModel.name).like(f"%{search.strip().lower()}%"))
        if use_case_id is not None:
            q = q.where(RegisteredModel.use_case_id == int(use_case_id))
        rows = s.exec(q.order_by(RegisteredModel.name).offset(max(0, offset)).limit(max(1, min(limit, 500)))).all()
        return [_model_public(s, m) for m in rows]


def list_model_versions(
    db: Database,
    *,
    model_name: str | None = None,
    model_id: int | None = None,
    use_case_id: int | None = None,
    limit: int = 100,
) -> list[ModelVersionPublic]:
    """Versions, newest first, of one model or of every model of a use case."""
    with db.read() as s:
        q = select(ModelVersion)
        if model_name:
            q = q.where(ModelVersion.model_id == _model_row(s, model_name).id)
        if model_id is not None:
            q = q.where(ModelVersion.model_id == int(model_id))
        if use_case_id is not None:
            q = q.where(ModelVersion.use_case_id == int(use_case_id))
        rows = s.exec(
            q.order_by(col(ModelVersion.created_at).desc(), col(ModelVersion.id).desc()).limit(max(1, min(limit, 1000)))
        ).all()
        return _version_publics(s, list(rows))


def versions_of_run(db: Database, run_id: int) -> list[ModelVersionPublic]:
    with db.read() as s:
        rows = s.exec(select(ModelVersion).where(ModelVersion.run_id == int(run_id))).all()
        return _version_publics(s, list(rows))


# --- load ---------------------------------------------------------------------------------------------

_CACHE: "OrderedDict[str, Any]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def load_model(db: Database, model_version_id: int):
    """The fitted pipeline of a model version (skops; a file naming any type outside the exact allow-list is
    refused by name before anything is built: persistence.load_model_bytes). Cached per process:
    the file behind a version never changes."""

    mv = get_model_version(db, model_version_id)
    # Keyed by the store and the key, not the key alone: the same key under another ARTIFACT_ROOT
    # (another workspace in the same process) is another model.
    cache_key = f"{artifacts.store_id()}/{mv.artifact_key}"
    with _CACHE_LOCK:
        if cache_key in _CACHE:
            _CACHE.move_to_end(cache_key)
            return _CACHE[cache_key]
    if not artifacts.exists(mv.artifact_key):
        raise NotFound(
            f"the model file of {mv.model_name} v{mv.version} is missing from the artifact store "
            f"({mv.artifact_key}); check ARTIFACT_ROOT points at the shared artifact folder"
        )
    model = persistence.load_model_bytes(artifacts.get_bytes(mv.artifact_key))
    with _CACHE_LOCK:
        _CACHE[cache_key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model


def model_file(db: Database, model_version_id: int) -> tuple[str, bytes]:
    """(file name, bytes) of a model version's skops file, for download (the bytes are not loaded here)."""
    mv = get_model_version(db, model_version_id)
    if not artifacts.exists(mv.artifact_key):
        raise NotFound(
            f"the model file of {mv.model_name} v{mv.version} is missing from the artifact store "
            f"({mv.artifact_key}); check ARTIFACT_ROOT points at the shared artifact folder"
        )
    return f"{mv.model_name}-v{mv.version}.skops", artifacts.get_bytes(mv.artifact_key)


# --- model card and lineage ------------------------------------------------------------------------------


@dataclass
class ModelCard:
    version: ModelVersionPublic
    use_case_title: str | None
    dataset_label: str | None
    dataset_hash: str
    run_name: str
    algorithm: str
    params: dict[str, Any]
    trained_by: str
    code_version: str
    package_versions: dict[str, Any]
    kpi_checks: list = field(default_factory=list)
    intended_use: str = ""
    limitations: str = ""


def _dataset_label(db: Database, dataset_version_id: int | None) -> str | None:
    if dataset_version_id is None:
        return None
    try:
        v = datasets.get_version(db, int(dataset_version_id))
    except Exception:  # noqa: BLE001 - the card still shows the rest
        return f"dataset version #{dataset_version_id}"
    name = getattr(v, "dataset_name", None) or getattr(v, "name", None)
    return f"{name}@v{v.version}" if name else f"dataset version #{v.id} (v{v.version})"


def model_card(db: Database, model_version_id: int) -> ModelCard:
    """Use case, data lineage, metrics against KPIs, intended use and limitations, from the database."""

    mv = get_model_version(db, model_version_id)
    with db.read() as s:
        row = s.get(Run, mv.run_id)
        run = row.model_copy() if row is not None else None
    title = None
    checks = []
    if mv.use_case_id is not None:
        title = get_use_case(db, use_case_id=mv.use_case_id).title
        checks = evaluate_metrics(db, mv.use_case_id, mv.metrics)
    return ModelCard(
        version=mv,
        use_case_title=title,
        dataset_label=_dataset_label(db, mv.dataset_version_id),
        dataset_hash=run.dataset_hash if run else "",
        run_name=run.name if run else "",
        algorithm=run.algorithm if run else "",
        params=dict(run.params) if run else {},
        trained_by=run.created_by if run else "",
        code_version=run.code_version if run else "",
        package_versions=dict(run.package_versions) if run else {},
        kpi_checks=checks,
        intended_use=mv.card.get("intended_use", ""),
        limitations=mv.card.get("limitations", ""),
    )


@dataclass
class LineageNode:
    kind: str  # "use_case" | "dataset_version" | "run" | "model_version" | "deployment"
    id: int | None
    label: str
    detail: str = ""


def lineage(db: Database, model_version_id: int) -> list[LineageNode]:
    """use case -> dataset version -> run -> model version -> the deployments serving it."""
    card = model_card(db, model_version_id)
    mv = card.version
    nodes = [
        LineageNode("use_case", mv.use_case_id, card.use_case_title or "(no use case)"),
        LineageNode(
            "dataset_version",
            mv.dataset_version_id,
            card.dataset_label or "(no dataset)",
            f"hash {card.dataset_hash[:12]}" if card.dataset_hash else "",
        ),
        LineageNode("run", mv.run_id, f"run {mv.run_id}: {card.run_name}", f"{card.algorithm} by {card.trained_by}"),
        LineageNode("model_version", mv.id, mv.label, ", ".join(mv.aliases)),
    ]
    if mv.use_case_id is not None:
        # the deployments table directly: services/deployments imports this module (a later stage)
        with db.read() as s:
            deps = s.exec(
                select(Deployment)
                .where(Deployment.use_case_id == mv.use_case_id, Deployment.model_version_id == mv.id)
                .order_by(Deployment.name)
            ).all()
            # inside the read: its rollback expires the rows (a served version's lineage raised DetachedInstanceError)
            nodes += [LineageNode("deployment", d.id, d.name, d.environment) for d in deps]
    return nodes


def model_for_sdk(db: Database, *, actor: Actor, run_id: int, name: str) -> int:
    """SDK `register_model(run_id, name)` -> the new version number."""
    return register_model(db, actor=actor, run_id=run_id, name=name).version
