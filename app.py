"""MLOps Hub: the router. Page config, login gate, and st.navigation built per role.

Pages are thin: widgets -> one mlops_core service call -> render. Nothing here starts
threads or jobs (Streamlit re-runs this script on every interaction).
"""

from __future__ import annotations

import streamlit as st

from hub_ui import session
from hub_ui.nav import SECTIONS, pages_for

st.set_page_config(page_title="MLOps Hub", page_icon=":material/hub:", layout="wide")
session.ensure_schema()

actor = session.refresh_actor()  # re-reads role and active flag, ends idle sessions
if actor is None:
    nav = st.navigation(
        [st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path="login")], position="hidden"
    )
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
    st.markdown(f"**{actor.username}** · `{actor.role}`")
    if st.button("Log out", icon=":material/logout:", key="logout"):
        session.log_out()
        st.rerun()
