"""Estimated KPIs (CBPE/DLE), segments and importance-ranked drift on the deployment monitoring page (issue 17).

`render(db, deployment_name)` draws the tab; `kpi_light(realized, estimated)` is the KPI light word: the
realized verdict when labels allow one, else the estimated one ("estimated_missed" ...), marked as such.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from hub_ui import badges
from mlops_core.services import monitoring
from mlops_core.textsafety import plain_markdown

MARGIN = dict(l=10, r=10, t=40, b=10)


def kpi_light(realized: str | None, estimated: str | None) -> str:
    """The realized KPI status, or the estimated one (prefixed "estimated_") when no realized verdict exists."""
    if realized and realized != "unknown":
        return realized
    if estimated in ("met", "warning", "missed"):
        return f"estimated_{estimated}"
    return realized or "unknown"


def _fmt(v, digits: int = 3):
    return None if v is None else round(float(v), digits)


def render(db, deployment_name: str) -> None:
    rows = monitoring.list_estimates(db, deployment_name=deployment_name, limit=200)
    if not rows:
        st.caption(
            "No estimates yet: each check estimates the model's KPIs from the scores of its predictions, "
            "before labels arrive. They appear after the next check."
        )
        return
    last = rows[-1]
    st.markdown(
        "**Estimated performance** — from the model's scores, calibrated on its test split "
        f"({last.method.upper() or '—'}: confidence-based for classifiers, direct loss estimation for regressors). "
        "The band is the estimate ± 3 standard deviations; the line with dots is the realized value where "
        "labels exist."
    )
    if last.reason:
        st.warning(f"No estimate for the latest check: {plain_markdown(last.reason)}", icon=":material/info:")
    if last.kpis:
        st.dataframe(
            [
                {
                    "KPI": k["name"],
                    "target": f"{k['direction']} {k['target']:g}",
                    "estimated": _fmt(k.get("value")),
                    "band": "—" if k.get("lower") is None else f"{k['lower']:.3f} – {k['upper']:.3f}",
                    "estimated status": badges.label(kpi_light(None, k["status"]))
                    if k.get("value") is not None
                    else (k.get("reason") or "unknown"),
                    "realized": _fmt(k.get("realized")),
                    "realized status": badges.label(k.get("realized_status")),
                    "labels": k.get("n_labelled"),
                }
                for k in last.kpis
            ],
            hide_index=True,
            width="stretch",
        )
    metrics = sorted({m for r in rows for m, e in r.estimates.items() if e.get("value") is not None})
    if metrics:
        kpi_metrics = [k["metric"] for k in last.kpis if k["metric"] in metrics]
        default = kpi_metrics[0] if kpi_metrics else metrics[0]
        metric = st.selectbox("Metric", metrics, index=metrics.index(default), key="dm_est_metric")
        at = [r.window_end or r.started_at for r in rows]
        est = [r.estimates.get(metric, {}) for r in rows]
        up = [e.get("upper") for e in est]
        lo = [e.get("lower") for e in est]
        val = [e.get("value") for e in est]
        real = [r.realized.get(metric) if r.n_labelled else None for r in rows]
        fig = go.Figure(
            [
                go.Scatter(x=at, y=up, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"),
                go.Scatter(
                    x=at,
                    y=lo,
                    mode="lines",
                    line=dict(width=0),
                    fill="tonexty",
                    fillcolor="rgba(99,110,250,0.2)",
                    name="estimated band",
                ),
                go.Scatter(x=at, y=val, mode="lines", line=dict(dash="dot"), name=f"estimated {metric}"),
                go.Scatter(x=at, y=real, mode="lines+markers", name=f"realized {metric}", connectgaps=False),
            ],
            layout=dict(height=340, margin=MARGIN, title=f"{metric}: estimated band and realized value per check"),
        )
        for k in last.kpis:
            if k["metric"] == metric:
                fig.add_hline(y=k["target"], line_dash="dash", annotation_text=f"{k['name']} target {k['target']:g}")
        st.plotly_chart(fig, width="stretch", key="dm_est_chart")
    if last.segments:
        st.markdown("**Segments** (latest check) — worst first; KPIs on labels where enough, else estimated.")
        table = []
        for sg in last.segments:
            row = {
                "segment": f"{sg.get('column')}={sg.get('segment')}",
                "volume": sg.get("volume"),
                "labelled": sg.get("n_labelled"),
                "score drift": _fmt(sg.get("drift")),
                "status": sg.get("status") if sg.get("status") != "ok" else badges.label(sg.get("worst")),
            }
            for k in sg.get("kpis") or []:
                v = _fmt(k.get("value"))
                row[k["name"]] = None if v is None else f"{v}{' (est.)' if k.get('basis') == 'estimated' else ''}"
            table.append(row)
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    if last.drift_ranking:
        st.markdown("**Drift ranked by importance × drift** — drift in a feature that matters comes first.")
        st.dataframe(
            [
                {
                    "column": d["column"],
                    "importance": _fmt(d.get("importance"), 4),
                    "drift score": _fmt(d.get("score"), 4),
                    "drifted": d.get("drifted"),
                    "importance × drift": _fmt(d.get("rank_score"), 4),
                }
                for d in last.drift_ranking
            ],
            hide_index=True,
            width="stretch",
        )


def fairness_form(db, actor, deployment_name: str, *, can: bool) -> None:
    """The deployment's fairness gate: a column, a KPI metric and the largest gap allowed between its groups."""
    from hub_ui import session
    from mlops_core.services import fairness

    gate = fairness.get_fairness_gate(db, deployment_name=deployment_name)
    with st.expander("Fairness gate (checked before every deployment on this endpoint)", expanded=gate is not None):
        st.caption(
            "The largest gap of a metric between the groups of a column, on the model's test split, must stay "
            "within the tolerance (fairlearn's MetricFrame). Groups with too few rows are left out and named."
        )
        with st.form("dm_fairness"):
            c1, c2, c3 = st.columns(3)
            column = c1.text_input("Group column", value=gate.column if gate else "")
            metrics = list(fairness.METRICS)
            metric = c2.selectbox(
                "Fairness metric", metrics, index=metrics.index(gate.metric) if gate else metrics.index("recall")
            )
            tolerance = c3.number_input(
                "Largest gap allowed", min_value=0.0, value=float(gate.tolerance) if gate else 0.1, step=0.01
            )
            enabled = st.checkbox("Gate on", value=gate.enabled if gate else True)
            save = st.form_submit_button("Save fairness gate", disabled=not can)
        if save:
            with session.service_call("Fairness gate saved."):
                fairness.set_fairness_gate(
                    db,
                    actor=actor,
                    deployment_name=deployment_name,
                    column=column,
                    metric=metric,
                    tolerance=float(tolerance),
                    enabled=enabled,
                )


def card_lines(items) -> None:
    """A portfolio card's estimated KPI lights (services.monitoring.estimated_kpis_many), marked as estimates."""
    if not items:
        return
    st.markdown(
        "  \n".join(
            f"{badges.badge('estimated_' + e.status)} {plain_markdown(e.kpi_name)} ≈ {e.value:.2f} "
            f"(estimated, {e.status}; {plain_markdown(e.deployment_name)}, {e.n_labelled:,} labels)"
            for e in items
        )
    )
