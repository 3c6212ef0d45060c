"""MLOps Hub: the router. Page config, login gate, and st.navigation built per role.

Pages are thin: widgets -> one mlops_core service call -> render. Nothing here starts
threads or jobs (Streamlit re-runs this script on every interaction).
"""

from __future__ import annotations

import streamlit as st

from hub_ui import session
from hub_ui.badges import role_label
from hub_ui.nav import PAGES, SECTIONS, pages_for

st.set_page_config(page_title="MLOps Hub", page_icon=":material/hub:", layout="wide")
session.ensure_schema()

actor = session.refresh_actor()  # re-reads role and active flag, ends idle sessions
if actor is None:
    # Every screen's address shows the login form (a shared link such as /dataset?id=1 is not "Page not
    # found"); after logging in, the rerun opens the page of that same address with its query parameters.
    login_pages = [st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path="login", default=True)]
    login_pages += [
        st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path=spec.url_path)
        for spec in PAGES
        if spec.url_path
    ]
    nav = st.navigation(login_pages, position="hidden")
    session.cookie_scripts()  # deletes the cookie of a session that just ended
    nav.run()
    st.stop()

groups: dict[str, list] = {s: [] for s in SECTIONS}
for spec in pages_for(actor.role):
    groups.setdefault(spec.section, []).append(
        st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=spec.default)
    )
# Recorded for tests and for the Overview's "your screens" hint; the sidebar itself is st.navigation.
st.session_state["nav_titles"] = [p.title for ps in groups.values() for p in ps]
nav = st.navigation({k: v for k, v in groups.items() if v}, expanded=True)
nav.run()

# After nav.run(): the sidebar footer (who is logged in, log out).
with st.sidebar:
    session.cookie_scripts()  # right after logging in: the browser trades a one-time code for the cookie
    st.markdown(f"**{actor.username}** · `{role_label(actor.role)}`")
    if st.button("Log out", icon=":material/logout:", key="logout"):
        session.log_out()
        st.rerun()
