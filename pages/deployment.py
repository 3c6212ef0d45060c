"""One deployment: gate checklists of its requests with the evidence, sign-off, deploy / reject /
override, rollback, canary and its results (champion vs challenger side by side), history, API keys, a
"try it" form built from the model's input schema, label upload, batch scoring (a job) with download, and
the discussion."""

from functools import partial

import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, session
from hub_ui import canary_ui, notify_ui, targets_ui
from hub_ui.empty import nothing_yet
from mlops_core import artifacts, jobs
from mlops_core.services import apikeys, collab, datasets, deployments, predictions, registry, scoring_examples
from mlops_core.textsafety import plain_markdown as md_text
from mlops_core.textsafety import safe_markdown

actor = session.require_actor()
db = session.db()
st.title("Deployment")

all_deps = deployments.list_deployments(db)
names = [d.name for d in all_deps]
if not names:
    nothing_yet(
        "No deployment yet.",
        page="pages/deployments.py",
        label="Request one on Deployments",
        icon=":material/rocket_launch:",
    )
_by_id = st.query_params.get("id")  # inbox items name a deployment by its id
if _by_id and _by_id.isdigit() and "deployment" not in st.query_params:
    st.query_params["deployment"] = next((d.name for d in all_deps if d.id == int(_by_id)), names[0])
    del st.query_params["id"]
name = session.pick_from_query("Deployment", names, key="dep_pick", param="deployment")
collab_ui.flash("dep")

dep = deployments.get_by_name(db, name)
notify_ui.watch_button("deployment", dep.id)
labels = deployments.version_labels(db, [dep.model_version_id, dep.canary_model_version_id])
stats = next(iter(deployments.overview(db, hours=24, name=name)), None)
serving = labels.get(dep.model_version_id)
with st.container(key="dep_summary"):
    # A model name does not fit a metric column: the metric shows the version, the line below the full name.
    m = st.columns(5)
    m[0].metric("Environment", dep.environment)
    m[1].metric(
        "Serving",
        "v" + serving.rpartition(" v")[2] if serving else "nothing yet",
        help=f"{md_text(serving)} serves this endpoint" if serving else "no model version is deployed here yet",
    )
    m[2].metric(
        "Since",
        f"{dep.deployed_at:%Y-%m-%d}" if dep.deployed_at else "—",
        help=f"{session.fmt_time(dep.deployed_at)} UTC" if dep.deployed_at else None,
    )
    m[3].metric("Requests (24 h)", f"{stats.requests:,}" if stats else "0")
    m[4].metric("Error rate (24 h)", f"{stats.error_rate:.1%}" if stats and stats.requests else "—")
    st.markdown(
        (f"Serving **{md_text(serving)}**" if serving else "Serving nothing yet")
        + f" · endpoint `POST /v1/deployments/{name}/predict`"
        + (
            f" · canary: **{md_text(labels.get(dep.canary_model_version_id))}** gets {dep.canary_share:.0%} of traffic"
            if dep.canary_model_version_id
            else ""
        )
        + f" · regression tolerance {dep.regression_tolerance:g}"
    )


def _done(message: str) -> None:
    collab_ui.flash("dep", message)
    st.rerun()


CONFIRM = "dep_confirm"  # which production action waits for its confirmation: "<kind>:<target>"


def _ask(kind: str, target) -> None:
    """First click on Deploy / Override / Roll back: show its confirmation step (reason required)."""
    st.session_state[CONFIRM] = f"{kind}:{target}"


def _confirmation(kind: str, target, *, what: str, detail: str, button: str) -> str | None:
    """The confirmation step of a production action: what happens, a required reason, Confirm / Cancel.
    Returns the reason once confirmed (None until then)."""
    if st.session_state.get(CONFIRM) != f"{kind}:{target}":
        return None
    with st.container(border=True, key=f"dep_confirm_{kind}_{target}"):
        st.warning(f"**{what}**")
        if detail:
            st.markdown(detail)
        reason = st.text_input("Reason (required, kept in the history)", key=f"dep_confirm_reason_{kind}_{target}")
        c = st.columns([2, 1, 3])
        ok = c[0].button(button, type="primary", key=f"dep_confirm_ok_{kind}_{target}")
        cancel = c[1].button("Cancel", key=f"dep_confirm_cancel_{kind}_{target}")
    if cancel:
        st.session_state.pop(CONFIRM, None)
        st.rerun()
    if ok:
        if not reason.strip():
            st.error("Say why: the reason is required and kept in the deployment's history.")
            return None
        st.session_state.pop(CONFIRM, None)
        return reason.strip()
    return None


