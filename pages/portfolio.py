"""Portfolio board: every use case by lifecycle stage, with KPI status lights and owners."""
import streamlit as st

from hub_ui import session
from hub_ui.collab import flash
from mlops_core import kpi as kpi_math
from mlops_core.services import usecases

actor = session.require_actor()
db = session.db()
st.title("Use case portfolio")
st.caption("Each card is a use case at its lifecycle stage. Lights: model KPIs against the best run so far, "
           "business KPIs against their latest reading (🟢 met · 🟡 within the warning band · 🔴 missed · ⚪ no data yet).")
flash("portfolio")

ALL = "(all)"
choices = usecases.filter_choices(db)
c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
owner = c1.selectbox("Owner", [ALL] + choices["owner"], key="pf_owner")
status = c2.selectbox("Status", [ALL] + choices["status"], key="pf_status")
tag = c3.selectbox("Tag", [ALL] + choices["tag"], key="pf_tag")
page_size = 30
page_no = c4.number_input("Page", min_value=1, value=1, step=1, key="pf_page")
result = usecases.list_use_cases(
    db, actor=actor, owner=None if owner == ALL else owner, status=None if status == ALL else status,
    tag=None if tag == ALL else tag, limit=page_size, offset=(int(page_no) - 1) * page_size,
)
pages = max(1, -(-result.total // page_size))
st.caption(f"{result.total:,} use cases · page {int(page_no)} of {pages}")

stages = [s for s in usecases.STATUSES if status == ALL or s == status]
cols = st.columns(len(stages))
by_stage: dict[str, list] = {s: [] for s in stages}
for uc in result.items:
    by_stage.setdefault(uc.status, []).append(uc)
for col, stage in zip(cols, stages):
    with col:
        st.markdown(f"**{stage.capitalize()}** · {result.by_status.get(stage, 0)}")
        for uc in by_stage.get(stage, []):
            with st.container(border=True):
                st.page_link("pages/use_case.py", label=uc.title, query_params={"id": str(uc.id)})
                st.caption(f"owner {uc.owner_username} · {uc.priority}"
                           + (f" · {', '.join(uc.tags)}" if uc.tags else ""))
                checks = usecases.kpi_status(db, uc)
                if not checks:
                    st.caption("no KPIs yet")
                else:
                    lights = []
                    for c in checks:
                        value = "no runs yet" if c.value is None and c.kpi.kind == "model" else (
                            "no readings" if c.value is None else f"{c.value:.3g}")
                        lights.append(f"{kpi_math.LIGHTS[c.status]} {c.kpi.label} ({value})")
                    st.markdown("  \n".join(lights))

st.divider()
can_write = session.may("usecase.write")
st.subheader("New use case")
if not can_write:
    st.caption("Only business users (and admins) create use cases; you can read and comment on all of them.")
with st.form("new_use_case"):
    title = st.text_input("Title", key="new_uc_title", disabled=not can_write)
    problem = st.text_area("Problem statement", key="new_uc_problem", disabled=not can_write)
    objectives = st.text_area("Objectives", key="new_uc_objectives", disabled=not can_write)
    f1, f2, f3 = st.columns(3)
    priority = f1.selectbox("Priority", usecases.PRIORITIES, index=1, key="new_uc_priority", disabled=not can_write)
    target_date = f2.date_input("Target date", value=None, key="new_uc_target", disabled=not can_write)
    tags = f3.text_input("Tags (comma separated)", key="new_uc_tags", disabled=not can_write)
    create = st.form_submit_button("Create use case", type="primary", disabled=not can_write)
if create:
    created = None
    with session.service_call():
        created = usecases.create_use_case(db, actor=actor, title=title, problem_statement=problem,
                                           objectives=objectives, priority=priority, target_date=target_date,
                                           tags=tags)
    if created is not None:
        st.session_state["use_case_id"] = created.id
        st.switch_page("pages/use_case.py", query_params={"id": str(created.id)})
