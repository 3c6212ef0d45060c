"""One logged prediction next to the training data (issue 17): for a request id of a deployment, each input
with its place in the model's training data (the value's percentile for a numeric column, the category's
share for a categorical one) and the model's prediction and score."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import select

from ...db import Database
from ...errors import NotFound
from ...models.deployments import Prediction
from ...models.estimates import InputPlacePublic, PredictionViewPublic
from ...models.experiments import ModelVersion
from .._common import deployment_by_name


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def place_inputs(inputs: dict[str, Any], frame: pd.DataFrame | None) -> list[InputPlacePublic]:
    """Each input's place in the reference frame (pure; columns missing from the frame get no figures)."""
    out = []
    for column, value in (inputs or {}).items():
        ref = frame[column].dropna() if frame is not None and column in frame.columns else None
        if value is None or ref is None or ref.empty:
            out.append(InputPlacePublic(column=column, value=value, kind="missing"))
            continue
        x = _number(value)
        if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref) and x is not None:
            vals = ref.to_numpy(dtype=float)
            out.append(
                InputPlacePublic(
                    column=column,
                    value=value,
                    kind="numeric",
                    percentile=round(100.0 * float(np.mean(vals <= x)), 1),
                    reference_median=float(np.median(vals)),
                )
            )
        else:
            counts = ref.astype(str).value_counts(normalize=True)
            out.append(
                InputPlacePublic(
                    column=column,
                    value=value,
                    kind="categorical",
                    share=round(100.0 * float(counts.get(str(value), 0.0)), 1),
                    reference_top=str(counts.index[0]),
                )
            )
    return out


def prediction_view(db: Database, *, deployment_name: str, request_id: str) -> PredictionViewPublic:
    """A logged prediction of `deployment_name` with its inputs placed in the model's training data."""
    from .. import datasets

    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        p = s.exec(
            select(Prediction).where(Prediction.request_id == request_id, Prediction.deployment_id == dep.id)
        ).first()
        if p is None:
            raise NotFound(f"no prediction {request_id!r} in the log of {deployment_name}")
        mv = s.get(ModelVersion, p.model_version_id) if p.model_version_id else None
        dv = mv.dataset_version_id if mv is not None else None
        view = PredictionViewPublic(
            request_id=p.request_id,
            deployment_name=dep.name,
            model_version_id=p.model_version_id,
            prediction=p.prediction,
            score=p.score,
            label=p.label,
        )
        inputs = dict(p.inputs or {})
    frame = None
    if dv is None:
        view.reference_note = "the model version has no training dataset to compare with"
    else:
        try:
            frame = datasets.load_frame(db, dv)
            cols = [c for c in inputs if c in frame.columns]
            frame = frame[cols]
            view.reference_rows = len(frame)
            view.reference_note = "the model's training dataset"
        except Exception as exc:  # noqa: BLE001 - the prediction still shows without the comparison
            frame = None
            view.reference_note = f"the training dataset could not be read: {exc}"[:300]
    view.inputs = place_inputs(inputs, frame)
    return view
