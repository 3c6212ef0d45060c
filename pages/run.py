"""One run: status, params, metrics, KPI checks, plots, artifacts; reproduce, register, cancel; discussion."""

import plotly.graph_objects as go
import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, session
from hub_ui.ci_origin import ci_origin_markdown
from hub_ui import run_metrics_ui as rm_ui
from hub_ui import value_ui
from mlops_core.errors import DomainError
from mlops_core.ml.algorithms import ALGORITHMS
from mlops_core.services import experiments, registry
from mlops_core.textsafety import plain_markdown as md_text

actor = session.require_actor()
db = session.db()
st.title("Run")

recent = experiments.list_runs(db, limit=200)
raw = st.query_params.get("id")
wanted = [int(raw)] if raw and raw.isdigit() else []
wanted += [int(st.session_state["run_id"])] if st.session_state.get("run_id") else []
if not recent.items and not wanted:
    st.info("There are no runs yet. Launch one on the Experiments page.")
    st.stop()
# Older runs linked from elsewhere (a model card, an alert) come first, then the 200 newest.
labels = {i: f"run {i}" for i in wanted}
labels.update({r.id: f"run {r.id} · {r.name} · {r.status}" for r in recent.items})
run_id = session.pick_id_from_query("Run", labels, key="run_pick", param="id", default=st.session_state.get("run_id"))
st.session_state["run_id"] = run_id

try:
    run = experiments.get_run(db, run_id)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

# Where a run came from, in words (the stored code is short: "ui", "sdk", ...).
SOURCE_WORDS = {
    "ui": "from the Hub UI",
    "sdk": "from the SDK",
    "mlflow": "from an MLflow client",
    "ci": "from CI",
    "api": "from the REST API",
    "retrain": "from a retraining proposal",
    "reproduce": "a reproduction",
}
alg = ALGORITHMS.get(run.algorithm)
alg_label = alg.label if alg else run.algorithm.replace("_", " ")
shown_name = run.name.replace(run.algorithm, alg_label) if run.algorithm else run.name
st.subheader(f"{badges.badge(run.status)} Run {run.id}: {md_text(shown_name, line_start=False)}")
st.caption(
    f"{run.status} · {alg_label} · {SOURCE_WORDS.get(run.source, 'from ' + run.source)} · by {run.created_by} · created {session.fmt_time(run.created_at)}"
    + (f" · {run.duration_seconds:.1f} s" if run.duration_seconds else "")
    + (f" · reproduction of run {run.reproduced_from_run_id}" if run.reproduced_from_run_id else "")
)
if ci_line := ci_origin_markdown(run.source, run.tags):
    st.caption(ci_line)
rm_ui.dataset_link(run, key="run_dataset")
rm_ui.notes_and_tags(run)


@st.fragment(run_every=2)
def live_status() -> None:
    r = experiments.get_run(db, run_id)
    if r.status in ("queued", "running"):
        with st.status(f"Run {r.id} is {r.status}", state="running", expanded=True):
            st.progress(min(max(r.progress, 0.0), 1.0), text=md_text(r.progress_message or r.status))
    elif r.status != run.status:
        st.rerun()


if run.status in ("queued", "running"):
    live_status()
if run.status == "failed" and run.error:
    st.error(md_text(run.error.strip().splitlines()[0]))
    with st.expander("Traceback"):
        st.code(run.error)

# --- actions ----------------------------------------------------------------------------------
a1, a2, a3 = st.columns(3)
if run.status in ("queued", "running") and session.may("run.cancel"):
    if a1.button("Cancel run", icon=":material/stop_circle:", key="run_cancel"):
        with session.service_call("Cancel requested: the run stops at its next check."):
            experiments.cancel_run(db, actor=actor, run_id=run.id)
if run.status == "finished" and session.may("run.start") and run.source not in experiments.CODE_SOURCES:
    if a2.button(
        "Reproduce",
        icon=":material/replay:",
        key="run_reproduce",
        help="re-run this exact configuration on the same dataset version and compare the metrics",
    ):
        with session.service_call():
            again = experiments.reproduce_run(db, actor=actor, run_id=run.id)
            st.success(f"Queued run {again.id} to reproduce run {run.id}; open it to see whether metrics match.")
