"""The ML canvas of a use case (issue 20): a guided form, in the spirit of Louis Dorard's Machine Learning
Canvas, on which business and data scientists agree what the model must do.

Every field is optional; each save is a new version (history). Data scientists comment field by field
(collab comments on entity "canvas_field", id "<use_case_id>:<field>"). The canvas sets the problem type
(binary, multiclass, regression) and the positive class that serving scores and the value model use.
"""

from __future__ import annotations

from typing import Any, Mapping

from sqlmodel import Session, col, func, select

from ..db import Database
from ..errors import Conflict, ValidationError
from ..ml import value as value_math
from ..models.usecases import UseCase
from ..models.value import CanvasPublic, UseCaseCanvas
from . import audit
from ._common import get_or_404
from .auth import Actor, require

# (key, label, help): the form's sections in order.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("decision", "Decision the prediction supports", "e.g. which customers get a retention offer this week"),
    ("who_acts", "Who acts on it", "e.g. the retention team calls the flagged customers"),
    ("target", "Prediction target", "e.g. the customer cancels their contract"),
    ("horizon", "Horizon", "e.g. within 30 days of scoring"),
    ("scored_unit", "Unit that is scored", "customer, invoice, machine, ..."),
    ("frequency", "How often it is scored", "e.g. every Monday, or on each request"),
    ("data_sources", "Data sources believed to hold signal", "tables, systems, files"),
    ("cost_false_positive", "How a false alarm hurts", "what happens when the model says yes and it is no"),
    ("cost_false_negative", "How a miss hurts", "what happens when the model says no and it is yes"),
    ("offline_success", "Success measured offline", "e.g. recall >= 0.8 on last quarter's customers"),
    ("live_success", "Success measured live", "e.g. churn rate of contacted customers down 2 points"),
    ("latency", "Constraint: latency", "e.g. an answer within 200 ms"),
    ("fairness", "Constraint: fairness concerns", "groups that must not be treated differently"),
    ("explanations", "Constraint: explanations owed to people", "what a customer or agent must be told"),
)
FIELD_KEYS = tuple(k for k, _, _ in FIELDS)
FIELD_LABELS = {k: label for k, label, _ in FIELDS}
MAX_FIELD = 2000
COMMENT_ENTITY = "canvas_field"


def comment_entity_id(use_case_id: int, field: str) -> str:
    """The collab entity id of one canvas field's discussion."""
    if field not in FIELD_KEYS:
        raise ValidationError(f"unknown canvas field {field!r}; use one of: {', '.join(FIELD_KEYS)}")
    return f"{int(use_case_id)}:{field}"