# --- requests and gates ------------------------------------------------------------------------------
def requests_and_gates() -> None:
    reqs = deployments.list_requests(db, deployment_name=name, limit=20)
    req_labels = deployments.version_labels(db, [r.model_version_id for r in reqs])
    if not reqs:
        st.caption("No request yet. A data scientist requests a model version on the Deployments page.")
    for r in reqs:
        # A pending request's gates are evaluated now (database reads; the model-load check is the stored
        # one), so a sign-off or a data fix shows without a re-check. A decided one shows what it was decided on.
        gates = deployments.current_gates(db, r)
        checked = (
            f"gates as of now (model load checked {session.fmt_time(r.gates_evaluated_at)})"
            if r.status == "pending"
            else f"gates checked {session.fmt_time(r.gates_evaluated_at)}"
        )
        with st.container(border=True, key=f"dep_req_{r.id}"):
            st.markdown(
                f"**Request #{r.id}: {md_text(req_labels.get(r.model_version_id))} → {name}** ({r.environment}) — "
                + badges.badge(r.status)
            )
            st.caption(
                f"requested by {r.requested_by} on {session.fmt_time(r.created_at)} · {checked}"
                f" · evidence {r.evidence_hash[:12]}"
                + (f" · decided by {r.decided_by}" if r.decided_by else "")
                + (f" · OVERRIDDEN by {r.overridden_by}: {md_text(r.override_reason)}" if r.overridden_by else "")
            )
            if r.note:
                st.markdown(safe_markdown(f"> {r.note}"))
            for g in gates:
                st.markdown(f"{badges.badge(g.status)} **{md_text(g.title)}** — " + md_text(g.detail, line_start=False))
                links = []
                if g.evidence.get("dataset_version_id") and g.evidence.get("dataset"):
                    # the dataset's id AND the version's: a version number alone opened another dataset's v2
                    params = {"v": str(g.evidence["dataset_version_id"])}
                    if g.evidence.get("dataset_id"):
                        params["id"] = str(g.evidence["dataset_id"])
                    links.append(
                        (
                            "pages/dataset.py",
                            f"dataset version {g.evidence.get('dataset', '')}".strip(),
                            params,
                        )
                    )
                if g.evidence.get("run_id"):
                    links.append(("pages/run.py", f"run {g.evidence['run_id']}", {"id": str(g.evidence["run_id"])}))
                for page, label, params in links:
                    st.page_link(page, label=f"Evidence: {md_text(label)}", icon=":material/link:", query_params=params)
            # The same gates as JSON for those who check the record itself: what the sign-off approves (and
            # its hash), then each gate's verdict and evidence keyed by gate; collapsed, two levels open.
            with st.expander("Raw evidence (JSON, for audits)", expanded=False):
                st.json(
                    {
                        "request": r.id,
                        "evidence_hash": r.evidence_hash,
                        "evidence": r.evidence,
                        "gates": {g.gate: {"status": g.status, "evidence": g.evidence} for g in gates},
                    },
                    expanded=2,
                )
            if r.status != "pending":
                continue
            # The business sign-off of THIS request (decided here or from the inbox), not any pending
            # sign-off of the same model version asked for another endpoint.
            for so in collab.signoffs_for(db, "model_version", r.model_version_id):
                if so.status == "pending" and so.id == r.signoff_id:
                    collab_ui.signoff_card(so, key=f"dep_so_{r.id}", flash_key="dep")
            c = st.columns(4)
            if c[0].button(
                "Re-check gates",
                key=f"dep_recheck_{r.id}",
                icon=":material/refresh:",
                help="Every gate again, including loading the model and predicting, and store the result",
                disabled=not (session.may("deployment.deploy") or session.may("deployment.request")),
            ):
                with st.spinner("Checking the gates…"), session.service_call():
                    deployments.reevaluate_request(db, actor=actor, request_id=r.id)
                    _done(f"Gates of request #{r.id} checked again.")
            if session.may("deployment.deploy"):
                label = md_text(req_labels.get(r.model_version_id))
                if c[1].button("Deploy", key=f"dep_deploy_{r.id}", type="primary", icon=":material/rocket_launch:"):
                    _ask("deploy", r.id)
                reason = c[2].text_input("Reason to reject", key=f"dep_reason_{r.id}")
                if c[3].button("Reject", key=f"dep_reject_{r.id}"):
                    with session.service_call():
                        deployments.reject_request(db, actor=actor, request_id=r.id, reason=reason)
                        _done(f"Request #{r.id} rejected: its sign-off and notifications are closed.")
                failed = [g for g in gates if g.status == "failed"]
                if session.may("deployment.override_gates") and failed:
                    if st.button("Override failed gates and deploy (admin, audited)…", key=f"dep_override_{r.id}"):
                        _ask("override", r.id)
                why = _confirmation(
                    "deploy",
                    r.id,
                    what=f"Deploy {label} on {name} ({r.environment})?",
                    detail=f"It replaces {md_text(serving or 'nothing')} for every caller within seconds. "
                    "The gates are checked again first.",
                    button="Confirm deploy",
                )
                if why:
                    with st.spinner("Checking the gates and deploying…"), session.service_call():
                        deployments.deploy(db, actor=actor, request_id=r.id, reason=why)
                        _done(f"Deployed {label} on {name}. Running scoring services pick it up within seconds.")
                override = _confirmation(
                    "override",
                    r.id,
                    what=f"Override {len(failed)} failed gate(s) and deploy {label} on {name}?",
                    detail="Failing: " + "; ".join(md_text(g.title) for g in failed) + ". The override is audited.",
                    button="Confirm override and deploy",
                )
                if override:
                    with session.service_call():
                        deployments.deploy(db, actor=actor, request_id=r.id, override_reason=override)
                        _done(f"Deployed with an override: {md_text(override)}")

    if session.may("deployment.deploy") and dep.model_version_id is not None:
        st.subheader("Operate")
        prev = deployments.previous_version(db, name)
        c1, c2 = st.columns(2)
        with c1:
            prev_label = deployments.version_labels(db, [prev]).get(prev) if prev else None
            with st.container(border=True):
                st.markdown(f"**Roll back** to {md_text(prev_label or 'the previous version')}")
                if st.button("Roll back…", key="dep_rollback", disabled=prev is None, icon=":material/undo:"):
                    _ask("rollback", name)
            why = _confirmation(
                "rollback",
                name,
                what=f"Roll back {name} ({dep.environment}) from {md_text(serving)} to {md_text(prev_label)}?",
                detail="Every caller is served the previous version within seconds.",
                button="Confirm rollback",
            )
            if why:
                with session.service_call():
                    done = deployments.rollback(db, actor=actor, deployment_name=name, reason=why)
                    back_to = deployments.version_labels(db, [done.model_version_id]).get(done.model_version_id)
                    _done(f"Rolled back {name} to {md_text(back_to)}.")
        with c2:
            versions = (
                [
                    v
                    for v in registry.list_model_versions(db, use_case_id=dep.use_case_id, limit=100)
                    if v.id != dep.model_version_id
                ]
                if dep.use_case_id
                else []
            )
            with st.form("dep_canary"):
                st.markdown("**Canary**: send a share of traffic to a challenger (both predictions are logged)")
                ch = st.selectbox(
                    "Challenger", versions, format_func=lambda v: f"{v.model_name} v{v.version}", key="dep_canary_mv"
                )
                share = st.slider("Share of traffic", 0.05, 0.5, 0.1, 0.05, key="dep_canary_share")
                start = st.form_submit_button("Start canary", disabled=not versions)
                stop = st.form_submit_button("Stop canary", disabled=dep.canary_model_version_id is None)
            if start and ch is not None:
                with session.service_call():
                    deployments.set_canary(db, actor=actor, deployment_name=name, model_version_id=ch.id, share=share)
                    _done(f"Canary started: {share:.0%} of traffic to {ch.model_name} v{ch.version}.")
            if stop:
                with session.service_call():
                    deployments.set_canary(db, actor=actor, deployment_name=name, model_version_id=None)
                    _done("Canary stopped.")
        with st.form("dep_tolerance"):
            tol = st.number_input(
                "No-regression tolerance (largest allowed drop of a KPI metric vs production)",
                0.0,
                1.0,
                float(dep.regression_tolerance),
                0.005,
                format="%.3f",
                key="dep_tol",
            )
            if st.form_submit_button("Save tolerance"):
                with session.service_call():
                    deployments.set_regression_tolerance(db, actor=actor, deployment_name=name, tolerance=tol)
                    _done(f"Regression tolerance set to {tol:g}.")


