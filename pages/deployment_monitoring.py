"""One deployment's monitoring: drift over time per column, per-column detail, the evidently report on
demand, performance vs KPIs with label coverage and delay, health charts, the monitor's settings, and the
deployment's SLOs and alert routing."""

import time
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly import colors as plotly_colors
import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, drift_format, estimates_ui, ops_settings_ui, prediction_view_ui
from hub_ui.axes import category_axis, time_axis
from hub_ui import session
from mlops_core import jobs
from mlops_core.errors import DomainError
from mlops_core.services import monitoring
from mlops_core.textsafety import plain_markdown

# Figures are built with graph_objects and their layout passed to the constructor: plotly express, or a
# later update_layout(), costs several times the CPU for the same figure, on every render.
MARGIN = dict(l=10, r=10, t=30, b=10)
MARGIN_TITLED = dict(l=10, r=10, t=40, b=10)
# 24 colours that tell lines apart (plotly's default cycle has 10); beyond 24 the lines are dotted
DISTINCT_COLOURS = plotly_colors.qualitative.Dark24
DRIFTED, NOT_DRIFTED = "#c62828", "#2e7d32"

actor = session.require_actor()
db = session.db()
st.title("Deployment monitoring")

status = monitoring.overview(db)
names = [r.deployment for r in status]
if not names:
    st.info("No deployment yet: deploy a model first.")
    st.stop()
name = session.pick_from_query("Deployment", names, key="dm_pick", param="deployment")
collab_ui.flash("dm")


@st.fragment(run_every=1.0)
def follow_check(job_id: int) -> None:
    """Polls the queued check; when it ends, reruns the whole page once so the new check shows at once
    (before, the page kept saying "not checked yet" until another deployment was picked)."""
    job = jobs.get_job(db, job_id)
    if not job.is_final:
        with st.status(f"Check queued (job {job_id}): {job.progress_message or job.status}"):
            st.progress(job.progress)
        return
    st.session_state["dm_run_seen"] = job_id
    st.rerun(scope="app")


top = st.columns([3, 1])
with top[1]:
    if session.may("monitor.run"):
        if st.button("Run a check now", icon=":material/play_arrow:", key="dm_run"):
            with session.service_call():
                job_id = monitoring.enqueue_monitor_run(db, actor=actor, deployment_name=name)
                st.session_state["dm_run_job"] = job_id
                st.session_state["dm_run_for"] = name
        job_id = st.session_state.get("dm_run_job")
        if job_id and st.session_state.get("dm_run_for") == name:
            job = jobs.get_job(db, job_id)
            if job.is_final and st.session_state.get("dm_run_seen") == job_id:
                st.caption(f"Check job {job_id}: {badges.badge(job.status)} {plain_markdown(job.error or '')}")
            else:
                follow_check(job_id)

# Read after the job above: a check that just finished is on this very render.
checks = monitoring.list_checks(db, deployment_name=name, limit=200)
monitors = monitoring.list_monitors(db, deployment_name=name)

if not checks:
    with top[0]:
        st.info(
            f"{name} has not been checked yet. A check runs on the monitor's schedule"
            + (" — or run one now." if session.may("monitor.run") else ".")
        )
