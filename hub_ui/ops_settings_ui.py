"""SLOs and alert routing of a deployment (issue 15, ops), a tab of the Deployment monitoring page.

Everyone sees the objectives, whether availability meets its target and who hears of which alerts; ops
and admins change them (services/ops_settings.py checks the role, audits before -> after)."""

from __future__ import annotations

import streamlit as st

from mlops_core.models.monitoring import ALERT_KINDS, SEVERITIES
from mlops_core.models.ops_settings import AlertRoute
from mlops_core.services import ops_settings, users
from mlops_core.textsafety import plain_markdown as md_text

from . import badges, collab, session

CHANNEL_WORDS = {"in_app": "inbox", "email": "email", "chat": "their chat webhook", "webhook": "deployment webhook"}


def _who(r: AlertRoute) -> str:
    return ", ".join(("every " + x[5:].replace("_", " ")) if x.startswith("role:") else x for x in r.recipients) or "—"


def _save(db, actor, cur, name: str, **changes) -> None:
    args = dict(
        deployment_name=name,
        max_error_rate=cur.max_error_rate,
        max_latency_p95_ms=cur.max_latency_p95_ms,
        slo_availability=cur.slo_availability,
        slo_window_days=cur.slo_window_days,
        alert_routes=[r.model_dump() for r in cur.alert_routes],
        webhook_url=None,
        expected_version=cur.version,
    )
    args.update(changes)
    with session.service_call():
        ops_settings.save_ops_settings(db, actor=actor, **args)
        collab.flash("dm", "SLOs and alert routing saved.")
        st.rerun()


def render(db, actor, name: str) -> None:
    cur = ops_settings.get_ops_settings(db, actor=actor, deployment_name=name)
    may = session.may("monitor.configure")
    slo = ops_settings.slo_status(db, deployment_name=name)

    st.markdown("**Service level objectives**")
    if slo.availability is None:
        st.caption(f"No request in the last {slo.window_days} days yet: availability is not measured.")
    else:
        verdict = "" if slo.met is None else " " + badges.badge("met" if slo.met else "missed")
        st.markdown(
            f"Availability over the last {slo.window_days} days: **{slo.availability:.3%}** "
            f"({slo.server_errors:,} server errors in {slo.requests:,} requests)"
            + (f", target {slo.target:.2%}{verdict}" if slo.target is not None else ", no target set")
            + (f" · error budget left: **{slo.budget_left:.0%}**" if slo.budget_left is not None else "")
        )
    st.caption(
        "The error-rate and latency objectives are the health check's thresholds: a check above them raises an "
        "alert (they are also in Monitor settings)."
        + (f" Last changed by {cur.updated_by} on {session.fmt_time(cur.updated_at)}." if cur.version else "")
    )
    with st.form("dm_slo"):
        c = st.columns(4)
        err = c[0].number_input(
            "Error rate (5xx) at most, %",
            min_value=0.01,
            max_value=99.0,
            value=float((cur.max_error_rate if cur.max_error_rate is not None else 0.05) * 100),
            step=0.5,
            key="dm_slo_err",
        )
        lat = c[1].number_input(
            "Latency p95 at most (ms)",
            min_value=1.0,
            value=float(cur.max_latency_p95_ms or 500.0),
            key="dm_slo_lat",
        )
        avail = c[2].number_input(
            "Availability at least, % (0 = no target)",
            min_value=0.0,
            max_value=99.999,
            value=float((cur.slo_availability or 0.0) * 100),
            step=0.1,
            format="%.3f",
            key="dm_slo_avail",
            help="Requests answered without a server error (5xx) over the window. When it falls below this, the "
            "system health check raises a critical 'slo_availability' alert (routed like any other).",
        )
        days = c[3].number_input(
            "Availability window (days)", min_value=1, max_value=90, value=cur.slo_window_days, key="dm_slo_days"
        )
        go = st.form_submit_button("Save objectives", disabled=not may)
    if go:
        _save(
            db,
            actor,
            cur,
            name,
            max_error_rate=err / 100,
            max_latency_p95_ms=lat,
            slo_availability=(avail / 100) or None,
            slo_window_days=int(days),
        )

    st.markdown("**Alert routing**")
    st.caption(
        "Besides the use case's ops and data science members (every alert in their inbox), each route sends the "
        "alerts it matches to the people named, on the channels chosen. Email and chat use each person's own "
        "settings (Account page); the deployment webhook is Slack-compatible."
    )
    if cur.alert_routes:
        st.dataframe(
            [
                {
                    "route": i,
                    "alerts": "every kind" if r.kinds == ["*"] else ", ".join(k.replace("_", " ") for k in r.kinds),
                    "from severity": r.min_severity,
                    "to": _who(r),
                    "channels": ", ".join(CHANNEL_WORDS[c] for c in r.channels),
                }
                for i, r in enumerate(cur.alert_routes, start=1)
            ],
            hide_index=True,
            width="stretch",
            key="dm_routes",
        )
    else:
        st.caption("No route yet: alerts go to the use case's team only.")
    st.caption(
        "Deployment webhook: "
        + (
            ("set" + (f" (`{md_text(cur.webhook_url[:40])}…`)" if cur.webhook_url else ""))
            if cur.webhook_set
            else "none"
        )
    )
    if not may:
        st.caption("Only ops and admins change SLOs and alert routing.")
        return
    people = [u.username for u in users.list_users(db, actor=actor) if u.is_active]
    roles = ["role:ops", "role:data_scientist", "role:business", "role:data_engineer", "role:admin"]
    with st.form("dm_route_add"):
        c = st.columns([3, 1, 3, 3])
        kinds = c[0].multiselect(
            "Alerts (none = every kind)",
            list(ALERT_KINDS),
            format_func=lambda k: k.replace("_", " "),
            key="dm_rt_kinds",
        )
        sev = c[1].selectbox("From severity", list(SEVERITIES), index=1, key="dm_rt_sev")
        who = c[2].multiselect("To", people + roles, key="dm_rt_who")
        chans = c[3].multiselect(
            "Channels", list(CHANNEL_WORDS), default=["in_app", "email"], format_func=CHANNEL_WORDS.get, key="dm_rt_ch"
        )
        hook = st.text_input(
            "Deployment webhook URL (empty: keep as is)",
            type="password",
            placeholder="https://hooks.slack.com/services/…",
            key="dm_rt_hook",
        )
        add = st.form_submit_button("Add route")
    if add:
        route = {"kinds": kinds or ["*"], "min_severity": sev, "recipients": who, "channels": chans}
        _save(
            db,
            actor,
            cur,
            name,
            alert_routes=[r.model_dump() for r in cur.alert_routes] + [route],
            webhook_url=hook.strip() or None,
        )
    if cur.alert_routes or cur.webhook_set:
        c = st.columns([2, 1, 2])
        drop = c[0].selectbox("Remove route", list(range(1, len(cur.alert_routes) + 1)), index=None, key="dm_rt_drop")
        if c[1].button("Remove", key="dm_rt_remove", disabled=drop is None):
            _save(
                db,
                actor,
                cur,
                name,
                alert_routes=[r.model_dump() for i, r in enumerate(cur.alert_routes, 1) if i != drop],
            )
        if cur.webhook_set and c[2].button("Remove the deployment webhook", key="dm_rt_hook_rm"):
            _save(
                db,
                actor,
                cur,
                name,
                alert_routes=[r.model_dump() for r in cur.alert_routes if "webhook" not in r.channels],
                webhook_url="",
            )