# --- history -------------------------------------------------------------------------------------------
def history() -> None:
    events = deployments.history(db, deployment_name=name)
    ev_labels = deployments.version_labels(
        db, [e.from_model_version_id for e in events] + [e.to_model_version_id for e in events]
    )
    if not events:
        st.caption("Nothing deployed yet.")
    else:
        st.dataframe(
            [
                {
                    "when": session.fmt_time(e.at),
                    "what": e.kind.replace("_", " "),
                    "from": ev_labels.get(e.from_model_version_id, "—"),
                    "to": ev_labels.get(e.to_model_version_id, "—"),
                    "who": e.actor_username,
                    "why": e.reason,
                }
                for e in events
            ],
            hide_index=True,
            width="stretch",
            key="dep_history",
        )


# --- API keys --------------------------------------------------------------------------------------------
def api_keys() -> None:
    listing = st.container()  # filled last, so a key created below is already listed
    if session.may("apikey.manage"):
        with st.form("dep_newkey"):
            kname = st.text_input("What the key is for", key="dep_key_name")
            make = st.form_submit_button("Create API key", icon=":material/key:")
        if make:
            with session.service_call():
                k, secret = apikeys.create_key(db, actor=actor, deployment_name=name, name=kname)
                st.success("Key created. Copy it now: it is shown only once.")
                st.code(secret, language=None)
                # Runnable as shown: the scoring service's real address and one typical training record.
                example = (
                    scoring_examples.typical_record(db, model_version_id=dep.model_version_id)
                    if dep.model_version_id
                    else {}
                )
                st.code(
                    scoring_examples.curl_command(deployment_name=name, api_key=secret, record=example),
                    language="bash",
                )
    keys = apikeys.list_keys(db, deployment_name=name)
    with listing:
        if not keys:
            st.caption("No API key yet.")
        for k in keys:
            c = st.columns([3, 3, 2])
            c[0].markdown(f"`{k.prefix}…` {md_text(k.name)}")
            c[1].caption(
                f"created by {k.created_by} on {session.fmt_time(k.created_at)}"
                + (f" · revoked by {k.revoked_by} on {session.fmt_time(k.revoked_at)}" if k.revoked_at else "")
            )
            if k.revoked_at is None and session.may("apikey.manage"):
                if c[2].button("Revoke", key=f"dep_revoke_{k.id}"):
                    with session.service_call():
                        apikeys.revoke_key(db, actor=actor, key_id=k.id)
                        _done(f"Key {k.prefix}… revoked; scoring services refuse it within seconds.")