else:
    last = checks[-1]
    with top[0]:
        st.caption(
            f"Latest check #{last.id} at {session.fmt_time(last.started_at)} over {last.n_rows:,} predictions "
            f"({session.fmt_time(last.window_start)} – {session.fmt_time(last.window_end)}); status "
            f"**{last.status}**{': ' + plain_markdown(last.error) if last.error else ''}"
        )
    m = st.columns(5)
    m[0].metric(
        "Dataset drift",
        "—" if last.dataset_drifted is None else ("drifted" if last.dataset_drifted else "no drift"),
        None if last.drift_share is None else f"{last.n_drifted_columns} of {last.n_columns} columns",
        delta_color="off",
    )
    est_rows = monitoring.list_estimates(db, deployment_name=name, limit=1)
    kpi_word = estimates_ui.kpi_light(last.kpi_status, est_rows[-1].kpi_status if est_rows else None)
    status_row = next((r for r in monitoring.overview(db) if r.deployment == name), None)
    kpi_value, _, kpi_note = badges.kpi_words(kpi_word, status_row.segments_missed if status_row else 0).partition("; ")
    m[1].metric("KPIs", kpi_value, kpi_note or None, delta_color="off", delta_arrow="off")
    m[2].metric(
        "Label coverage",
        "—" if last.label_coverage is None else f"{last.label_coverage:.0%}",
        None if last.n_unlabelled is None else f"{last.n_unlabelled:,} without label",
        delta_color="off",
    )
    er = last.health.error_rate
    m[3].metric("Error rate", "—" if er is None else f"{er:.1%}")
    p95 = last.health.latency_p95_ms
    m[4].metric("Latency p95", "—" if p95 is None else f"{p95:.0f} ms")

tab_drift, tab_report, tab_perf, tab_est, tab_health, tab_settings, tab_ops, tab_talk = st.tabs(
    [
        "Drift",
        "Evidently report",
        "Performance & labels",
        "Estimated & segments",
        "Health",
        "Monitor settings",
        "SLOs & alert routing",
        "Discussion",
    ]
)

with tab_ops:  # issue 15: objectives the health check uses, and who hears of which alerts
    ops_settings_ui.render(db, actor, name)

with tab_est:
    estimates_ui.render(db, name)
    st.divider()
    prediction_view_ui.render(db, name)

