"""One logged prediction next to the training data (issue 17): for a request id of a deployment, each input
with its place in the model's training data (the value's percentile for a numeric column, the category's
share for a categorical one) and the model's prediction and score.

The training data is read once per model version into a `ReferenceSummary` (sorted values of each numeric
column, category shares of the others): placing a prediction's inputs in it costs microseconds, so a caller
that keeps the summary (the monitoring page caches it per model version) shows the next prediction without
reading the dataset again."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from sqlmodel import select

from ...db import Database
from ...errors import NotFound
from ...models.deployments import Prediction
from ...models.estimates import InputPlacePublic, PredictionViewPublic
from ...models.experiments import ModelVersion
from .._common import deployment_by_name

MAX_REFERENCE_ROWS = 200_000  # percentiles and shares of a larger dataset are read from a sample this size


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class ReferenceSummary:
    """What the single prediction view needs of a training dataset (picklable, small)."""

    rows: int = 0
    note: str = ""
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # column -> its non-missing values, sorted
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> category -> share (0..1)


def summarize_reference(frame: pd.DataFrame | None, note: str = "") -> ReferenceSummary:
    """The summary of a reference frame (pure)."""
    out = ReferenceSummary(note=note)
    if frame is None:
        return out
    out.rows = len(frame)
    for column in frame.columns:
        ref = frame[column].dropna()
        if ref.empty:
            continue
        if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
            out.numeric[str(column)] = np.sort(ref.to_numpy(dtype=float))
        else:
            # value_counts sorts by count, most common first: the dict keeps that order
            out.shares[str(column)] = {
                str(k): float(v) for k, v in ref.astype(str).value_counts(normalize=True).items()
            }
    return out


def place_inputs(inputs: dict[str, Any], reference: ReferenceSummary | pd.DataFrame | None) -> list[InputPlacePublic]:
    """Each input's place in the reference (a summary, or a frame summarized here; pure). Columns the reference
    lacks, and missing values, get no figures."""
    ref = reference if isinstance(reference, ReferenceSummary) else summarize_reference(reference)
    out = []
    for column, value in (inputs or {}).items():
        x = _number(value)
        vals = ref.numeric.get(column)
        if value is not None and vals is not None and x is not None:
            out.append(
                InputPlacePublic(
                    column=column,
                    value=value,
                    kind="numeric",
                    percentile=round(100.0 * float(np.searchsorted(vals, x, side="right")) / len(vals), 1),
                    reference_median=float(vals[(len(vals) - 1) // 2] + vals[len(vals) // 2]) / 2,  # sorted
                )
            )
        elif value is not None and column in ref.shares:
            shares = ref.shares[column]
            out.append(
                InputPlacePublic(
                    column=column,
                    value=value,
                    kind="categorical",
                    share=round(100.0 * shares.get(str(value), 0.0), 1),
                    reference_top=next(iter(shares)),
                )
            )
        else:
            # no value, a column the training data lacks, or a non-number in a numeric column
            out.append(InputPlacePublic(column=column, value=value, kind="missing"))
    return out


def reference_summary(db: Database, model_version_id: int | None) -> ReferenceSummary:
    """The summary of a model version's training dataset (its input columns). Never raises: `note` says what
    the comparison is made with, or why there is none."""
    from .. import datasets

    if model_version_id is None:
        return summarize_reference(None, "the prediction names no model version to compare with")
    with db.read() as s:
        mv = s.get(ModelVersion, model_version_id)
        if mv is None:
            return summarize_reference(None, f"model version {model_version_id} no longer exists")
        dv, target = mv.dataset_version_id, mv.target
        schema = [c.get("name") for c in (mv.input_schema or []) if c.get("name")]
    if dv is None:
        return summarize_reference(None, "the model version has no training dataset to compare with")
    try:
        frame = datasets.load_frame(db, dv)
    except Exception as exc:  # noqa: BLE001 - the prediction still shows without the comparison
        return summarize_reference(None, f"the training dataset could not be read: {exc}"[:300])
    cols = [c for c in schema if c in frame.columns] or [c for c in frame.columns if c != target]
    note = "the model's training dataset"
    if len(frame) > MAX_REFERENCE_ROWS:
        note += f" (a sample of {MAX_REFERENCE_ROWS:,} of its {len(frame):,} rows)"
        frame = frame.sample(MAX_REFERENCE_ROWS, random_state=0)
    return summarize_reference(frame[cols], note)


def prediction_view(
    db: Database,
    *,
    deployment_name: str,
    request_id: str,
    reference: Callable[[int | None], ReferenceSummary] | None = None,
) -> PredictionViewPublic:
    """A logged prediction of `deployment_name` with its inputs placed in the model's training data.

    `reference(model_version_id)` gives the training data's summary (default: `reference_summary`, which
    reads the dataset); a caller showing many predictions passes a cached one."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        p = s.exec(
            select(Prediction).where(Prediction.request_id == request_id, Prediction.deployment_id == dep.id)
        ).first()
        if p is None:
            raise NotFound(f"no prediction {request_id!r} in the log of {deployment_name}")
        view = PredictionViewPublic(
            request_id=p.request_id,
            deployment_name=dep.name,
            model_version_id=p.model_version_id,
            prediction=p.prediction,
            score=p.score,
            label=p.label,
        )
        inputs = dict(p.inputs or {})
    summary = (reference or (lambda mv: reference_summary(db, mv)))(view.model_version_id)
    view.reference_rows = summary.rows
    view.reference_note = summary.note
    view.inputs = place_inputs(inputs, summary)
    return view
