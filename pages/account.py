"""My account: personal access tokens for the SDK and CI, and my password."""

import streamlit as st

from hub_ui import notify_ui, session
from mlops_core.services import users
from mlops_core.textsafety import plain_markdown

actor = session.require_actor()
db = session.db()
st.title("My account")
st.write(f"Logged in as **{actor.username}** with the role **{actor.role.replace('_', ' ')}**.")

st.subheader("Personal access tokens")
st.caption("Use a token with the tracking SDK: `export MLOPS_TOKEN=...`. It is shown once; only its hash is stored.")
with st.form("new_token"):
    name = st.text_input("Label", value="notebook", key="token_label")
    create = st.form_submit_button("Create token")
if create:
    with session.service_call():
        token = users.create_token(db, actor=actor, username=actor.username, name=name)
        st.success("Token created. Copy it now: it will not be shown again.")
        st.code(token)
tokens = users.list_tokens(db, actor=actor, username=actor.username)
for t in tokens:
    c1, c2 = st.columns([4, 1])
    c1.write(
        f"`{t.prefix}…` {plain_markdown(t.name)} — created {session.fmt_time(t.created_at)}, last used "
        f"{session.fmt_time(t.last_used_at)}, "
        f"{'revoked' if t.revoked_at else 'expires'} {session.fmt_time(t.revoked_at or t.expires_at)}"
    )
    if t.revoked_at is None and c2.button("Revoke", key=f"revoke_{t.id}"):
        with session.service_call(success="Revoked."):
            users.revoke_token(db, actor=actor, token_id=t.id)
        st.rerun()

st.subheader("Change password")
with st.form("password", clear_on_submit=True):
    # The current password too: an unattended open tab must not be enough to take the account over.
    current = st.text_input("Current password", type="password", key="pw_current")
    pw = st.text_input("New password (12+ characters)", type="password", key="pw_new")
    pw2 = st.text_input("Repeat", type="password", key="pw_repeat")
    change = st.form_submit_button("Change password")
if change:
    if pw != pw2:
        st.error("The two passwords differ.")
    else:
        with session.service_call(success="Password changed."):
            users.change_password(
                db,
                actor=actor,
                username=actor.username,
                new_password=pw,
                current_password=current,
                client=session.client_address(),
            )

notify_ui.settings_section()
