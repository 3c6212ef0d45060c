"""Activity: the audit trail, filtered and paginated in SQL."""

import streamlit as st

from hub_ui import activity_ui, session
from mlops_core.services import audit

actor = session.require_actor()
st.title("Activity")
st.caption("Every write through MLOps Hub: who, what, which entity, when, and what changed.")
choices = audit.distinct_values(session.db(), actor=actor)
c1, c2, c3, c4 = st.columns(4)
entity_type = c1.selectbox("Entity", ["(all)"] + choices["entity_type"], key="act_entity")
username = c2.selectbox("Who", ["(all)"] + choices["username"], key="act_who")
action = c3.text_input("Action starts with", key="act_action")
page_size = 50
page = c4.number_input("Page", min_value=1, value=1, step=1, key="act_page")
d1, d2, d3 = st.columns([2, 1, 1])
days = d1.date_input("Dates (UTC, both days included)", value=[], key="act_dates", format="YYYY-MM-DD")
show = d2.radio("Show", ["Everything", "Logins"], horizontal=True, key="act_show")
filters = dict(
    entity_type=None if entity_type == "(all)" else entity_type,
    username=None if username == "(all)" else username,
    action=action or None,
    actions=audit.LOGIN_ACTIONS if show == "Logins" else None,
    **activity_ui.date_bounds(days),
)
result = audit.list_events(session.db(), actor=actor, limit=page_size, offset=(int(page) - 1) * page_size, **filters)
st.caption(f"{result.total:,} events · page {int(page)} of {max(1, -(-result.total // page_size))}")
activity_ui.csv_download(d3, session.db(), actor, filters, disabled=result.total == 0)
# names, not internal ids: "churn-classifier v3", the deployment's name (issue 15)
names = activity_ui.entity_names(session.db(), [(e.entity_type, e.entity_id) for e in result.events])
st.dataframe(
    [
        {
            "when": session.fmt_time(e.at),
            "who": e.actor_username,
            "action": e.action,
            "entity": (e.entity_type or "").replace("_", " "),
            "which": names.get((e.entity_type, e.entity_id), e.entity_id),
            "summary": e.summary,
            "changes": "; ".join(audit.describe_changes(e.before, e.after)),
        }
        for e in result.events
    ],
    hide_index=True,
    width="stretch",
)
