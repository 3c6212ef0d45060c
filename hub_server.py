"""The UI server: Streamlit's own Starlette app running app.py, plus the session-cookie routes.

`python -m mlops_core ui` / `up` start it with `streamlit run hub_server.py` (Streamlit finds the `st.App`
below and serves it with uvicorn, reading .streamlit/config.toml and the --server.* flags as usual).
"""

import importlib

import streamlit as st

from hub_ui.session_routes import routes

# Imported once here, before the server takes its first request: almost every page needs pandas, pyarrow,
# scipy (drift, through the dataset services) and plotly. Otherwise the first person to open such a page
# after a start waited for these imports: 1-2 s, several on a busy machine (issue 15, speed as a person
# feels it; benchmarks/browser_pages.py shows first opens apart).
for _module in (
    "pandas",
    "pyarrow",
    "plotly.graph_objects",
    "mlops_core.services.deployments",
    "mlops_core.services.experiments",
    "mlops_core.services.monitoring",
):
    importlib.import_module(_module)

app = st.App("app.py", routes=routes)
