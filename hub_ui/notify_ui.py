"""Subscriptions in the UI (issue 18): the Watch button of an object's page, the notification settings of
My account, and the admins' delivery log. Each is one call from its page."""

from __future__ import annotations

from typing import Any

import streamlit as st

from mlops_core.services import delivery, subscriptions
from mlops_core.textsafety import plain_markdown

from . import badges, session


def watch_button(entity_type: str, entity_id: Any) -> None:
    """A Watch / Unwatch toggle button for one object (email and chat as set on My account)."""
    actor = session.require_actor()
    db = session.db()
    watching = subscriptions.is_watching(db, actor=actor, entity_type=entity_type, entity_id=entity_id)
    label = "Unwatch" if watching else "Watch"
    icon = ":material/notifications_off:" if watching else ":material/notifications:"
    help_ = (
        "You hear of this by email or chat (as set on My account). Click to stop."
        if watching
        else "Hear of its events by email or chat, as set on My account."
    )
    if st.button(label, key=f"watch_{entity_type}_{entity_id}", icon=icon, help=help_):
        with session.service_call():
            if watching:
                subscriptions.unwatch(db, actor=actor, entity_type=entity_type, entity_id=entity_id)
            else:
                subscriptions.watch(db, actor=actor, entity_type=entity_type, entity_id=entity_id)
            st.rerun()


def settings_section() -> None:
    """My account: email address, immediate or daily digest, a Slack- or Teams-compatible webhook."""
    actor = session.require_actor()
    db = session.db()
    st.subheader("Notifications")
    st.caption(
        "Your inbox always gets mentions and sign-offs. Add an email address or a chat webhook to hear of "
        "what you watch (Watch button on a use case, dataset or deployment) outside the Hub."
    )
    cur = subscriptions.get_notification_settings(db, actor=actor)
    hook = cur.webhooks[0] if cur.webhooks else {"url": "", "flavor": "slack"}
    with st.form("notify_settings"):
        email = st.text_input("Email address", value=cur.email or "", key="notify_email")
        mode = st.radio(
            "Email",
            ["immediate", "digest"],
            index=0 if cur.mode == "immediate" else 1,
            format_func=lambda m: "one message per event" if m == "immediate" else "a daily digest",
            horizontal=True,
            key="notify_mode",
        )
        url = st.text_input("Chat webhook URL", value=hook["url"], key="notify_hook")
        flavor = st.radio(
            "Chat",
            ["slack", "teams"],
            index=0 if hook["flavor"] == "slack" else 1,
            format_func=lambda f: "Slack-compatible" if f == "slack" else "Microsoft Teams-compatible",
            horizontal=True,
            key="notify_flavor",
        )
        save = st.form_submit_button("Save notification settings")
    if save:
        with session.service_call(success="Notification settings saved."):
            subscriptions.save_notification_settings(
                db, actor=actor, email=email, mode=mode, webhook_url=url, webhook_flavor=flavor
            )
    subs = subscriptions.my_subscriptions(db, actor=actor)
    if subs:
        st.caption(
            "You watch: "
            + ", ".join(f"{s.entity_type.replace('_', ' ')} {plain_markdown(s.entity_id)} ({s.source})" for s in subs)
        )


def delivery_log_section() -> None:
    """Admin: the latest deliveries, sent, pending, skipped (cooldown) or failed and why."""
    actor = session.require_actor()
    db = session.db()
    st.subheader("Notification delivery log")
    status = st.selectbox("Status", ["all", "failed", "pending", "sent", "skipped"], key="dlog_status")
    rows = delivery.delivery_log(db, actor=actor, status=None if status == "all" else status, limit=200)
    if not rows:
        st.caption("No deliveries yet.")
        return
    st.dataframe(
        [
            {
                "when": session.fmt_time(r.created_at),
                "to": r.username,
                "channel": r.channel + (" (digest)" if r.digest else ""),
                "event": f"{r.event_kind} on {r.entity_type} {r.entity_id}",
                "status": badges.label(r.status),
                "attempts": r.attempts,
                "error": r.last_error,
                "sent": session.fmt_time(r.sent_at),
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
    )