def _public(row: UseCaseCanvas | None, use_case_id: int) -> CanvasPublic:
    if row is None:
        return CanvasPublic(
            use_case_id=use_case_id,
            version=0,
            fields={},
            problem_type="",
            positive_class="",
            created_by="",
            created_at=None,
        )
    return CanvasPublic(
        use_case_id=row.use_case_id,
        version=row.version,
        fields={k: str(v) for k, v in (row.fields or {}).items() if k in FIELD_KEYS and v},
        problem_type=row.problem_type,
        positive_class=row.positive_class,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _latest(s: Session, use_case_id: int) -> UseCaseCanvas | None:
    return s.exec(
        select(UseCaseCanvas)
        .where(UseCaseCanvas.use_case_id == int(use_case_id))
        .order_by(col(UseCaseCanvas.version).desc())
        .limit(1)
    ).first()


def get_canvas(db: Database, *, use_case_id: int, version: int | None = None) -> CanvasPublic:
    """The current canvas (version 0 with no fields when never saved), or an older `version`."""
    with db.read() as s:
        get_or_404(s, UseCase, int(use_case_id), "use case", "open one from the portfolio")
        if version is None:
            return _public(_latest(s, use_case_id), int(use_case_id))
        row = s.exec(
            select(UseCaseCanvas).where(
                UseCaseCanvas.use_case_id == int(use_case_id), UseCaseCanvas.version == int(version)
            )
        ).first()
        if row is None:
            raise ValidationError(f"the canvas of use case {use_case_id} has no version {version}")
        return _public(row, int(use_case_id))


def canvas_history(db: Database, *, use_case_id: int) -> list[CanvasPublic]:
    """Every saved version, newest first."""
    with db.read() as s:
        rows = s.exec(
            select(UseCaseCanvas)
            .where(UseCaseCanvas.use_case_id == int(use_case_id))
            .order_by(col(UseCaseCanvas.version).desc())
        ).all()
        return [_public(r, int(use_case_id)) for r in rows]


def problem_settings(db: Database, use_case_id: int | None) -> tuple[str, str]:
    """(problem type, positive class) the canvas sets ("" when not stated): training, serving, monitoring."""
    if use_case_id is None:
        return "", ""
    with db.read() as s:
        row = _latest(s, int(use_case_id))
        return (row.problem_type, row.positive_class) if row is not None else ("", "")


def _clean_fields(fields: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (fields or {}).items():
        if k not in FIELD_KEYS:
            raise ValidationError(f"unknown canvas field {k!r}; use one of: {', '.join(FIELD_KEYS)}")
        text = ("" if v is None else str(v)).strip()
        if len(text) > MAX_FIELD:
            raise ValidationError(f"{FIELD_LABELS[k]} is {len(text)} characters long; keep it under {MAX_FIELD}")
        if text:
            out[k] = text
    return out


def validate(
    fields: Mapping[str, Any] | None, problem_type: str = "", positive_class: str = ""
) -> tuple[dict[str, str], str, str]:
    """The cleaned (fields, problem type, positive class) of a canvas form; ValidationError when wrong."""
    clean = _clean_fields(fields)
    pt = (problem_type or "").strip().lower()
    if pt and pt not in value_math.PROBLEM_TYPES:
        raise ValidationError(
            f"unknown problem type {problem_type!r}; use one of: {', '.join(value_math.PROBLEM_TYPES)}"
        )
    pos = (positive_class or "").strip()
    if len(pos) > 64:
        raise ValidationError("the positive class is longer than 64 characters; use the label as the data has it")
    if pos and pt == "regression":
        raise ValidationError("a regression use case has no positive class; leave it empty")
    return clean, pt, pos


def first_version(
    s: Session, *, actor: Actor, uc: UseCase, fields: dict[str, str], problem_type: str, positive_class: str
) -> UseCaseCanvas | None:
    """Version 1 of a new use case's canvas, in the caller's unit of work (fields already `validate`d);
    None when the form was left empty."""
    if not fields and not problem_type and not positive_class:
        return None
    require(actor, "canvas.write")
    row = UseCaseCanvas(
        use_case_id=uc.id,
        version=1,
        fields=fields,
        problem_type=problem_type,
        positive_class=positive_class,
        created_by=actor.username,
    )
    s.add(row)
    s.flush()
    audit.record(
        s,
        actor=actor,
        action="canvas.save",
        entity_type="use_case",
        entity_id=uc.id,
        summary=f"saved the ML canvas of {uc.title!r} (version 1) with the new use case",
        before={"version": 0, "problem_type": "", "fields": {}},
        after={"version": 1, "problem_type": problem_type, "positive_class": positive_class, "fields": fields},
    )
    return row


def save_canvas(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    fields: Mapping[str, Any] | None = None,
    problem_type: str = "",
    positive_class: str = "",
    expected_version: int | None = None,
) -> CanvasPublic:
    """Save the canvas as a new version (nothing changes when it is the same). `expected_version`: the
    version the form was loaded with; a newer one saved meanwhile is a Conflict (reload and merge)."""
    require(actor, "canvas.write")
    clean, pt, pos = validate(fields, problem_type, positive_class)
    with db.unit_of_work() as s:
        uc = get_or_404(s, UseCase, int(use_case_id), "use case", "open one from the portfolio")
        cur = _latest(s, uc.id)
        current = cur.version if cur is not None else 0
        if expected_version is not None and int(expected_version) != current:
            raise Conflict(
                f"the canvas was saved by {cur.created_by if cur else 'someone'} meanwhile (version {current}, "
                f"you edited version {expected_version}); reload the page and re-apply your changes"
            )
        if cur is not None and (cur.fields or {}) == clean and cur.problem_type == pt and cur.positive_class == pos:
            return _public(cur, uc.id)
        n = s.exec(select(func.count()).select_from(UseCaseCanvas).where(UseCaseCanvas.use_case_id == uc.id)).one()
        row = UseCaseCanvas(
            use_case_id=uc.id,
            version=max(current, int(n)) + 1,
            fields=clean,
            problem_type=pt,
            positive_class=pos,
            created_by=actor.username,
        )
        s.add(row)
        s.flush()
        changed = (
            sorted(
                k
                for k in set(clean) | set((cur.fields if cur else {}) or {})
                if clean.get(k) != (cur.fields or {}).get(k)
            )
            if cur is not None
            else sorted(clean)
        )
        audit.record(
            s,
            actor=actor,
            action="canvas.save",
            entity_type="use_case",
            entity_id=uc.id,
            summary=f"saved the ML canvas of {uc.title!r} (version {row.version})"
            + (f": {', '.join(FIELD_LABELS[k].lower() for k in changed)}" if changed else ""),
            before={
                "version": current,
                "problem_type": cur.problem_type if cur else "",
                "fields": cur.fields if cur else {},
            },
            after={"version": row.version, "problem_type": pt, "positive_class": pos, "fields": clean},
        )
        return _public(row, uc.id)


def suggested_kpis(db: Database, *, use_case_id: int) -> list[dict[str, Any]]:
    """Model KPIs that fit the use case's value model (its stated costs), minus the metrics it already has."""
    from . import usecases, value

    vm = value.get_value_model(db, use_case_id=use_case_id)
    if vm is None:
        return []
    have = {k.metric for k in usecases.model_kpis(db, use_case_id)}
    return [k for k in value_math.suggest_kpis(value.to_math(vm)) if k["metric"] not in have]