if run.status == "finished" and run.model_artifact_key and session.may("model.register"):
    with a3.popover("Register as model", icon=":material/inventory_2:"):
        name = st.text_input(
            "Model name", value="churn-classifier" if "churn" in (run.target or "") else "", key="run_reg_name"
        )
        alias = st.selectbox("Alias", ["(none)", "challenger", "champion"], key="run_reg_alias")
        intended = st.text_area("Intended use", key="run_reg_use")
        limits = st.text_area("Limitations", key="run_reg_limits")
        if st.button("Register", type="primary", key="run_reg_go"):
            with session.service_call():
                mv = registry.register_model(
                    db,
                    actor=actor,
                    run_id=run.id,
                    name=name,
                    intended_use=intended,
                    limitations=limits,
                    alias=None if alias == "(none)" else alias,
                )
                st.success(f"Registered {mv.model_name} v{mv.version}.")

if run.reproduced_from_run_id:
    rep = experiments.reproduction_report(db, run.id)
    if rep.status == "match":
        st.success(f"Reproduced: every metric equals run {run.reproduced_from_run_id}'s.")
    elif rep.status == "mismatch":
        st.warning(f"Not reproduced: {len(rep.differences)} metric(s) differ from run {run.reproduced_from_run_id}.")
        st.dataframe(
            [{"metric": k, "original": a, "reproduction": b} for k, (a, b) in rep.differences.items()], hide_index=True
        )
    elif rep.status == "pending":
        st.info("Reproduction in progress; the comparison appears when it finishes.")
versions = registry.versions_of_run(db, run.id)
if versions:
    st.caption(
        "Registered as: "
        + ", ".join(
            f"{md_text(v.model_name, line_start=False)} v{v.version}"
            + (f" ({', '.join(v.aliases)})" if v.aliases else "")
            for v in versions
        )
    )

# --- metrics, KPIs, params -------------------------------------------------------------------------
tab_m, tab_p, tab_plots, tab_art, tab_talk = st.tabs(
    ["Metrics & KPIs", "Parameters", "Plots", "Artifacts", "Discussion"]
)
plots = experiments.plot_data(db, run.id)
rows_on = rm_ui.rows_phrase(plots, run)
with tab_m:
    if run.metrics:
        st.caption(rm_ui.size_line(plots, run))
        cols = st.columns(min(4, len(run.metrics)))
        for i, (k, v) in enumerate(sorted(run.metrics.items())):
            train_v = run.train_metrics.get(k)
            cols[i % len(cols)].metric(
                f"test {k} ({plots.n_test:,} rows)" if rows_on and plots else f"test {k}",
                f"{v:.4f}",
                help=f"train: {train_v:.4f}" if train_v is not None else None,
            )
        st.dataframe(
            rm_ui.metrics_table(
                run.metrics,
                plots,
                run,
                train=run.train_metrics,
                cv_std={k: run.all_metrics.get(f"cv_std_{k}") for k in run.metrics},
            ),
            hide_index=True,
        )
    else:
        st.caption("No metrics yet.")
    if run.status == "finished" and (run.task == "classification" or (plots and plots.task == "classification")):
        rm_ui.per_class_table(plots, key="run_per_class")
    checks = experiments.kpi_checks(db, run.id)
    st.markdown("**KPI check** (the use case's model KPIs)")
    if checks:
        st.dataframe(
            [
                {"KPI": c.kpi.label, "value": c.value, "status": c.status, "computed on": rows_on or "not recorded"}
                for c in checks
            ],
            hide_index=True,
        )
    else:
        st.caption("The use case has no model KPIs yet.")
    value_ui.run_value_line(run.id)  # expected value per period next to the KPIs (issue 20)
    history = experiments.metric_history(db, run.id)
    stepped = {k: v for k, v in history.items() if len(v) > 1 and not k.startswith(("fold_", "staged_"))}
    if stepped:
        key = st.selectbox("Metric by step", sorted(stepped), key="run_step_metric")
        fig = go.Figure(
            go.Scatter(x=[s for s, _ in stepped[key]], y=[v for _, v in stepped[key]], mode="lines+markers")
        )
        fig.update_layout(height=300, xaxis_title="step", yaxis_title=key, margin=dict(t=20))
        st.plotly_chart(fig, width="stretch")
    folds = {k[len("fold_") :]: v for k, v in history.items() if k.startswith("fold_")}
    if folds:
        st.markdown("**Per fold**")
        n = max(len(v) for v in folds.values())
        st.dataframe(
            [{"fold": i + 1, **{k: (v[i][1] if i < len(v) else None) for k, v in folds.items()}} for i in range(n)],
            hide_index=True,
        )

