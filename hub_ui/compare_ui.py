"""Compare versions' chart: one column picked from a select box, drawn as overlaid histograms (numeric) or
side-by-side category bars (categorical) of the two versions' samples."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from hub_ui.axes import category_axis
from mlops_core.services import dataset_compare

MARGIN = dict(l=60, r=20, t=40, b=60)


def render_distribution(db, from_version_id: int, to_version_id: int, columns: list[str]) -> None:
    if not columns:
        return
    column = st.selectbox("Distribution of column", columns, key="diff_column")
    dist = dataset_compare.column_distribution(
        db, from_version_id=from_version_id, to_version_id=to_version_id, column=column
    )
    if dist is None:
        st.caption("No stored sample for one of the versions: no chart.")
        return
    names = (f"{dist.from_ref} ({dist.rows[0]:,} rows)", f"{dist.to_ref} ({dist.rows[1]:,} rows)")
    if dist.kind == "num":
        widths = [b - a for a, b in zip(dist.edges[:-1], dist.edges[1:])]
        traces = [
            go.Bar(x=dist.labels, y=share, width=widths, name=name, opacity=0.55, hovertemplate="%{x:.4g}: %{y:.1%}")
            for name, share in zip(names, (dist.from_share, dist.to_share))
        ]
        layout = dict(barmode="overlay", xaxis=dict(title=column), bargap=0)
    else:
        traces = [
            go.Bar(x=[str(x) for x in dist.labels], y=share, name=name, hovertemplate="%{x}: %{y:.1%}")
            for name, share in zip(names, (dist.from_share, dist.to_share))
        ]
        layout = dict(barmode="group", xaxis=category_axis(column))
    fig = go.Figure(
        traces,
        layout=dict(
            height=340,
            margin=MARGIN,
            yaxis=dict(title="share of rows", tickformat=".0%"),
            legend=dict(orientation="h", y=1.12),
            **layout,
        ),
    )
    st.plotly_chart(fig, width="stretch", key="diff_dist_chart")
