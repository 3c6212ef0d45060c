"""A model version's sign-off evidence as business reads it (issue 15, problem 4): a KPI table (target,
value, met or missed), the training data with its validation status, and links to the model card, the
data and the run — instead of the raw JSON."""

from __future__ import annotations

import streamlit as st

from mlops_core.errors import DomainError
from mlops_core.models.collab import SignoffPublic
from mlops_core.services import deployments
from mlops_core.textsafety import plain_markdown

from . import badges, session


def model_version_evidence(so: SignoffPublic) -> list[str]:
    """Render the evidence; returns the shortfalls (sentences) the approver must confirm."""
    try:
        review = deployments.signoff_review(session.db(), so)
    except DomainError as exc:
        st.caption(f"The evidence cannot be read: {plain_markdown(str(exc))}")
        return []
    where = f" for {', '.join(review.deployments)}" if review.deployments else ""
    st.markdown(
        f"**{plain_markdown(review.model_version)}**{plain_markdown(where)}"
        + (f" · KPIs of “{plain_markdown(review.use_case)}”" if review.use_case else "")
    )
    if review.kpis:
        st.dataframe(
            [
                {
                    "KPI": k.metric,
                    "target": f"{k.direction} {k.target:g}",
                    "value": "missing" if k.value is None else f"{k.value:.3f}",
                    "result": badges.label(k.status),
                }
                for k in review.kpis
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("The use case has no model KPIs to check this model against.")
    if review.dataset:
        st.markdown(
            f"Training data **{plain_markdown(review.dataset)}**: {badges.badge(review.dataset_status or 'unknown')}"
        )
    links = st.columns(3)
    links[0].page_link(
        "pages/models.py",
        label="Model card",
        icon=":material/description:",
        query_params={"id": str(review.model_version_id)},
    )
    if review.dataset_version_id is not None and review.dataset_id is not None:
        links[1].page_link(
            "pages/dataset.py",
            label=f"Data: {plain_markdown(review.dataset)}",
            icon=":material/table:",
            query_params={"id": str(review.dataset_id), "v": str(review.dataset_version_id)},
        )
    if review.run_id:
        links[2].page_link(
            "pages/run.py",
            label=f"Run {review.run_id}",
            icon=":material/science:",
            query_params={"id": str(review.run_id)},
        )
    return review.shortfalls
