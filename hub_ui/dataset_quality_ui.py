"""Dataset page sections for data engineers (issue 15): quality across versions, the validation report as a
download, and a diff between schema versions. Each is one function the page calls in its own place."""

from __future__ import annotations

import streamlit as st

from hub_ui import axes, badges
from mlops_core.services import dataset_quality


def quality_trends(db, dataset_id: int, *, n_versions: int) -> None:
    """Rows, missing share and failed rules per version: a small chart and the figures as a table."""
    with st.expander("Quality across versions", expanded=False, icon=":material/trending_up:"):
        if n_versions < 2:
            st.caption("One version so far: trends start with the second.")
            return
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        points = dataset_quality.quality_trend(db, dataset_id)
        xs = [f"v{p.version}" for p in points]
        missing = [None if p.missing_share is None else round(100 * p.missing_share, 2) for p in points]
        fig = make_subplots(
            rows=1, cols=3, subplot_titles=("Rows", "Empty cells (%)", "Failed rules"), horizontal_spacing=0.08
        )
        fig.add_trace(go.Scatter(x=xs, y=[p.n_rows for p in points], mode="lines+markers", name="rows"), 1, 1)
        fig.add_trace(go.Scatter(x=xs, y=missing, mode="lines+markers", name="empty cells %"), 1, 2)
        fig.add_trace(
            go.Scatter(x=xs, y=[p.failed_rules for p in points], mode="lines+markers", name="failed rules"), 1, 3
        )
        fig.update_xaxes(**axes.category_axis())
        fig.update_yaxes(rangemode="tozero")
        fig.update_yaxes(dtick=1, row=1, col=3)
        fig.update_layout(height=290, showlegend=False, margin={"l": 10, "r": 10, "t": 70, "b": 10})
        # the subplot titles sit above the plots, clear of the chart's hover toolbar
        fig.update_annotations(yshift=8)
        st.plotly_chart(fig, key=f"quality_trend_{dataset_id}", width="stretch")
        st.dataframe(
            [
                {
                    "version": f"v{p.version}",
                    "status": badges.label(p.status),
                    "rows": p.n_rows,
                    "columns": p.n_cols,
                    "empty cells": "—" if p.missing_share is None else f"{p.missing_share:.1%}",
                    "failed rules": p.failed_rules,
                    "errors": p.errors,
                    "warnings": p.warnings,
                }
                for p in reversed(points)
            ],
            hide_index=True,
            width="stretch",
        )


def report_downloads(db, version) -> None:
    """The version's validation report as CSV or HTML (built when clicked), the sentences shown above."""
    c1, c2, _ = st.columns([1, 1, 3])
    stem = f"validation_{version.dataset_name}_v{version.version}"
    c1.download_button(
        "Report as CSV",
        data=lambda: dataset_quality.report_csv(db, version.id),
        file_name=f"{stem}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key=f"report_csv_{version.id}",
    )
    c2.download_button(
        "Report as HTML",
        data=lambda: dataset_quality.report_html(db, version.id),
        file_name=f"{stem}.html",
        mime="text/html",
        icon=":material/download:",
        on_click="ignore",
        key=f"report_html_{version.id}",
    )


def schema_diff_section(db, dataset_id: int, history) -> None:
    """Pick two versions of the declared schema: columns added, removed, retyped, or with changed rules."""
    if len(history) < 2:
        return
    st.markdown("**Compare schema versions**")
    numbers = [h.version for h in history]  # newest first
    c1, c2 = st.columns(2)
    old = c1.selectbox(
        "Schema from", numbers, index=1, key=f"schema_diff_from_{dataset_id}", format_func=lambda n: f"v{n}"
    )
    new = c2.selectbox("Schema to", numbers, index=0, key=f"schema_diff_to_{dataset_id}", format_func=lambda n: f"v{n}")
    changes = dataset_quality.schema_diff(db, dataset_id, old, new)
    if not changes:
        st.caption(f"Schema v{old} and v{new} declare the same columns and rules.")
        return
    st.dataframe(
        [{"column": c.column, "change": c.change, "detail": c.detail} for c in changes],
        hide_index=True,
        width="stretch",
    )
