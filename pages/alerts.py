"""Alerts: filter, acknowledge or resolve with a note, follow the evidence, and decide retraining proposals."""

import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, session
from mlops_core.services import collab, monitoring, retraining
from mlops_core.textsafety import plain_markdown as md_text
from mlops_core.textsafety import safe_markdown

actor = session.require_actor()
db = session.db()
st.title("Alerts")
st.caption(
    "Breaches found by the monitors and the system checks. A persisting breach stays one alert (its count "
    "goes up); once resolved, a new breach opens a new alert."
)
collab_ui.flash("alerts")

# --- retraining proposals waiting for a decision ------------------------------------------------
proposals = retraining.list_proposals(db, limit=50)
waiting = [p for p in proposals if p.state == "proposed"]
st.subheader(f"Retraining proposals ({len(waiting)} waiting)")
if not proposals:
    st.caption("No retraining proposal yet: drift or a missed KPI proposes one when the monitor's policy says so.")
for p in proposals[:10]:
    with st.container(border=True):
        st.markdown(
            f"**Retrain {p.deployment_name}** · proposal #{p.id} · {badges.badge(p.state)} · because of alert "
            f"#{p.alert_id}: " + md_text(p.reason, line_start=False)
        )
        st.caption(
            f"champion's configuration (run {p.base_run_id}, algorithm "
            f"{str(p.config.get('algorithm', '?')).replace('_', ' ')}) on the newest usable data"
            + (f" · decided by {p.decided_by}" if p.decided_by else "")
        )
        same_data = retraining.same_data_warning(db, p) if p.state == "proposed" else ""
        if same_data:
            st.warning(md_text(same_data[0].upper() + same_data[1:]) + ".")
        explained = (p.gate_summary or {}).get("explained") or []
        if p.state == "finished" and explained:
            # a failed gate in words, with the run and the request, and what to do next (no internal names)
            st.error(md_text(p.note))
        elif p.note and not same_data:
            st.caption(md_text(p.note))
        links = st.columns(3)
        if p.run_id:
            links[0].page_link(
                "pages/run.py", label=f"Run {p.run_id}", icon=":material/science:", query_params={"id": str(p.run_id)}
            )
        if (p.gate_summary or {}).get("request_id"):
            links[1].page_link(
                "pages/deployment.py",
                label=f"Gates on {p.deployment_name}",
                icon=":material/rule:",
                query_params={"deployment": p.deployment_name},
            )
        if p.state == "proposed" and session.may("retraining.decide"):
            note = st.text_input("Note", key=f"prop_note_{p.id}")
            c1, c2, _ = st.columns([1, 1, 4])
            if c1.button("Approve retraining", key=f"prop_ok_{p.id}", type="primary"):
                with session.service_call():
                    res = retraining.decide_proposal(db, actor=actor, proposal_id=p.id, approve=True, note=note)
                    collab_ui.flash("alerts", f"Retraining approved: run {res.run_id} is queued ({res.state}).")
                    st.rerun()
            if c2.button("Reject", key=f"prop_no_{p.id}"):
                with session.service_call():
                    retraining.decide_proposal(db, actor=actor, proposal_id=p.id, approve=False, note=note)
                    collab_ui.flash("alerts", "Proposal rejected.")
                    st.rerun()

# --- alerts -----------------------------------------------------------------------------------
st.subheader("Alerts")
c1, c2, c3, c4 = st.columns([3, 3, 3, 1])
state = c1.selectbox("State", ["open or acknowledged", "open", "acknowledged", "resolved", "all"], key="al_state")
# every kind an alert can have (the list missed the segment and estimated KPI alerts), named in words
KIND_WORDS = {
    "drift": "data drift",
    "kpi_missed": "KPI missed",
    "kpi_estimated_missed": "KPI missed (estimated)",
    "segment_kpi_missed": "KPI missed in a segment",
    "error_rate": "error rate",
    "latency": "latency",
    "label_coverage": "labels missing",
    "target_silent": "no outcomes arriving",
    "slo_availability": "availability SLO",
    "worker_down": "worker down",
    "scheduler_down": "scheduler down",
    "monitoring_down": "monitoring down",
    "ingestion_failed": "ingestion failed",
}


def kind_words(k: str) -> str:
    return KIND_WORDS.get(k, k.replace("_", " "))


