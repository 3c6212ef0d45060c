"""Portfolio board: every use case by lifecycle stage, with KPI status lights and owners."""

import streamlit as st

from hub_ui import badges, session
from hub_ui.collab import flash
from hub_ui import estimates_ui, stage_ui, value_ui
from mlops_core.services import monitoring, stage_status, usecases
from mlops_core.textsafety import plain_markdown as md_text

actor = session.require_actor()
db = session.db()
st.title("Use case portfolio")
st.caption(
    "Each card is a use case at its lifecycle stage. Lights: model KPIs against the best finished run so "
    f"far, business KPIs against their latest reading ({badges.badge('met')} · {badges.badge('warning')} "
    f"within the warning band · {badges.badge('missed')} · {badges.badge('unknown')} no data yet)."
)
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
    db,
    actor=actor,
    owner=None if owner == ALL else owner,
    status=None if status == ALL else status,
    tag=None if tag == ALL else tag,
    limit=page_size,
    offset=(int(page_no) - 1) * page_size,
)
pages = max(1, -(-result.total // page_size))
st.caption(f"{result.total:,} use cases · page {int(page_no)} of {pages}")

stages = [s for s in usecases.STATUSES if status == ALL or s == status]
st.markdown(" · ".join(f"**{s.capitalize()}** {result.by_status.get(s, 0)}" for s in stages))
statuses = usecases.kpi_status_many(db, result.items)  # the lights of every card on this page, in two queries
values = value_ui.portfolio_values([uc.id for uc in result.items])  # live value per card, totals per currency
# Deployments, open alerts, waiting sign-offs and the next step of every card, in a fixed number of queries.
stages_now = stage_status.status_many(db, actor=actor, use_cases=result.items)
# Deployed models' KPIs estimated from their scores where the latest check had too few labels (issue 17).
estimated = monitoring.estimated_kpis_many(db, use_case_ids=[uc.id for uc in result.items])
by_stage: dict[str, list] = {}
for uc in result.items:
    by_stage.setdefault(uc.status, []).append(uc)
# One column per stage that has use cases on this page (at most 4 a row), so cards stay readable.
shown = [s for s in stages if by_stage.get(s)]
if not shown:
    st.info(
        "No use case matches these filters."
        if result.total or owner != ALL or tag != ALL
        else "No use case yet: create the first one below."
    )


def _card(uc) -> None:
    """One use case: its link, owner, value, stage lines and KPI lights."""
    st.page_link(
        "pages/use_case.py",
        label=md_text(uc.title),
        query_params={"id": str(uc.id)},
        icon=":material/lightbulb:",
    )
    st.caption(f"owner {uc.owner_username} · {uc.priority}" + (f" · {md_text(', '.join(uc.tags))}" if uc.tags else ""))
    value_ui.card_value(values.get(uc.id))
    stage_ui.card_lines(stages_now.get(uc.id))
    estimates_ui.card_lines(estimated.get(uc.id))
    checks = statuses[uc.id]
    if not checks:
        st.caption("no KPIs yet")
        return
    lights = []
    for c in checks:
        value = (
            "no runs yet"
            if c.value is None and c.kpi.kind == "model"
            else ("no readings" if c.value is None else f"{c.value:.3g}")
        )
        lights.append(f"{badges.badge(c.status)} {md_text(c.kpi.label)} ({value})")
    st.markdown("  \n".join(lights))


# Cards side by side are the same height (issue 15): each row of cards is one row of columns, and every card
# stretches to the tallest card of its row, so a card with less to say does not end short of its neighbour.
for row_start in range(0, len(shown), 4):
    row = shown[row_start : row_start + 4]
    for col, stage in zip(st.columns(4), row):
        col.markdown(f"#### {stage.capitalize()} · {result.by_status.get(stage, 0)}")
    for i in range(max(len(by_stage[stage]) for stage in row)):
        for col, stage in zip(st.columns(4), row):
            if i < len(by_stage[stage]):
                with col, st.container(border=True, height="stretch", key=f"pf_card_{by_stage[stage][i].id}"):
                    _card(by_stage[stage][i])

with st.expander("Use cases by live value per period"):
    value_ui.ranking([uc.id for uc in result.items])

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
    canvas_args = value_ui.new_canvas_fields(disabled=not can_write)
    create = st.form_submit_button("Create use case", type="primary", disabled=not can_write)
if create:
    created = None
    with session.service_call():
        created = usecases.create_use_case(
            db,
            actor=actor,
            title=title,
            problem_statement=problem,
            objectives=objectives,
            priority=priority,
            target_date=target_date,
            tags=tags,
            **canvas_args,
        )
    if created is not None:
        st.session_state["use_case_id"] = created.id
        st.switch_page("pages/use_case.py", query_params={"id": str(created.id)})