with tab_p:
    st.dataframe([{"parameter": k, "value": str(v)} for k, v in sorted(run.params.items())], hide_index=True)
    st.markdown("**Reproducibility**")
    st.json(
        {
            "dataset_version_id": run.dataset_version_id,
            "dataset_hash": run.dataset_hash,
            "seed": run.seed,
            "code_version": run.code_version,
            "package_versions": run.package_versions,
            "config": run.config,
            "tags": run.tags,
        },
        expanded=False,
    )
    if run.input_schema:
        st.markdown("**Input schema**")
        st.dataframe(run.input_schema, hide_index=True)

with tab_plots:
    if plots is None:
        st.caption("No plots for this run (runs logged from code carry only what they logged).")
    if plots and plots.confusion_matrix:
        cm = plots.confusion_matrix
        fig = go.Figure(
            go.Heatmap(
                z=cm.matrix, x=cm.labels, y=cm.labels, text=cm.matrix, texttemplate="%{text}", colorscale="Blues"
            )
        )
        fig.update_layout(title="Confusion matrix", xaxis_title="predicted", yaxis_title="actual", height=380)
        st.plotly_chart(fig, width="stretch")
    rm_ui.curves(plots, run, key="run_curves")
    if plots and plots.residuals:
        fig = go.Figure(go.Scatter(x=plots.residuals.predicted, y=plots.residuals.residual, mode="markers"))
        fig.update_layout(title="Residuals", xaxis_title="predicted", yaxis_title="actual − predicted", height=350)
        st.plotly_chart(fig, width="stretch")
    if plots and plots.staged:
        stg = plots.staged
        fig = go.Figure(
            [go.Scatter(x=stg.stage, y=stg.train, name="train"), go.Scatter(x=stg.stage, y=stg.test, name="test")]
        )
        fig.update_layout(title=f"{stg.metric} by boosting stage", xaxis_title="stage", height=350)
        st.plotly_chart(fig, width="stretch")
    if plots and plots.permutation_importance:
        pi = plots.permutation_importance[:25][::-1]
        fig = go.Figure(
            go.Bar(
                x=[f.importance for f in pi],
                y=[f.feature for f in pi],
                orientation="h",
                error_x=dict(type="data", array=[f.std or 0 for f in pi]),
            )
        )
        fig.update_layout(
            title="Permutation importance on the test split (score drop when a column is shuffled)",
            xaxis_title="score drop",
            height=max(300, 22 * len(pi)),
        )
        st.plotly_chart(fig, width="stretch")
    if plots and plots.feature_importance:
        fi = plots.feature_importance[::-1]
        fig = go.Figure(go.Bar(x=[f.importance for f in fi], y=[f.feature for f in fi], orientation="h"))
        fig.update_layout(title="Feature importance", xaxis_title="importance", height=max(300, 22 * len(fi)))
        st.plotly_chart(fig, width="stretch")
    if plots and plots.search_results:
        st.markdown("**Hyperparameter search** (mean validation score per candidate)")
        st.dataframe(
            [
                {**r.params, "score": r.score, **({"seconds": r.seconds} if r.seconds is not None else {})}
                for r in plots.search_results
            ],
            hide_index=True,
        )

with tab_art:
    arts = experiments.list_artifacts(db, run.id)
    if not arts:
        st.caption("No artifacts.")
    for a in arts:
        c1, c2 = st.columns([3, 1])
        c1.write(f"**{md_text(a.name)}** · {a.kind} · {a.size_bytes:,} bytes")
        if c2.button("Prepare download", key=f"run_art_{a.id}"):
            with session.service_call():
                fname, data = experiments.artifact_bytes(db, artifact_id=a.id)
                c2.download_button("Download", data, file_name=fname, key=f"run_dl_{a.id}")

with tab_talk:
    collab_ui.discussion("run", run.id)
