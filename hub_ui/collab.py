"""Reusable collaboration widgets for any entity: a threaded discussion and sign-offs.

Other stages call them on their own entities:
    from hub_ui import collab as collab_ui
    collab_ui.discussion("dataset", dataset.id)
    collab_ui.signoffs("model_version", mv.id, evidence=lambda: {...})
Each widget keys its state by (entity_type, entity_id), so several can live on one page.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from mlops_core.models.base import ROLES
from mlops_core.models.collab import CommentPublic, SignoffPublic
from mlops_core.services import collab, users
from mlops_core.textsafety import plain_markdown, safe_markdown

from . import badges, session, signoff_report_ui

# entity_type -> the page that shows one (opened with ?id=<entity_id>); stages add theirs.
ENTITY_PAGES: dict[str, str] = {
    "use_case": "pages/use_case.py",
    "dataset": "pages/dataset.py",
    "run": "pages/run.py",
    # every kind of notification opens its object (issue 15): these pages take ?id= too
    "model_version": "pages/models.py",
    "deployment": "pages/deployment.py",
    "alert": "pages/alerts.py",
    "retraining_proposal": "pages/alerts.py",
}


def _key(*parts: Any) -> str:
    return "_".join(str(p) for p in parts)


def flash(key: str, message: str | None = None, kind: str = "success") -> None:
    """Show a message after st.rerun(): set it with a message, show (and clear) it without."""
    k = f"_flash_{key}"
    if message is not None:
        st.session_state[k] = (kind, message)
        return
    if k in st.session_state:
        kind, text = st.session_state.pop(k)
        getattr(st, kind)(text)


def discussion(
    entity_type: str, entity_id: Any, *, title: str = "Discussion", comments: list[CommentPublic] | None = None
) -> None:
    """Threaded comments with @mentions, and a box to write one. A page showing many discussions passes
    each one's `comments`, read for all at once with `collab.list_comments_many`."""
    actor = session.require_actor()
    db = session.db()
    base = _key("disc", entity_type, entity_id)
    if title:
        st.subheader(title)
    flash(base)
    if comments is None:
        comments = collab.list_comments(db, actor=actor, entity_type=entity_type, entity_id=entity_id)
    if not comments:
        st.caption("No comments yet. Start the discussion below; mention someone with @username.")
    for c in comments:
        pad, body = st.columns([max(1, c.depth), 24]) if c.depth else (None, st.container())
        with body:
            with st.container(border=True):
                st.markdown(
                    f"**{c.author_username}** · {session.fmt_time(c.created_at)}"
                    + (" · ↳ reply" if c.parent_id else "")
                )
                st.markdown(safe_markdown(c.body))
                with st.popover("Reply"):
                    with st.form(_key(base, "reply", c.id), clear_on_submit=True):
                        text = st.text_area("Your reply", key=_key(base, "reply_text", c.id))
                        send = st.form_submit_button("Post reply", disabled=not session.may("comment.write"))
                    if send:
                        _post(entity_type, entity_id, text, parent_id=c.id, flash_key=base)
    with st.form(_key(base, "new"), clear_on_submit=True):
        text = st.text_area("Comment (mention someone with @username)", key=_key(base, "text"))
        send = st.form_submit_button("Post comment", disabled=not session.may("comment.write"))
    if send:
        _post(entity_type, entity_id, text, parent_id=None, flash_key=base)


def _post(entity_type: str, entity_id: Any, text: str, *, parent_id: int | None, flash_key: str) -> None:
    actor = session.require_actor()
    posted = None
    with session.service_call():
        posted = collab.add_comment(
            session.db(), actor=actor, entity_type=entity_type, entity_id=entity_id, body=text, parent_id=parent_id
        )
    if posted is None:
        return
    msg = "Comment posted."
    if posted.mentions:
        msg += f" Notified: {', '.join(posted.mentions)}."
    if posted.unknown_mentions:
        msg += f" No user named: {', '.join(posted.unknown_mentions)}."
    flash(flash_key, msg)
    st.rerun()


def decide_controls(
    so: SignoffPublic, *, key: str, flash_key: str | None = None, shortfalls: list[str] | None = None
) -> None:
    """Approve / reject buttons with a reason, for a pending sign-off the actor may decide. Evidence that
    falls short (`shortfalls`, e.g. a missed KPI) must be confirmed before Approve does anything."""
    actor = session.require_actor()
    if so.status != "pending":
        return
    if not collab.may_decide(actor, so):
        st.caption(f"Waiting for {so.assignee}.")
        return
    confirmed = False
    if shortfalls:
        st.warning("Falls short: " + plain_markdown("; ".join(shortfalls)) + ".")
        confirmed = st.checkbox(
            "I approve it although it falls short of the targets above", key=_key(key, "confirm", so.id)
        )
    reason = st.text_input("Reason (required to reject)", key=_key(key, "reason", so.id))
    c1, c2 = st.columns(2)
    approve = c1.button("Approve", key=_key(key, "approve", so.id), type="primary", icon=":material/check:")
    reject = c2.button("Reject", key=_key(key, "reject", so.id), icon=":material/close:")
    if approve and shortfalls and not confirmed:
        st.error("Tick the confirmation first: the evidence falls short of its targets.")
        return
    if approve or reject:
        done = None
        with session.service_call():
            done = collab.decide_signoff(
                session.db(),
                actor=actor,
                signoff_id=so.id,
                approve=bool(approve),
                reason=reason,
                confirm_shortfalls=confirmed,
            )
        if done is not None:
            flash(flash_key or key, f"Sign-off “{plain_markdown(done.title)}” {done.status}.")
            st.rerun()


