"""Deployments overview: every endpoint with its environment, serving version, since when, traffic and
error rate (aggregated in SQL over the prediction log), and a form for data scientists to request one."""

import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import session
from mlops_core.services import deployments, registry, targets
from mlops_core.textsafety import plain_markdown as md_text

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
    bundles = targets.bundle_targets(db)  # the deployments run elsewhere (issue 19); the rest run on the Hub
    for r in rows:
        with st.container(border=True, key=f"dep_row_{r.name}"):
            c = st.columns([3, 2, 2, 2, 2])
            c[0].page_link(
                "pages/deployment.py",
                label=f"**{r.name}**",
                icon=":material/rocket_launch:",
                query_params={"deployment": r.name},
            )
            t = bundles.get(r.name)
            c[0].caption(
                f"`POST {r.endpoint}` · {r.environment}"
                + (
                    f" · runs as a bundle, last upload {session.fmt_time(t.last_upload_at) if t.last_upload_at else 'never'}"
                    f", backlog {t.backlog:,}"
                    if t
                    else " · runs on the Hub"
                )
            )
            # The served model's full name, wrapped: a metric cut long names off ("churn-classifier-gradi…").
            c[1].caption("Serving")
            c[1].markdown(f"**{md_text(r.model_version)}**" if r.model_version_id else "nothing yet")
            c[1].caption(f"since {session.fmt_time(r.since)}" + (f" · canary {md_text(r.canary)}" if r.canary else ""))
            c[2].metric("Requests", f"{r.requests:,}")
            c[3].metric("Error rate", f"{r.error_rate:.1%}" if r.requests else "—")
            c[4].metric("Avg latency", f"{r.avg_latency_ms:.1f} ms" if r.avg_latency_ms is not None else "—")

st.subheader("Request a deployment")
if not session.may("deployment.request"):
    st.caption("Data scientists request deployments; ops approve and deploy them; business signs off production.")
else:
    NEW = "__new__"
    FORM_KEYS = ("deps_mv", "deps_target", "deps_name", "deps_env", "deps_note", "deps_ack")
    if st.session_state.pop("_deps_reset", False):  # after a request: an empty form, nothing pre-chosen
        for k in FORM_KEYS:
            st.session_state.pop(k, None)
    collab_ui.flash("deps")
    last = st.session_state.get("_deps_last")
    if last:
        st.page_link(
            "pages/deployment.py",
            label=f"Open {last}",
            icon=":material/arrow_forward:",
            query_params={"deployment": last},
        )
    versions = registry.list_model_versions(db, limit=200)
    if not versions:
        st.caption("Register a model version from a finished run first (Experiments).")
    else:
        by_id = {v.id: v for v in versions}
        want = st.query_params.get("mv")  # "Request deployment" on the model page
        if want and want.isdigit() and int(want) in by_id and st.session_state.get("_deps_mv_qp") != want:
            st.session_state["deps_mv"] = int(want)
            st.session_state["_deps_mv_qp"] = want
        # Nothing is pre-chosen: a default model or endpoint once put the wine model on churn production.
        mv_id = st.selectbox(
            "Model version",
            list(by_id),
            index=None,
            placeholder="Choose the model version to deploy",
            format_func=lambda i: f"{by_id[i].model_name} v{by_id[i].version} (run {by_id[i].run_id})",
            key="deps_mv",
        )
        mv = by_id.get(mv_id)
        if mv is None:
            st.caption("Choose a model version: its use case's endpoints are offered next.")
        else:
            all_deps = {d.name: d for d in deployments.list_deployments(db)}
            mine = [n for n, d in all_deps.items() if d.use_case_id in (mv.use_case_id, None)]
            served = deployments.version_labels(db, [all_deps[n].model_version_id for n in mine])
            options = mine + [NEW]
            if st.session_state.get("deps_target") not in options:
                st.session_state["deps_target"] = None
            target = st.selectbox(
                "Endpoint",
                options,
                index=None,
                placeholder="Choose an endpoint of this model's use case, or a new one",
                format_func=lambda n: (
                    "A new endpoint…"
                    if n == NEW
                    else f"{n} ({all_deps[n].environment}, serving {served.get(all_deps[n].model_version_id, 'nothing yet')})"
                ),
                key="deps_target",
            )
            others = len(all_deps) - len(mine)
            if others:
                st.caption(f"{others} endpoint(s) of other use cases are not offered for this model.")
            name, env = "", "production"
            if target == NEW:
                name = st.text_input(
                    "New endpoint name (the URL /v1/deployments/<name>)",
                    key="deps_name",
                    placeholder="e.g. wine-quality",
                ).strip()
                env = st.radio("Environment", ["production", "staging"], horizontal=True, key="deps_env")
            elif target:
                name, env = target, all_deps[target].environment
            ack, wrong = False, False
            if name:
                with session.service_call():
                    preview = {
                        g.gate: g for g in deployments.gate_checks(db, mv.id, name, environment=env, load_model=False)
                    }
                    use_case, schema = preview.get("use_case_match"), preview.get("schema_match")
                    if use_case is not None and use_case.status == "failed":
                        wrong = True
                        st.error(md_text(use_case.detail))
                    if schema is not None and schema.status == "failed":
                        st.warning(md_text(schema.detail))
                        ack = st.checkbox(
                            "I acknowledge the input schema change: the endpoint's callers must change what they send",
                            key="deps_ack",
                        )
                        wrong = wrong or not ack
            note = st.text_area("Note for ops and business", key="deps_note")
            go = st.button(
                "Request deployment",
                type="primary",
                disabled=not name or wrong,
                key="deps_go",
                help=None if name else "choose the endpoint first",
            )
            if go:
                done = None
                with st.status(
                    "Checking the gates (use case, inputs, data, KPIs, regression, sign-off, model load)…"
                ) as status:
                    with session.service_call():
                        done = deployments.request_deployment(
                            db,
                            actor=actor,
                            model_version_id=mv.id,
                            deployment_name=name,
                            environment=env,
                            note=note,
                            acknowledge_schema_change=ack,
                        )
                    status.update(label="Gates checked", state="complete" if done else "error")
                if done is not None:
                    failing = [g.title for g in done.failed_gates]
                    collab_ui.flash(
                        "deps",
                        f"Requested {mv.model_name} v{mv.version} on {done.deployment_name} ({env}). "
                        + (f"Failing for now: {', '.join(failing)}." if failing else "Every gate passes."),
                    )
                    st.session_state["_deps_reset"] = True
                    st.session_state["_deps_last"] = done.deployment_name
                    st.rerun()
