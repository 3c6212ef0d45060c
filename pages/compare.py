"""Compare runs side by side: params and metrics (differences highlighted), parallel coordinates,
metric bars, and KPI lights."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from hub_ui import badges, session
from mlops_core.errors import DomainError
from mlops_core.services import experiments

actor = session.require_actor()
db = session.db()
st.title("Compare runs")

use_case_id = st.session_state.get("use_case_id")
recent = experiments.list_runs(db, use_case_id=use_case_id, status="finished", limit=200).items
if len(recent) < 2 and use_case_id is not None:
    # the use case last opened elsewhere has fewer than two finished runs: offer every use case's runs rather
    # than an empty picker ("No options to select")
    recent = experiments.list_runs(db, status="finished", limit=200).items
    if len(recent) >= 2:
        st.caption("The use case you last opened has fewer than two finished runs; these are runs of every use case.")
preset = [int(i) for i in st.session_state.get("compare_run_ids", [])]
options = list(dict.fromkeys(preset + [r.id for r in recent]))
labels = {r.id: f"run {r.id} · {r.name}" for r in recent}
if "cmp_pick" not in st.session_state or (preset and st.session_state.get("_cmp_preset") != preset):
    st.session_state["cmp_pick"] = preset or options[:2]
    st.session_state["_cmp_preset"] = preset
picked = st.multiselect("Runs to compare", options, format_func=lambda i: labels.get(i, f"run {i}"), key="cmp_pick")
if len(picked) < 2:
    st.info("Select at least two runs (here, or tick rows on the Experiments page and press Compare selected).")
    st.stop()
try:
    cmp = experiments.compare_runs(db, run_ids=picked)
except DomainError as exc:
    st.error(str(exc))
    st.stop()
st.session_state["compare_run_ids"] = picked

only_diff = st.toggle("Only rows that differ", key="cmp_only_diff")


def _styled(rows: list[dict], key: str, differing: list[str]):
    df = pd.DataFrame(rows).set_index(key)
    if only_diff:
        df = df.loc[[k for k in df.index if k in differing]]
    return df.style.apply(
        lambda row: ["background-color: #fff3cd" if row.name in differing else "" for _ in row], axis=1
    ).format(_cell)


def _cell(v) -> str:
    """A metric as 0.7744 (the Styler's default printed 0.774400), an integer as 80, nothing as blank."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) >= 1 else f"{v:.4g}"
    return str(v)


st.subheader("Parameters")
st.caption(f"{len(cmp.differing_params)} of {len(cmp.param_keys)} parameters differ (highlighted).")
st.dataframe(_styled(cmp.params_table(), "param", cmp.differing_params), width="stretch")
st.subheader("Metrics")
st.caption(
    f"{len(cmp.differing_metrics)} of {len(cmp.metric_keys)} metrics differ (highlighted); "
    "`train_` rows are on the training data."
)
st.dataframe(_styled(cmp.metrics_table(), "metric", cmp.differing_metrics), width="stretch")

st.subheader("KPI lights")
kpi_rows = []
for r in cmp.runs:
    row = {"run": f"run {r.id}"}
    for c in cmp.kpi.get(r.id, []):
        row[c.kpi.label] = ("—" if c.value is None else f"{c.value:.4f}") + f" · {badges.label(c.status)}"
    kpi_rows.append(row)
st.dataframe(kpi_rows, hide_index=True, width="stretch")

test_metrics = [k for k in cmp.metric_keys if not k.startswith(experiments.HIDDEN_PREFIXES)]
st.subheader("Metric by run")
if test_metrics:
    metric = st.selectbox(
        "Metric",
        test_metrics,
        index=test_metrics.index("roc_auc") if "roc_auc" in test_metrics else 0,
        key="cmp_metric",
    )
    fig = go.Figure(
        [
            go.Bar(x=[f"run {r.id}" for r in cmp.runs], y=[r.metrics.get(metric) for r in cmp.runs], name="test"),
            go.Bar(
                x=[f"run {r.id}" for r in cmp.runs], y=[r.train_metrics.get(metric) for r in cmp.runs], name="train"
            ),
        ]
    )
    fig.update_layout(barmode="group", height=350, yaxis_title=metric)
    st.plotly_chart(fig, width="stretch")

st.subheader("Parallel coordinates")


def _label(key: str) -> str:
    return key.replace("_", " ")


def _dimension(label: str, vals: list[float], *, unit_range: bool) -> dict:
    """One axis: labelled in words, integers as integers, and a range that hugs the data (a metric at 1.0
    on every run is not drawn on a 0.9–1.1 axis)."""
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.01, 0.01)
    lo, hi = lo - pad, hi + pad
    if unit_range:
        lo, hi = max(0.0, lo), min(1.0, hi)
    dim = dict(label=label, values=vals, range=[lo, hi])
    if all(float(v).is_integer() for v in vals):
        dim["tickformat"] = "d"
    return dim


dims = []
for k in cmp.param_keys:
    vals = [r.params.get(k) for r in cmp.runs]
    # A parameter only some runs' algorithms have cannot be an axis (a blank is not a value).
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals) and len(set(vals)) > 1:
        dims.append(_dimension(_label(k), [float(v) for v in vals], unit_range=False))
for k in test_metrics:
    vals = [r.metrics.get(k) for r in cmp.runs]
    if all(v is not None for v in vals):
        unit = all(0.0 <= v <= 1.0 for v in vals) and k not in ("log_loss", "rmse", "mae", "mse")
        dims.append(_dimension(_label(k), [float(v) for v in vals], unit_range=unit))
if len(dims) >= 2:
    color_key = "roc_auc" if "roc_auc" in test_metrics else (test_metrics[0] if test_metrics else None)
    color = [r.metrics.get(color_key, 0) for r in cmp.runs] if color_key else None
    fig = go.Figure(
        go.Parcoords(
            line=dict(
                color=color,
                colorscale="Viridis",
                showscale=bool(color_key),
                colorbar=dict(title=dict(text=_label(color_key or "")), thickness=14),
            ),
            dimensions=dims,
            labelangle=-20,
            labelside="top",
        ),
        # Room on the left for the first axis label and on top for the angled labels.
        layout=dict(height=440, margin=dict(l=80, r=90, t=90, b=30)),
    )
    st.plotly_chart(fig, width="stretch", key="cmp_parcoords")
    st.caption(f"One line per run, coloured by {_label(color_key or '')}.")
else:
    st.caption("Not enough numeric parameters and metrics shared by these runs for a parallel-coordinates plot.")