kind = c2.selectbox(
    "Kind",
    ["(all)", *KIND_WORDS],
    format_func=lambda k: k if k == "(all)" else kind_words(k),
    key="al_kind",
)
dep = c3.selectbox("Deployment", ["(all)"] + monitoring.alert_deployment_names(db), key="al_dep")
page_no = int(c4.number_input("Page", min_value=1, value=1, step=1, key="al_page"))
PAGE = 50
states = {"open or acknowledged": ["open", "acknowledged"], "all": None}.get(state, [state])
# one more than a page tells whether there is a next page without counting every alert
alerts = monitoring.list_alerts(
    db,
    states=states,
    kind=None if kind == "(all)" else kind,
    deployment_name=None if dep == "(all)" else dep,
    limit=PAGE + 1,
    offset=(page_no - 1) * PAGE,
)
more = len(alerts) > PAGE
alerts = alerts[:PAGE]
first = (page_no - 1) * PAGE
st.caption(
    (
        f"alerts {first + 1}–{first + len(alerts)}, newest first"
        if alerts
        else ("no alert matches these filters" if page_no == 1 else f"no alerts on page {page_no}")
    )
    + (f" · more on page {page_no + 1}" if more else "")
)
can_ack = session.may("alert.ack")
# every alert's discussion in one query, not one per alert
talk = collab.list_comments_many(db, actor=actor, entity_type="alert", entity_ids=[a.id for a in alerts])
for a in alerts:
    label = f"{badges.badge(a.severity)} {md_text(a.title)} · {badges.badge(a.state)}" + (
        f" · seen {a.occurrences}×" if a.occurrences > 1 else ""
    )
    # a notification's link (alerts?id=N) opens its alert
    with st.expander(label, expanded=len(alerts) <= 3 or st.query_params.get("id") == str(a.id)):
        st.markdown(
            f"**#{a.id}** · {kind_words(a.kind)} · {a.severity} · first {session.fmt_time(a.created_at)} · "
            f"last seen {session.fmt_time(a.last_seen_at)}"
        )
        st.markdown(safe_markdown(a.detail))
        if a.evidence_link.startswith("/deployment-monitoring") and a.deployment_name:
            q = {"deployment": a.deployment_name}
            if a.check_id:
                q["check"] = str(a.check_id)
            st.page_link(
                "pages/deployment_monitoring.py",
                label=f"Evidence: check #{a.check_id} of {a.deployment_name}",
                icon=":material/query_stats:",
                query_params=q,
            )
        elif a.evidence_link == "/infrastructure":
            st.page_link("pages/infrastructure.py", label="Evidence: infrastructure", icon=":material/dns:")
        if a.acknowledged_by:
            st.caption(
                f"acknowledged by {a.acknowledged_by} {session.fmt_time(a.acknowledged_at)}: "
                + md_text(a.ack_note or '—', line_start=False)
            )
        if a.resolved_by:
            st.caption(
                f"resolved by {a.resolved_by} {session.fmt_time(a.resolved_at)}: "
                + md_text(a.resolve_note, line_start=False)
            )
        if a.webhook_status != "none":
            st.caption(
                f"webhook: {a.webhook_status} after {a.webhook_attempts} attempt(s) "
                + md_text(a.webhook_error, line_start=False)
            )
        if a.state != "resolved" and can_ack:
            note = st.text_input("Note", key=f"al_note_{a.id}")
            b1, b2, _ = st.columns([1, 1, 4])
            if a.state == "open" and b1.button("Acknowledge", key=f"al_ack_{a.id}"):
                with session.service_call():
                    monitoring.acknowledge_alert(db, actor=actor, alert_id=a.id, note=note)
                    collab_ui.flash("alerts", f"Alert #{a.id} acknowledged.")
                    st.rerun()
            if b2.button("Resolve", key=f"al_res_{a.id}"):
                with session.service_call():
                    monitoring.resolve_alert(db, actor=actor, alert_id=a.id, note=note)
                    collab_ui.flash("alerts", f"Alert #{a.id} resolved.")
                    st.rerun()
        comments = talk[str(a.id)]
        with st.popover(f"Discussion ({len(comments)})" if comments else "Discussion"):
            collab_ui.discussion("alert", a.id, title="", comments=comments)
