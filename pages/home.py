"""Workspace overview: how many things are at each stage, and what happened lately."""

import streamlit as st

from hub_ui import activity_ui, session
from mlops_core.services.overview import workspace_overview

actor = session.require_actor()
st.title("Workspace overview")
ov = workspace_overview(session.db(), actor=actor)

stages: dict[str, list[tuple[str, int]]] = {}
for stage, label, n in ov.counts:
    stages.setdefault(stage, []).append((label, n))
cols = st.columns(max(1, len(stages)))
for col, (stage, items) in zip(cols, stages.items()):
    with col:
        st.subheader(stage)
        for label, n in items:
            st.metric(label, f"{n:,}")

st.subheader("Recent activity")
if not ov.recent:
    st.info("Nothing has happened yet.")
else:
    # what happened in words and the object by its name ("use case Customer churn"), not "use_case 1" (issue 15)
    names = activity_ui.entity_names(session.db(), [(e.entity_type, e.entity_id) for e in ov.recent])
    st.dataframe(
        [
            {
                "when": session.fmt_time(e.at),
                "who": e.actor_username,
                "about": activity_ui.entity_words(e.entity_type, e.entity_id, names),
                "what happened": e.summary,
            }
            for e in ov.recent
        ],
        hide_index=True,
        width="stretch",
        column_config={"what happened": st.column_config.TextColumn(width="large")},
    )
    st.page_link("pages/activity.py", label="All activity", icon=":material/history:")
