"""Log in with a local account, or with single sign-on when OIDC is configured in secrets."""

import streamlit as st

from hub_ui import session
from mlops_core.errors import AuthenticationFailed, DomainError
from mlops_core.services import users
from mlops_core.textsafety import plain_markdown


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


st.title("MLOps Hub")
st.caption("Use cases, data, experiments, deployments and monitoring — one place for every team.")
# Why the last session ended (expired, deactivated), shown once.
notice = st.session_state.pop(session.LOGIN_NOTICE, None)
if notice:
    st.warning(notice[:1].upper() + notice[1:])

if _oidc_configured():
    user = getattr(st, "user", None)
    if user is not None and getattr(user, "is_logged_in", False):
        try:
            session.logged_in(users.actor_for_email(session.db(), email=user.get("email", "")))
            st.rerun()
        except AuthenticationFailed as exc:
            st.error(plain_markdown(str(exc)))
    if st.button("Sign in with single sign-on", icon=":material/key:"):
        st.login()
    st.divider()

with st.form("login"):
    username = st.text_input("Username", key="login_username")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    try:
        # Throttled in the service: a wait of a few seconds at most after failures (this session's thread
        # only), then a temporary lock.
        session.logged_in(
            users.authenticate(session.db(), username=username, password=password, client=session.client_address())
        )
        st.rerun()
    except AuthenticationFailed as exc:
        st.error(plain_markdown(str(exc)))
    except DomainError as exc:
        st.error(f"Cannot log in right now: {exc}")
