"""Monitoring overview: every deployment with traffic lights for drift, KPIs and health (latest check)."""

import streamlit as st

from hub_ui import badges, session
from mlops_core.services import monitoring

actor = session.require_actor()
db = session.db()
st.title("Monitoring")
st.caption(
    "Each deployment's latest check: do live inputs still look like the training data (drift), does the "
    "model still meet its KPIs on labelled predictions, and is the service healthy. "
    f"{badges.badge('grey')} means no check yet or not enough data."
)

rows = monitoring.overview(db)
if not rows:
    st.info("No deployment yet. Deploy a model first; its monitor is set up on the deployment monitoring page.")
    st.stop()

open_alerts = sum(r.open_alerts for r in rows)
c1, c2, c3 = st.columns(3)
c1.metric("Deployments", len(rows))
c2.metric("Drifting now", sum(1 for r in rows if r.drift == "red"))
c3.metric("Open alerts", open_alerts)

table = [
    {
        "deployment": r.deployment,
        "environment": r.environment,
        "drift": badges.label(r.drift) + ("" if r.drift_share is None else f" · {r.drift_share:.0%} of columns"),
        "KPIs": f"{badges.label(r.kpis)} · {badges.kpi_words(r.kpi_status, r.segments_missed)}",
        "health": badges.label(r.health)
        + ("" if r.error_rate is None else f" · {r.error_rate:.1%} errors, p95 {r.latency_p95_ms or 0:.0f} ms"),
        "predictions in window": r.n_rows,
        "open alerts": r.open_alerts,
        "last check": session.fmt_time(r.last_check_at),
    }
    for r in rows
]
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Open a deployment")
cols = st.columns(min(4, len(rows)))
for i, r in enumerate(rows):
    with cols[i % len(cols)]:
        st.page_link(
            "pages/deployment_monitoring.py",
            label=f"{r.deployment} · drift {badges.badge(r.drift)} KPIs "
            f"{badges.badge(r.kpis)}"
            + (f" ({r.segments_missed} segments missed)" if r.segments_missed else "")
            + f" health {badges.badge(r.health)}",
            icon=":material/monitoring:",
            query_params={"deployment": r.deployment},
        )
st.page_link("pages/alerts.py", label=f"Alerts ({open_alerts} open)", icon=":material/notifications:")
