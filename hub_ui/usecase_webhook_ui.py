"""A use case's chat webhook (issue 18): every event of the use case is posted to one Slack- or Microsoft
Teams-compatible webhook. Set or removed by business and ops (subscriptions.set_use_case_webhook)."""

from __future__ import annotations

import streamlit as st

from mlops_core.services import subscriptions
from mlops_core.textsafety import plain_markdown

from . import session

FLAVORS = {"slack": "Slack-compatible", "teams": "Microsoft Teams-compatible"}


def _describe(cur: dict[str, str] | None) -> str:
    if cur is None:
        return "No chat webhook: this use case's events reach watchers by inbox and email only."
    return f"Every event of this use case is posted to a {FLAVORS.get(cur['flavor'], cur['flavor'])} webhook" + (
        f": `{plain_markdown(cur['url'])}`" if cur["url"] else "."
    )


def section(use_case_id: int) -> None:
    actor = session.require_actor()
    db = session.db()
    st.subheader("Chat webhook")
    state = st.empty()  # filled last, so it shows what a save just changed
    if not session.may("notify.usecase_webhook"):
        state.caption(_describe(subscriptions.get_use_case_webhook(db, actor=actor, use_case_id=use_case_id)))
        st.caption("Business and ops set the use case's chat webhook.")
        return
    hook = subscriptions.get_use_case_webhook(db, actor=actor, use_case_id=use_case_id) or {
        "url": "",
        "flavor": "slack",
    }
    key = f"uc_hook_{use_case_id}"
    with st.form(key):
        url = st.text_input(
            "Webhook URL",
            value=hook["url"],
            key=f"{key}_url",
            placeholder="https://hooks.slack.com/services/...",
            help="Leave empty and save to remove the webhook.",
        )
        flavor = st.radio(
            "Format",
            list(FLAVORS),
            index=list(FLAVORS).index(hook["flavor"]) if hook["flavor"] in FLAVORS else 0,
            format_func=FLAVORS.get,
            horizontal=True,
            key=f"{key}_flavor",
        )
        save = st.form_submit_button("Save chat webhook")
    if save:
        with session.service_call(success="Chat webhook saved." if url.strip() else "Chat webhook removed."):
            subscriptions.set_use_case_webhook(db, actor=actor, use_case_id=use_case_id, url=url, flavor=flavor)
    state.caption(_describe(subscriptions.get_use_case_webhook(db, actor=actor, use_case_id=use_case_id)))