def assignee_words(so: SignoffPublic) -> str:
    """Who must decide, in words: a person's username, or "any data scientist" for a role."""
    if so.assignee_username:
        return so.assignee_username
    return f"any {(so.assignee_role or '').replace('_', ' ')}" + (" user" if so.assignee_role == "business" else "")


def signoff_card(so: SignoffPublic, *, key: str, flash_key: str | None = None, open_link: bool = False) -> None:
    """One sign-off: who asked whom, its evidence and, while pending, the decision controls. `open_link`
    adds a link to the object inside the card (a model version's evidence already links its model card)."""
    # keyed: the browser finds one card by its CSS class st-key-<key>_card_<id>
    with st.container(border=True, key=_key(key, "card", so.id)):
        st.markdown(f"{badges.badge(so.status)} **{plain_markdown(so.title)}**")
        page = ENTITY_PAGES.get(so.entity_type)
        if open_link and page and not (so.entity_type == "model_version" and so.evidence):
            st.page_link(
                page,
                label=f"Open the {so.entity_type.replace('_', ' ')}",
                icon=":material/open_in_new:",
                query_params={"id": so.entity_id},
            )
        st.caption(
            f"{so.requested_by} asked {assignee_words(so)} on {session.fmt_time(so.created_at)}"
            + (f" · {so.status} by {so.decided_by} on {session.fmt_time(so.decided_at)}" if so.decided_by else "")
            + f" · evidence {so.evidence_hash[:12]}"
        )
        if so.reason:
            st.markdown(safe_markdown(f"> {so.reason}"))
        signoff_report_ui.attached_report(so, key=key)
        shortfalls: list[str] = []
        if so.entity_type == "model_version" and so.evidence:
            from . import signoff_view  # reads the deployment stage's evidence review

            shortfalls = signoff_view.model_version_evidence(so) if so.status == "pending" else []
            if so.status != "pending":
                with st.expander("Evidence"):
                    signoff_view.model_version_evidence(so)
        elif so.evidence:
            with st.expander("Evidence"):
                st.json(so.evidence)
        decide_controls(so, key=key, flash_key=flash_key, shortfalls=shortfalls)


def signoffs(
    entity_type: str,
    entity_id: Any,
    *,
    evidence: dict | Callable[[], dict] | None = None,
    default_title: str = "",
    title: str = "Sign-offs",
) -> None:
    """Sign-off history of an entity, decision buttons for the pending ones, and a request form.

    `evidence` (a dict, or a function returning one at request time) is stored with the request and
    hashed, so a later change of the entity shows the sign-off as stale."""
    actor = session.require_actor()
    db = session.db()
    base = _key("so", entity_type, entity_id)
    if title:
        st.subheader(title)
    flash(base)
    history = collab.signoffs_for(db, entity_type, entity_id)
    if not history:
        st.caption("No sign-off requested yet.")
    for so in history:
        signoff_card(so, key=base, flash_key=base)
    people = [u.username for u in users.list_users(db, actor=actor) if u.is_active and u.username != actor.username]
    with st.form(_key(base, "request"), clear_on_submit=False):
        st.markdown("**Request a sign-off**")
        what = st.text_input("What is to be approved", value=default_title, key=_key(base, "title"))
        ask = st.radio("Ask", ["a person", "a role"], horizontal=True, key=_key(base, "ask"))
        person = st.selectbox("Person", people, key=_key(base, "person"))
        role = st.selectbox("Role", list(ROLES), key=_key(base, "role"))
        with_report = signoff_report_ui.attach_option(key=_key(base, "report"))
        send = st.form_submit_button("Request sign-off", disabled=not session.may("signoff.request"))
    if send:
        ev = evidence() if callable(evidence) else dict(evidence or {})
        done = None
        with session.service_call():
            done = collab.request_signoff(
                db,
                actor=actor,
                entity_type=entity_type,
                entity_id=entity_id,
                title=what,
                assignee_username=person if ask == "a person" else None,
                assignee_role=role if ask == "a role" else None,
                evidence=ev,
                attach_report=with_report,
            )
        if done is not None:
            flash(base, f"Sign-off requested from {done.assignee}.")
            st.rerun()