with tab_drift:
    history = monitoring.drift_history(db, deployment_name=name)
    if not history:
        st.caption("No drift scores yet: they appear after the first check with enough predictions.")
    else:
        frame = pd.DataFrame([h.model_dump() for h in history])
        st.markdown(
            "**Drift over time per column.** Scores are stored by each check, nothing is recomputed. "
            "p-value methods (ks, chisquare, z) drift *below* their threshold, distances (wasserstein, "
            "jensenshannon) *above* it."
        )
        # one colour per series: plotly's 10-colour default repeats (the 11th line took the 1st's colour)
        palette = DISTINCT_COLOURS
        fig = go.Figure(
            [
                go.Scatter(
                    x=part["at"],
                    y=part["score"],
                    name=str(column),
                    mode="lines+markers",
                    line=dict(color=palette[i % len(palette)], dash="solid" if i < len(palette) else "dot"),
                    marker=dict(color=palette[i % len(palette)]),
                    customdata=part[["method", "threshold", "drifted", "check_id"]].to_numpy(),
                    hovertemplate=(
                        f"<b>{column}</b><br>%{{x}}<br>score %{{y:.4g}} (%{{customdata[0]}}, threshold "
                        "%{customdata[1]:.4g})<br>drifted %{customdata[2]} · check #%{customdata[3]}<extra></extra>"
                    ),
                )
                for i, (column, part) in enumerate(frame.groupby("column", sort=False))
            ],
            layout=dict(
                height=380,
                margin=MARGIN,
                xaxis=time_axis(frame["at"], "window end"),
                yaxis=dict(title="drift score"),
                legend=dict(title=dict(text="column")),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_drift_chart")
        heat = frame.pivot_table(index="column", columns="check_id", values="drifted", aggfunc="max").astype(float)
        fig2 = go.Figure(
            [
                go.Heatmap(
                    z=heat.values,
                    x=[f"#{c}" for c in heat.columns],
                    y=list(heat.index),
                    colorscale=[[0, NOT_DRIFTED], [1, DRIFTED]],
                    zmin=0,
                    zmax=1,
                    showscale=False,
                    showlegend=False,
                ),
                # the legend: one square per colour (a heatmap has no legend entries of its own)
                *(
                    go.Scatter(
                        x=[None],
                        y=[None],
                        mode="markers",
                        marker=dict(symbol="square", size=12, color=colour),
                        name=word,
                        showlegend=True,
                    )
                    for word, colour in (("drifted", DRIFTED), ("not drifted", NOT_DRIFTED))
                ),
            ],
            layout=dict(
                height=90 + 28 * len(heat.index),
                margin=dict(l=10, r=10, t=60, b=10),
                title="Drift per column and check",
                xaxis=category_axis(),
                yaxis=category_axis(),
                legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
            ),
        )
        st.plotly_chart(fig2, width="stretch", key="dm_drift_heat")
    if checks:
        ids = [c.id for c in checks if c.drift.columns]
        if ids:
            wanted = st.query_params.get("check")
            default = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else ids[-1]
            chosen = st.selectbox(
                "Per-column detail of check",
                ids[::-1],
                index=ids[::-1].index(default),
                format_func=lambda i: f"#{i}",
                key="dm_check",
            )
            c = next(x for x in checks if x.id == chosen)
            by_column = list(c.drift.columns.items())
            if c.drift.prediction:
                by_column.append(("(prediction)", c.drift.prediction))
            st.dataframe([drift_format.column_row(col, v) for col, v in by_column], hide_index=True, width="stretch")
            st.session_state["dm_report_check"] = chosen

with tab_report:
    chosen = st.session_state.get("dm_report_check")
    if not chosen:
        st.caption("The evidently report needs a check with a drift result.")
    else:
        st.caption(
            f"evidently's full data-drift report of check #{chosen}: rendered by a worker the first time "
            "someone opens it, then stored and shown instantly."
        )
        html = monitoring.report_html(db, check_id=chosen)
        job_key = f"dm_report_job_{chosen}"
        if html is None:
            if st.button("Open evidently report", icon=":material/description:", key="dm_open_report"):
                try:
                    res = monitoring.request_report(db, actor=actor, check_id=chosen)
                    st.session_state[job_key] = res.job_id
                except DomainError as exc:
                    st.error(plain_markdown(str(exc)))
            job_id = st.session_state.get(job_key)
            if job_id:
                with st.status("Rendering the evidently report…", expanded=True) as box:
                    bar = st.progress(0.0)
                    for _ in range(240):  # up to ~2 minutes, then the user can come back
                        job = jobs.get_job(db, job_id)
                        bar.progress(max(0.05, job.progress), text=job.progress_message or job.status)
                        if job.is_final:
                            break
                        time.sleep(0.5)
                    if job.status == "finished":
                        box.update(label="Report ready", state="complete")
                        st.session_state.pop(job_key, None)
                        st.rerun()
                    elif job.is_final:
                        box.update(
                            label=f"Rendering failed: {plain_markdown(((job.error or '').strip().splitlines() or [''])[-1])}",
                            state="error",
                        )
                    else:
                        box.update(label="Still rendering: come back in a moment", state="running")
        if html is not None:
            st.download_button(
                "Download the report (HTML)",
                html,
                file_name=f"drift-report-check-{chosen}.html",
                mime="text/html",
                key="dm_dl_report",
            )
            # The report holds values from live traffic and runs evidently's scripts: it is shown in an iframe
            # sandboxed WITHOUT allow-same-origin, so its scripts run in an opaque origin and cannot reach
            # this app (its session, its pages). The wrapper itself has no script.
            # Evidently's layout clips what does not fit a narrow frame (its right columns were cut off, with no
            # way to scroll): the report is laid out at least 1000 px wide and scrolls inside its own frame; the
            # wrapper has no body margin around that frame.
            fit = "<style>html{overflow-x:auto !important}body{min-width:1000px}</style>"
            st.iframe(
                "<style>html,body{margin:0;padding:0;overflow:hidden}</style>"
                '<iframe sandbox="allow-scripts" referrerpolicy="no-referrer" title="evidently report" '
                'style="display:block;width:100%;height:880px;border:0;box-sizing:border-box" '
                f'srcdoc="{escape(html + fit, quote=True)}"></iframe>',
                height=880,
            )

with tab_perf:
    if not checks:
        st.caption("No checks yet.")
    else:
        perf = []
        for c in checks:
            row = {
                "at": c.window_end,
                "check": c.id,
                "labelled": c.performance.n_labelled,
                "coverage": c.label_coverage,
                "delay p50 (h)": None if c.label_delay_p50_s is None else c.label_delay_p50_s / 3600,
                "unlabelled": c.n_unlabelled,
            }
            row.update(c.performance.metrics)
            perf.append(row)
        pf = pd.DataFrame(perf)
        kpis = checks[-1].kpis
        if kpis:
            st.markdown("**Model KPIs on labelled predictions** (latest check)")
            st.dataframe(
                [
                    {
                        "KPI": k.name,
                        "metric": k.metric,
                        "target": f"{k.direction} {k.target:g}",
                        "value": None if k.value is None else round(k.value, 4),
                        "status": k.status,
                    }
                    for k in kpis
                ],
                hide_index=True,
                width="stretch",
            )
        metrics = sorted({k for c in checks for k in c.performance.metrics})
        if metrics:
            fig = go.Figure(
                [go.Scatter(x=pf["at"], y=pf.get(mname), mode="lines+markers", name=mname) for mname in metrics],
                layout=dict(
                    height=340, margin=MARGIN, title="metrics per check vs KPI targets", xaxis=time_axis(pf["at"])
                ),
            )
            for k in kpis:
                fig.add_hline(y=k.target, line_dash="dash", annotation_text=f"{k.name} target {k.target:g}")
            st.plotly_chart(fig, width="stretch", key="dm_perf_chart")
        else:
            st.caption(
                "No labelled predictions yet: performance appears once labels come back "
                "(POST /v1/deployments/{name}/feedback)."
            )
        st.markdown("**Label coverage and delay** — how many predictions still lack a label, and how late labels come.")
        fig = go.Figure(
            [
                go.Bar(x=pf["at"], y=pf["coverage"], name="coverage", yaxis="y"),
                go.Scatter(
                    x=pf["at"], y=pf["delay p50 (h)"], name="median delay (h)", yaxis="y2", mode="lines+markers"
                ),
            ],
            layout=dict(
                height=300,
                margin=MARGIN,
                xaxis=time_axis(pf["at"]),
                yaxis=dict(title="coverage", range=[0, 1], tickformat=".0%"),
                yaxis2=dict(title="hours", overlaying="y", side="right"),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_label_chart")

with tab_health:
    if checks:
        hf = pd.DataFrame(
            [
                {
                    "at": c.window_end,
                    "volume": c.health.volume,
                    "error rate": c.health.error_rate,
                    "p50": c.health.latency_p50_ms,
                    "p95": c.health.latency_p95_ms,
                    "p99": c.health.latency_p99_ms,
                }
                for c in checks
            ]
        )
        fig = go.Figure(
            [go.Scatter(x=hf["at"], y=hf[p], name=p, mode="lines+markers") for p in ("p50", "p95", "p99")],
            layout=dict(
                height=300,
                margin=MARGIN_TITLED,
                title="latency per check window (ms)",
                xaxis=time_axis(hf["at"], "window end"),
                yaxis=dict(title="ms"),
                legend=dict(title=dict(text="percentile")),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_lat_chart")
        fig = go.Figure(
            go.Bar(x=hf["at"], y=hf["volume"], name="volume"),
            layout=dict(
                height=260,
                margin=MARGIN_TITLED,
                title="predictions per check window",
                xaxis=time_axis(hf["at"], "window end"),
                yaxis=dict(title="predictions"),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_vol_chart")
    live = monitoring.live_health(db, deployment_name=name, hours=24, buckets=24)
    lf = pd.DataFrame([b.model_dump() for b in live])
    if lf["volume"].sum():
        fig = go.Figure(
            go.Bar(
                x=lf["start"],
                y=lf["volume"],
                name="requests",
                customdata=lf[["errors", "latency_p95_ms"]].to_numpy(),
                hovertemplate="%{x}<br>%{y} requests · %{customdata[0]} errors · "
                "p95 %{customdata[1]:.0f} ms<extra></extra>",
            ),
            layout=dict(
                height=260,
                margin=MARGIN_TITLED,
                title="last 24 hours: requests per hour",
                xaxis=dict(title="hour"),
                yaxis=dict(title="requests"),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_live_chart")
        # The client's mistakes (4xx: a missing key, a malformed record) apart from the service's failures.
        n = int(lf["volume"].sum())
        c4, c5 = int(lf["client_errors"].sum()), int(lf["server_errors"].sum())
        e1, e2 = st.columns(2)
        e1.metric("Server errors (5xx), 24 h", f"{c5 / n:.1%}", f"{c5:,} of {n:,} requests", delta_color="off")
        e2.metric("Client errors (4xx), 24 h", f"{c4 / n:.1%}", f"{c4:,} of {n:,} requests", delta_color="off")
        fig = go.Figure(
            [
                go.Scatter(
                    x=lf["start"],
                    y=lf["server_error_rate"],
                    name="server errors (5xx)",
                    mode="lines+markers",
                    line=dict(color="#c62828"),
                ),
                go.Scatter(
                    x=lf["start"],
                    y=lf["client_error_rate"],
                    name="client errors (4xx)",
                    mode="lines+markers",
                    line=dict(color="#ef6c00", dash="dot"),
                ),
            ],
            layout=dict(
                height=260,
                margin=MARGIN_TITLED,
                title="last 24 hours: error rate per hour, client vs server",
                xaxis=time_axis(lf["start"], "hour"),
                yaxis=dict(title="share of requests", tickformat=".0%", rangemode="tozero"),
            ),
        )
        st.plotly_chart(fig, width="stretch", key="dm_error_split_chart")
    else:
        st.caption("No requests in the last 24 hours.")

with tab_settings:
    mon = monitors[0] if monitors else None
    if mon is None:
        st.caption("No monitor yet: the first check creates the default one (last 5,000 predictions, hourly).")
    else:
        st.caption(
            f"Monitor “{plain_markdown(mon.name)}”, version {mon.version}, last changed {session.fmt_time(mon.updated_at)}."
        )
    can = session.may("monitor.configure")
    with st.form("dm_settings"):
        c1, c2, c3 = st.columns(3)
        kinds = ["last_n", "last_hours"]
        window_kind = c1.selectbox(
            "Window",
            kinds,
            index=kinds.index(mon.window_kind) if mon else 0,
            format_func=lambda k: {"last_n": "last N predictions", "last_hours": "last hours"}[k],
        )
        window_size = c2.number_input(
            "Window size (predictions or hours)", min_value=1, value=mon.window_size if mon else 5000
        )
        schedule_min = c3.number_input(
            "Run every (minutes, 0 = only on demand)",
            min_value=0,
            value=(mon.schedule_seconds or 0) // 60 if mon else 60,
        )
        c1, c2, c3 = st.columns(3)
        drift_share = c1.number_input(
            "Dataset drifts when this share of columns drifts",
            min_value=0.05,
            max_value=1.0,
            value=mon.drift_share if mon else 0.5,
            step=0.05,
        )
        max_err = c2.number_input(
            "Max error rate",
            min_value=0.0,
            max_value=1.0,
            value=(mon.max_error_rate if mon and mon.max_error_rate is not None else 0.05),
            step=0.01,
        )
        max_lat = c3.number_input(
            "Max p95 latency (ms)",
            min_value=1.0,
            value=(mon.max_latency_p95_ms if mon and mon.max_latency_p95_ms else 500.0),
        )
        policies = ["off", "propose", "automatic"]
        policy = st.radio(
            "Retraining on drift or a missed KPI",
            policies,
            horizontal=True,
            index=policies.index(mon.retraining_policy) if mon else 1,
            help="propose: ops approve a proposal; automatic: the run is queued at once",
        )
        overrides = st.text_input(
            "Per-column method overrides (column=method, comma separated)",
            value=", ".join(f"{k}={v}" for k, v in (mon.method_overrides if mon else {}).items()),
        )
        thresholds = st.text_input(
            "Per-column thresholds (column=value, comma separated)",
            value=", ".join(f"{k}={v:g}" for k, v in (mon.threshold_overrides if mon else {}).items()),
        )
        alert_on_estimated = st.checkbox(
            "Alert on an estimated KPI miss (while labels are too few)",
            value=bool(mon.alert_on_estimated) if mon else False,
        )
        segments_text = st.text_input(
            "Segment columns (column, or column:edge|edge for numeric bins; comma separated)",
            value=", ".join(
                k if not v else f"{k}:{'|'.join(f'{e:g}' for e in v)}"
                for k, v in ((mon.segments or {}) if mon else {}).items()
            ),
            help="e.g. region, age:30|50 — each segment gets its own volume, drift and KPIs",
        )
        min_importance = st.number_input(
            "Drift alerts need importance × drift of at least (0 = any drift)",
            min_value=0.0,
            value=float(mon.drift_min_importance or 0.0) if mon else 0.0,
            step=0.01,
            help="importance: the column's permutation importance at training; drift: its statistic over the threshold",
        )
        known = [col for c in checks for col in c.drift.columns] + list((mon.important_columns or []) if mon else [])
        important = st.multiselect(
            "Important columns (each alerts on its own drift, below the drift share too)",
            list(dict.fromkeys(known)),
            default=list((mon.important_columns or []) if mon else []),
            help="e.g. tenure: “tenure drifted: mean 13.0 → 15.5, 4.1 sd” even when few other columns drift",
        )
        save = st.form_submit_button("Save monitor", disabled=not can)
    if not can:
        st.caption("Only ops and admins change monitors.")
    estimates_ui.fairness_form(db, actor, name, can=session.may("deployment.deploy"))
    if save:

        def pairs(text):
            out = {}
            for part in [p.strip() for p in text.split(",") if p.strip()]:
                if "=" not in part:
                    raise DomainError(f"“{part}” is not column=value")
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
            return out

        with session.service_call():
            monitoring.configure_monitor(
                db,
                actor=actor,
                deployment_name=name,
                name=mon.name if mon else "default",
                window_kind=window_kind,
                window_size=int(window_size),
                schedule_seconds=int(schedule_min) * 60 or None,
                drift_share=float(drift_share),
                max_error_rate=float(max_err),
                max_latency_p95_ms=float(max_lat),
                retraining_policy=policy,
                method_overrides=pairs(overrides),
                threshold_overrides=pairs(thresholds),
                watch_kpis=mon.watch_kpis if mon else None,
                columns=mon.columns if mon else None,
                min_label_coverage=mon.min_label_coverage if mon else None,
                alert_on_estimated=alert_on_estimated,
                drift_min_importance=float(min_importance) or None,
                important_columns=important or None,
                segments={
                    k.strip(): [e for e in v.split("|") if e.strip()] or None
                    for k, _, v in (p.strip().partition(":") for p in segments_text.split(",") if p.strip())
                },
                expected_version=mon.version if mon else None,
            )
            collab_ui.flash("dm", "Monitor saved.")
            st.rerun()

with tab_talk:
    dep_id = next((c.deployment_id for c in checks), None) or (monitors[0].deployment_id if monitors else None)
    if dep_id is not None:
        collab_ui.discussion("deployment", dep_id, title="")
    else:
        st.caption("The discussion opens with the first check.")
