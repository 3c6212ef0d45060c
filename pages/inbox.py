"""My inbox: sign-offs waiting for me, mentions and decisions on what I asked for."""

import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import session
from mlops_core.services import collab
from mlops_core.textsafety import plain_markdown as md_text

ENTITY_PAGES = collab_ui.ENTITY_PAGES
KINDS = {
    "mention": "mention",
    "signoff": "sign-off request",
    "signoff_decided": "sign-off decision",
    "deployment_request": "deployment request",
    "deployment_done": "deployment",
    "alert": "alert",
    "retraining": "retraining proposal",
}

actor = session.require_actor()
db = session.db()
st.title("My inbox")
collab_ui.flash("inbox")

waiting = collab.pending_for(db, actor=actor)
st.subheader(f"Waiting for your sign-off ({len(waiting)})")
if not waiting:
    st.caption("Nothing waits for your sign-off.")
for so in waiting:
    # the link to the object sits inside its card (not loose under it); a model version's card links it already
    collab_ui.signoff_card(so, key="inbox_so", flash_key="inbox", open_link=True)

page_size = 30
heading = st.empty()  # the section's title above its controls; it needs the count read below
c1, c2, c3 = st.columns([2, 1, 1])
unread_only = c1.toggle("Unread only", key="inbox_unread_only")
page_no = c2.number_input("Page", min_value=1, value=1, step=1, key="inbox_page")
box = collab.inbox(db, actor=actor, unread_only=unread_only, limit=page_size, offset=(int(page_no) - 1) * page_size)
heading.subheader(f"Notifications ({box.unread} unread)")
if c3.button("Mark all read", key="inbox_mark_all", disabled=box.unread == 0):
    n = collab.mark_read(db, actor=actor)
    collab_ui.flash("inbox", f"{n} marked read.")
    st.rerun()
if not box.items:
    st.caption(
        "No notifications. You get one when someone mentions you with @"
        + actor.username
        + ", asks you for a sign-off, or decides on one you asked for."
    )
for item in box.items:
    with st.container(border=True):
        a, b = st.columns([6, 1])
        a.markdown(
            (":blue[:material/fiber_manual_record:] " if item.read_at is None else "") + f"**{md_text(item.title)}**"
        )
        # words, not internal ids: the title already names the object ("churn-classifier v3")
        a.caption(
            f"{KINDS.get(item.kind, item.kind.replace('_', ' '))}"
            + (f" · from {item.from_username}" if item.from_username else "")
            + f" · {session.fmt_time(item.created_at)}"
        )
        page = ENTITY_PAGES.get(item.entity_type)
        if page:
            a.page_link(
                page,
                label=f"Open the {item.entity_type.replace('_', ' ')}",
                icon=":material/open_in_new:",
                query_params={"id": item.entity_id},
            )
        if item.read_at is None and b.button("Mark read", key=f"inbox_read_{item.id}"):
            collab.mark_read(db, actor=actor, item_ids=[item.id])
            st.rerun()
st.caption(f"{box.total:,} notifications · page {int(page_no)} of {max(1, -(-box.total // page_size))}")
