"""One logged prediction next to the training data, on the deployment monitoring page (issue 17).

`render(db, deployment_name)`: pick a request id from the recent prediction log; its inputs with their
percentile (numeric) or category share (categorical) in the model's training data, and the model's score.
The training data's summary is cached per model version (immutable, like its dataset version), so picking
another prediction does not read the dataset again.
"""

from __future__ import annotations

import streamlit as st

from mlops_core.services import predictions
from mlops_core.services.monitoring.prediction_view import ReferenceSummary, prediction_view, reference_summary
from mlops_core.textsafety import plain_markdown


@st.cache_data(max_entries=16, show_spinner=False)
def _reference(db_url: str, model_version_id: int | None, _db) -> ReferenceSummary:
    """The training data's summary of a model version (keyed by the database and the version id)."""
    return reference_summary(_db, model_version_id)


def _place(i) -> str:
    if i.kind == "numeric":
        return f"percentile {i.percentile:g} (training median {i.reference_median:.3g})"
    if i.kind == "categorical":
        return f"{i.share:g}% of training rows (most common: {i.reference_top})"
    return "no value" if i.value is None else "not in the training data"


def render(db, deployment_name: str) -> None:
    st.markdown("**One prediction** — a logged request next to the model's training data")
    recent = [p for p in predictions.recent_predictions(db, deployment_name=deployment_name, limit=50)]
    if not recent:
        st.caption("No logged predictions yet.")
        return
    rid = st.selectbox("Request id", [p.request_id for p in recent], key="pv_request")
    view = prediction_view(
        db,
        deployment_name=deployment_name,
        request_id=rid,
        reference=lambda mv: _reference(str(db.url), mv, db),
    )
    c = st.columns(3)
    c[0].metric("Prediction", str(view.prediction))
    c[1].metric("Score", "—" if view.score is None else f"{view.score:.3f}")
    c[2].metric("Label", "—" if view.label is None else str(view.label))
    st.caption(f"Compared with {plain_markdown(view.reference_note)} ({view.reference_rows:,} rows).")
    st.dataframe(
        [{"column": i.column, "value": str(i.value), "in the training data": _place(i)} for i in view.inputs],
        hide_index=True,
    )
