"""Deployments overview: every endpoint with its environment, serving version, since when, traffic and
error rate (aggregated in SQL over the prediction log), and a form for data scientists to request one."""

import streamlit as st

from hub_ui import session
from mlops_core.services import deployments, registry

actor = session.require_actor()
db = session.db()
st.title("Deployments")

hours = (
    st.segmented_control(
        "Traffic over the last",
        [1, 24, 168],
        default=24,
        format_func=lambda h: {1: "hour", 24: "day", 168: "week"}[h],
        key="deps_hours",
    )
    or 24
)
rows = deployments.overview(db, hours=hours)
if not rows:
    st.info("No deployment yet. A data scientist requests one below from a registered model version; ops deploys it.")
else:
    for r in rows:
        with st.container(border=True, key=f"dep_row_{r.name}"):
            c = st.columns([3, 2, 2, 2, 2])
            c[0].page_link(
                "pages/deployment.py",
                label=f"**{r.name}**",
                icon=":material/rocket_launch:",
                query_params={"deployment": r.name},
            )
            c[0].caption(f"`POST {r.endpoint}` · {r.environment}")
            c[1].metric("Serving", r.model_version if r.model_version_id else "nothing yet")
            c[1].caption(f"since {session.fmt_time(r.since)}" + (f" · canary {r.canary}" if r.canary else ""))
            c[2].metric("Requests", f"{r.requests:,}")
            c[3].metric("Error rate", f"{r.error_rate:.1%}" if r.requests else "—")
            c[4].metric("Avg latency", f"{r.avg_latency_ms:.1f} ms" if r.avg_latency_ms is not None else "—")

st.subheader("Request a deployment")
if not session.may("deployment.request"):
    st.caption("Data scientists request deployments; ops approve and deploy them; business signs off production.")
else:
    versions = registry.list_model_versions(db, limit=200)
    if not versions:
        st.caption("Register a model version from a finished run first (Experiments).")
    else:
        with st.form("deps_request"):
            mv = st.selectbox(
                "Model version",
                versions,
                format_func=lambda v: f"{v.model_name} v{v.version} (run {v.run_id})",
                key="deps_mv",
            )
            name = st.text_input("Deployment name (the URL /v1/deployments/<name>)", value="churn", key="deps_name")
            env = st.radio("Environment", ["production", "staging"], horizontal=True, key="deps_env")
            note = st.text_area("Note for ops and business", key="deps_note")
            go = st.form_submit_button("Request deployment", type="primary")
        if go:
            done = None
            with st.status("Checking the gates (data, KPIs, regression, sign-off, model load)…") as status:
                with session.service_call():
                    done = deployments.request_deployment(
                        db, actor=actor, model_version_id=mv.id, deployment_name=name, environment=env, note=note
                    )
                status.update(label="Gates checked", state="complete" if done else "error")
            if done is not None:
                failing = [g.title for g in done.failed_gates]
                st.success(
                    f"Requested {mv.model_name} v{mv.version} on {done.deployment_name} ({env}). "
                    + (f"Failing for now: {', '.join(failing)}." if failing else "Every gate passes.")
                )
                st.page_link(
                    "pages/deployment.py",
                    label=f"Open {done.deployment_name}",
                    icon=":material/arrow_forward:",
                    query_params={"deployment": done.deployment_name},
                )