# --- try it --------------------------------------------------------------------------------------------
def try_it() -> None:
    if dep.model_version_id is None:
        st.caption("Nothing is served yet.")
    else:
        mv = registry.get_model_version(db, dep.model_version_id)
        typical = scoring_examples.typical_record(db, model_version_id=mv.id)  # training medians and modes
        with st.form("dep_try"):
            st.markdown(f"Score one record with {md_text(mv.model_name)} v{mv.version} (logged like an API call)")
            record = {}
            cols = st.columns(3)
            for i, col in enumerate(mv.input_schema):
                with cols[i % 3]:
                    key = f"dep_try_{col['name']}"
                    usual = typical.get(col["name"])
                    if col["type"] == "category":
                        cats = col.get("categories") or []
                        record[col["name"]] = st.selectbox(
                            md_text(col["name"]), cats, index=cats.index(usual) if usual in cats else 0, key=key
                        )
                    elif col["type"] == "boolean":
                        record[col["name"]] = st.checkbox(md_text(col["name"]), value=bool(usual), key=key)
                    elif col["type"] == "integer":
                        record[col["name"]] = int(
                            st.number_input(md_text(col["name"]), value=int(usual or 0), step=1, key=key)
                        )
                    elif col["type"] == "number":
                        record[col["name"]] = float(
                            st.number_input(md_text(col["name"]), value=float(usual or 0.0), key=key)
                        )
                    else:
                        record[col["name"]] = st.text_input(md_text(col["name"]), value=str(usual or ""), key=key)
            score = st.form_submit_button("Predict", type="primary", disabled=not session.may("batch.score"))
        if not session.may("batch.score"):
            st.caption("Ops and data scientists can try the model here.")
        if score:
            with session.service_call():
                out = predictions.score_records(db, actor=actor, deployment_name=name, records=[record])
                st.success(f"Prediction: **{md_text(out.predictions[0])}** (request id `{out.request_id}`)")


