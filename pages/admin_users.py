"""Admin: add users, change roles, activate/deactivate, unlock logins."""

import streamlit as st

from hub_ui import notify_ui, role_matrix_ui, session
from mlops_core.models.base import ROLES
from mlops_core.services import users

actor = session.require_actor()


def role_words(role: str) -> str:
    """ "data engineer", not data_engineer."""
    return role.replace("_", " ")


st.title("Users & roles")
db = session.db()
rows = users.list_users(db, actor=actor)
st.dataframe(
    [
        {
            "username": u.username,
            "name": u.display_name,
            "role": role_words(u.role),
            "email": u.email,
            "active": u.is_active,
            "last login": session.fmt_time(u.last_login_at),
        }
        for u in rows
    ],
    hide_index=True,
    width="stretch",
)
can_manage = session.may("user.manage")
left, right = st.columns(2)
with left:
    st.subheader("Add a user")
    with st.form("add_user", clear_on_submit=False):
        username = st.text_input("Username", key="new_username")
        display_name = st.text_input("Display name", key="new_display_name")
        email = st.text_input("Email (for single sign-on)", key="new_email")
        role = st.selectbox("Role", ROLES, key="new_role", format_func=role_words)
        password = st.text_input("Initial password (12+ characters)", type="password", key="new_password")
        add = st.form_submit_button("Add user", type="primary", disabled=not can_manage)
    if add:
        with session.service_call(success=f"Added {username}."):
            users.create_user(
                db,
                actor=actor,
                username=username,
                password=password,
                role=role,
                display_name=display_name,
                email=email or None,
            )
with right:
    st.subheader("Change a role")
    with st.form("set_role"):
        who = st.selectbox("User", [u.username for u in rows], key="role_user")
        new_role = st.selectbox("New role", ROLES, key="role_new", format_func=role_words)
        change = st.form_submit_button("Change role", disabled=not can_manage)
    if change:
        with session.service_call(success=f"{who} is now {role_words(new_role)}."):
            users.set_role(db, actor=actor, username=who, role=new_role)
    st.subheader("Activate / deactivate")
    with st.form("set_active"):
        who2 = st.selectbox("User", [u.username for u in rows], key="active_user")
        active = st.toggle("Active", value=True, key="active_value")
        apply = st.form_submit_button("Apply", disabled=not can_manage)
    if apply:
        with session.service_call(success="Saved."):
            users.set_active(db, actor=actor, username=who2, active=active)
    st.subheader("Unlock a login")
    st.caption("After too many failed attempts an account is locked for a while; unlocking ends that now.")
    with st.form("unlock_login"):
        who3 = st.selectbox("User", [u.username for u in rows], key="unlock_user")
        unlock = st.form_submit_button("Unlock", disabled=not can_manage)
    if unlock:
        with session.service_call(success=f"{who3} may log in again."):
            users.unlock_login(db, actor=actor, username=who3)

notify_ui.delivery_log_section()
role_matrix_ui.role_matrix_section()
