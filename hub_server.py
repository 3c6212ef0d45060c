"""The UI server: Streamlit's own Starlette app running app.py, plus the session-cookie routes.

`python -m mlops_core ui` / `up` start it with `streamlit run hub_server.py` (Streamlit finds the `st.App`
below and serves it with uvicorn, reading .streamlit/config.toml and the --server.* flags as usual).
"""

import streamlit as st

from hub_ui.session_routes import routes

app = st.App("app.py", routes=routes)