# --- labels and batch scoring -----------------------------------------------------------------------------
def labels_and_batch_scoring() -> None:
    st.markdown("**Ground-truth labels**: a CSV with the columns `request_id,label`")
    up = st.file_uploader("Label file (CSV)", type=["csv"], key="dep_labels_file")
    if up is not None and st.button("Upload labels", key="dep_labels_go", disabled=not session.may("prediction.label")):
        with session.service_call():
            res = predictions.upload_labels_csv(db, actor=actor, deployment_name=name, data=up.getvalue())
            st.success(f"{len(res.accepted):,} labels joined to their predictions.")
            if res.unknown:
                st.warning(
                    f"{len(res.unknown):,} unknown request ids (not kept): {md_text(', '.join(res.unknown[:20]))}"
                    + (" …" if len(res.unknown) > 20 else "")
                )
            if res.invalid:
                st.warning("Invalid rows: " + md_text("; ".join(res.invalid[:10])))
    st.divider()
    st.markdown(
        "**Batch scoring**: score a file with the model's columns, or a registered dataset version. The worker "
        "reads it in batches (memory is set by the batch size, not the file), logs every row like an API "
        "prediction and writes the scored file as it goes."
    )
    may_score = session.may("batch.score")
    source = st.radio(
        "What to score", ["Upload a file", "A registered dataset version"], horizontal=True, key="dep_batch_source"
    )
    if source == "Upload a file":
        bf = st.file_uploader("File to score", type=["csv", "parquet"], key="dep_batch_file")
        if bf is not None and st.button("Score file", key="dep_batch_go", disabled=not may_score):
            with session.service_call():
                st.session_state["dep_batch_job"] = predictions.submit_batch_scoring(
                    db, actor=actor, deployment_name=name, filename=bf.name, data=bf.getvalue()
                )
    else:
        versions = [
            v for d in datasets.list_datasets(db, use_case_id=dep.use_case_id) for v in datasets.list_versions(db, d.id)
        ]
        if not versions:
            st.info("This use case has no registered dataset versions yet (Datasets page).")
        else:
            picked = st.selectbox(
                "Dataset version",
                versions,
                format_func=lambda v: f"{v.ref} · {v.n_rows:,} rows · {badges.label(v.status)}",
                key="dep_batch_version",
            )
            if st.button("Score this version", key="dep_batch_version_go", disabled=not may_score):
                with session.service_call():
                    st.session_state["dep_batch_job"] = predictions.submit_dataset_scoring(
                        db, actor=actor, deployment_name=name, dataset_ref=picked.id
                    )
    job_id = st.session_state.get("dep_batch_job")
    if job_id:
        job = jobs.get_job(db, job_id)
        if job.status == "finished" and job.result:
            st.success(f"Scored {job.result['rows']:,} rows (job {job_id}).")
            c1, c2 = st.columns(2)
            c1.download_button(
                "Download scored file (CSV)",
                # a callable: read when clicked, not on every rerun of the page (the file can be large)
                partial(artifacts.get_bytes, job.result["output_key"]),
                file_name="scored.csv",
                mime="text/csv",
                key="dep_batch_dl",
            )
            if job.result.get("parquet_key"):
                c2.download_button(
                    "Download scored file (Parquet)",
                    partial(artifacts.get_bytes, job.result["parquet_key"]),
                    file_name="scored.parquet",
                    mime="application/octet-stream",
                    key="dep_batch_dl_parquet",
                )
        elif job.is_final:
            st.error(f"Batch scoring job {job_id} {job.status}: {md_text(job.error or '')}")
        else:
            with st.status(f"Batch scoring (job {job_id}): {md_text(job.progress_message or job.status)}"):
                st.progress(job.progress)
            if st.button("Refresh", key="dep_batch_refresh"):
                st.rerun()


# --- discussion ------------------------------------------------------------------------------------------
def discussion() -> None:
    collab_ui.discussion("deployment", dep.id)


# Stateful tabs: the open tab survives the rerun after an action (a new API key stays in view), and only
# the open tab's content is computed.
TABS = {
    "Requests & gates": requests_and_gates,
    "Canary": lambda: canary_ui.render(db, name),
    "History": history,
    "API keys": api_keys,
    "Try it": try_it,
    "Labels & batch scoring": labels_and_batch_scoring,
    "Target & bundle": lambda: targets_ui.render(db, actor, name),
    "Discussion": discussion,
}
for tab, render in zip(st.tabs(list(TABS), key="dep_tab", on_change="rerun"), TABS.values()):
    if tab.open:
        with tab:
            render()
