"""One use case: overview and lifecycle, KPIs with charts, discussion, sign-offs, and what the
other stages built for it (datasets, runs, models, deployments, alerts)."""

from datetime import date

import plotly.graph_objects as go
import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, session
from hub_ui import lineage_ui, notify_ui, report_ui, stage_ui, usecase_webhook_ui, value_ui
from hub_ui.empty import nothing_yet
from mlops_core import kpi as kpi_math
from mlops_core.services import experiments, stage_status, usecases, users
from mlops_core.textsafety import plain_markdown, safe_markdown

actor = session.require_actor()
db = session.db()

everything = usecases.list_use_cases(db, actor=actor, limit=500).items
if not everything:
    nothing_yet(
        "There is no use case yet. Create the first one on the portfolio page.",
        title="Use case",
        page="pages/portfolio.py",
        label="Open the portfolio",
        icon=":material/view_kanban:",
    )

titles = {u.id: u.title for u in everything}
# Nothing chosen yet: open the use case with the newest run (as Experiments does), not the first of the
# list (a just-proposed one with nothing in it), so the first look shows a use case where things stand.
default = st.session_state.get("use_case_id")
if default not in titles:
    default = experiments.latest_active_use_case(db, titles)
chosen = session.pick_id_from_query("Use case", titles, key="uc_pick", param="id", default=default)
st.session_state["use_case_id"] = chosen

uc = usecases.get_use_case(db, actor=actor, use_case_id=chosen)
seen_key = f"uc_seen_{uc.id}"
st.session_state.setdefault(seen_key, uc.version)
can_edit = session.may("usecase.write")
can_kpi = session.may("kpi.write")
can_read_in = session.may("kpi.reading")
EDIT_KEYS = [f"uc_edit_{f}_{uc.id}" for f in ("title", "problem", "objectives", "owner", "priority", "target", "tags")]


def reload_edits() -> None:
    for k in EDIT_KEYS:
        st.session_state.pop(k, None)
    st.session_state[seen_key] = usecases.get_use_case(db, use_case_id=chosen).version


st.title(plain_markdown(uc.title))
st.caption(
    f"{badges.badge(uc.status)} · owner {uc.owner_username} · priority {uc.priority}"
    + (f" · target {uc.target_date:%Y-%m-%d}" if uc.target_date else "")
    + (f" · tags: {plain_markdown(', '.join(uc.tags))}" if uc.tags else "")
    + f" · version {uc.version}, last changed by {uc.updated_by} {session.fmt_time(uc.updated_at)}"
)
collab_ui.flash("use_case")
_watch_col, _report_col = st.columns([1, 1], width=420)
with _watch_col:
    notify_ui.watch_button("use_case", uc.id)
with _report_col:
    report_ui.download_button(uc.id, uc.title)
# Where it stands: one tile per stage (data, best model, deployed, live KPIs, alerts, sign-offs), each a link.
stage_ui.status_strip(stage_status.use_case_status(db, actor=actor, use_case_id=uc.id))
if not can_edit:
    st.info(
        "You can read this use case and take part in the discussion; editing it and its KPIs is for "
        "business users (and admins)."
    )

# Keyed and tracked, so the open tab stays open across the rerun that follows an action in it.
tab_overview, tab_kpis, tab_discussion, tab_signoffs, tab_delivery, tab_history = st.tabs(
    ["Overview", "KPIs", "Discussion", "Sign-offs", "Datasets, runs, models, deployments", "History"],
    key=f"uc_tabs_{uc.id}",
    on_change="rerun",
)

# --- overview ------------------------------------------------------------------------------
with tab_overview:
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Problem statement")
        st.markdown(safe_markdown(uc.problem_statement) or "_not written yet_")
        st.subheader("Objectives")
        st.markdown(safe_markdown(uc.objectives) or "_not written yet_")
    with right:
        st.subheader("Team")
        for person in usecases.team(uc):  # each person once, with all their roles (issue 15)
            shown_name = f" ({plain_markdown(person.display_name)})" if person.display_name else ""
            st.markdown(f"- **{person.username}**{shown_name} — {', '.join(person.roles)}")
        st.subheader("Lifecycle")
        st.markdown(" → ".join(badges.badge(s) if s == uc.status else s for s in usecases.STATUSES))
        allowed = usecases.allowed_transitions(uc.status)
        with st.form(f"uc_move_{uc.id}"):
            to = st.selectbox("Move to", allowed, key=f"uc_move_to_{uc.id}", disabled=not can_edit)
            note = st.text_input("Why (optional)", key=f"uc_move_note_{uc.id}", disabled=not can_edit)
            move = st.form_submit_button("Move", disabled=not can_edit)
        if move:
            moved = None
            with session.service_call():
                moved = usecases.transition_use_case(db, actor=actor, use_case_id=uc.id, to_status=to, note=note)
            if moved is not None:
                if st.session_state.get(seen_key) == uc.version:
                    st.session_state[seen_key] = moved.version  # my own move does not make my edits stale
                collab_ui.flash("use_case", f"Moved to {moved.status}.")
                st.rerun()

    # Editing is a choice, not an always-open form: the overview reads as a page.
    editing_key = f"uc_editing_{uc.id}"
    if can_edit and not st.session_state.get(editing_key):
        if st.button("Edit", key=f"uc_edit_open_{uc.id}", icon=":material/edit:"):
            st.session_state[editing_key] = True
            st.rerun()
    if can_edit and st.session_state.get(editing_key):
        st.subheader("Edit")
        all_users = [u.username for u in users.list_users(db, actor=actor) if u.is_active]
        with st.form(f"uc_edit_{uc.id}"):
            new_title = st.text_input("Title", value=uc.title, key=EDIT_KEYS[0], disabled=not can_edit)
            new_problem = st.text_area(
                "Problem statement", value=uc.problem_statement, key=EDIT_KEYS[1], disabled=not can_edit
            )
            new_objectives = st.text_area("Objectives", value=uc.objectives, key=EDIT_KEYS[2], disabled=not can_edit)
            e1, e2, e3 = st.columns(3)
            new_owner = e1.selectbox(
                "Business owner",
                all_users,
                index=all_users.index(uc.owner_username) if uc.owner_username in all_users else 0,
                key=EDIT_KEYS[3],
                disabled=not can_edit,
            )
            new_priority = e2.selectbox(
                "Priority",
                usecases.PRIORITIES,
                index=usecases.PRIORITIES.index(uc.priority),
                key=EDIT_KEYS[4],
                disabled=not can_edit,
            )
            new_target = e3.date_input("Target date", value=uc.target_date, key=EDIT_KEYS[5], disabled=not can_edit)
            new_tags = st.text_input(
                "Tags (comma separated)", value=", ".join(uc.tags), key=EDIT_KEYS[6], disabled=not can_edit
            )
            team_roles = {}
            t_cols = st.columns(len(usecases.MEMBER_ROLES))
            for tc, role in zip(t_cols, usecases.MEMBER_ROLES):
                current = [m.username for m in uc.members if m.role == role]
                team_roles[role] = tc.multiselect(
                    role.replace("_", " ").capitalize(),
                    all_users,
                    default=current,
                    key=f"uc_edit_team_{role}_{uc.id}",
                    disabled=not can_edit,
                )
            save = st.form_submit_button("Save changes", type="primary", disabled=not can_edit)
            cancel = st.form_submit_button("Cancel")
        if cancel:
            reload_edits()
            st.session_state[editing_key] = False
            st.rerun()
        if save:
            saved = None
            with session.service_call():
                saved = usecases.update_use_case(
                    db,
                    actor=actor,
                    use_case_id=uc.id,
                    expected_version=st.session_state[seen_key],
                    title=new_title,
                    problem_statement=new_problem,
                    objectives=new_objectives,
                    owner_username=new_owner,
                    priority=new_priority,
                    target_date=new_target,
                    tags=new_tags,
                    members=team_roles,
                )
            if saved is not None:
                st.session_state[seen_key] = saved.version
                st.session_state[editing_key] = False
                collab_ui.flash("use_case", "Saved.")
                st.rerun()
        if st.session_state[seen_key] != uc.version:
            st.warning(f"This use case changed since you opened it (now version {uc.version}, by {uc.updated_by}).")
        if can_edit and st.button("Reload", key=f"uc_reload_{uc.id}", icon=":material/refresh:"):
            reload_edits()
            st.rerun()

# --- KPIs ----------------------------------------------------------------------------------
with tab_kpis:
    checks = usecases.kpi_status(db, uc)
    if not checks:
        st.caption(
            "No KPI yet. Model KPIs say which metric a model must reach; business KPIs track a "
            "business figure over time."
        )
    else:
        st.dataframe(
            [
                {
                    "KPI": c.kpi.name,
                    "kind": c.kpi.kind,
                    "metric": c.kpi.metric or "",
                    "rule": f"{c.kpi.direction} {c.kpi.target:g}",
                    "warning band": c.kpi.warning,
                    "unit": c.kpi.unit,
                    "baseline": c.kpi.baseline,
                    "now": (
                        "no runs yet"
                        if c.value is None and c.kpi.kind == "model"
                        else "no readings"
                        if c.value is None
                        else f"{c.value:.4g}"
                    ),
                    "status": c.status,
                }
                for c in checks
            ],
            hide_index=True,
            width="stretch",
        )
    business = [k for k in uc.kpis if k.kind == "business"]
    for k in business:
        readings = usecases.list_readings(db, k.id)
        st.markdown(
            f"**{plain_markdown(k.name)}** — target {k.direction} {k.target:g}"
            + plain_markdown(f" {k.unit}" if k.unit else "", line_start=False)
            + (f", baseline {k.baseline:g}" if k.baseline is not None else "")
        )
        if not readings:
            st.caption("No readings yet.")
            continue
        last = readings[-1]
        prog = kpi_math.progress(k.baseline, k.target, last.value)
        m1, m2, m3 = st.columns(3)
        m1.metric(
            "Latest",
            f"{last.value:g}{k.unit}",
            delta=(f"{last.value - readings[-2].value:+.2f}" if len(readings) > 1 else None),
            delta_color="inverse" if k.direction == "<=" else "normal",
        )
        m2.metric("Status", kpi_math.evaluate(k.direction, k.target, k.warning, last.value))
        m3.metric("Progress to target", "—" if prog is None else f"{prog:.0%}")
        fig = go.Figure()
        fig.add_trace(
            go.Scatter(
                x=[r.measured_on for r in readings],
                y=[r.value for r in readings],
                mode="lines+markers",
                name=k.name,
                text=[r.note for r in readings],
                hovertemplate="%{x}: %{y}<br>%{text}",
            )
        )
        fig.add_hline(y=k.target, line_dash="dash", line_color="green", annotation_text=f"target {k.target:g}")
        if k.baseline is not None:
            fig.add_hline(y=k.baseline, line_dash="dot", line_color="gray", annotation_text=f"baseline {k.baseline:g}")
        fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis_title=k.unit or None)
        st.plotly_chart(fig, key=f"kpi_chart_{k.id}")

    if business:
        with st.form(f"kpi_reading_{uc.id}", clear_on_submit=True):
            st.markdown("**Add a reading**")
            r1, r2, r3 = st.columns(3)
            which = r1.selectbox(
                "Business KPI",
                [k.id for k in business],
                format_func=lambda i: next(k.name for k in business if k.id == i),
                key=f"reading_kpi_{uc.id}",
                disabled=not can_read_in,
            )
            value = r2.text_input("Value", key=f"reading_value_{uc.id}", disabled=not can_read_in)
            on = r3.date_input("Date", value=date.today(), key=f"reading_on_{uc.id}", disabled=not can_read_in)
            note = st.text_input("Note", key=f"reading_note_{uc.id}", disabled=not can_read_in)
            add_reading = st.form_submit_button("Add reading", disabled=not can_read_in)
        if add_reading:
            done = None
            with session.service_call():
                done = usecases.add_reading(db, actor=actor, kpi_id=which, value=value, measured_on=on, note=note)
            if done is not None:
                collab_ui.flash("use_case", "Reading added.")
                st.rerun()

    DIRS = {"usual for the metric": None, ">= (higher is better)": ">=", "<= (lower is better)": "<="}
    if st.session_state.pop(f"_kpi_reset_{uc.id}", False):
        # After a KPI was added the form starts empty: the values are set before the widgets exist (deleting
        # the keys after the rerun left the browser showing the previous values).
        for f in ("name", "target", "warning", "unit", "baseline"):
            st.session_state[f"kpi_{f}_{uc.id}"] = ""
        for f in ("kind", "metric", "dir"):
            st.session_state.pop(f"kpi_{f}_{uc.id}", None)
    with st.form(f"kpi_new_{uc.id}"):
        st.markdown("**Add a KPI**")
        kind = st.radio(
            "Kind",
            ["model", "business"],
            horizontal=True,
            key=f"kpi_kind_{uc.id}",
            disabled=not can_kpi,
            help="model: a metric a model must reach; business: a figure you enter readings for",
        )
        k1, k2, k3 = st.columns(3)
        metric = k1.selectbox(
            "Metric (model KPIs)", list(kpi_math.KNOWN_METRICS), key=f"kpi_metric_{uc.id}", disabled=not can_kpi
        )
        name = k2.text_input("Name (business KPIs)", key=f"kpi_name_{uc.id}", disabled=not can_kpi)
        direction = k3.selectbox("Direction", list(DIRS), key=f"kpi_dir_{uc.id}", disabled=not can_kpi)
        k4, k5, k6, k7 = st.columns(4)
        target = k4.text_input("Target", key=f"kpi_target_{uc.id}", disabled=not can_kpi)
        warning = k5.text_input("Warning band (optional)", key=f"kpi_warning_{uc.id}", disabled=not can_kpi)
        unit = k6.text_input("Unit (business KPIs)", key=f"kpi_unit_{uc.id}", disabled=not can_kpi)
        baseline = k7.text_input("Baseline (business KPIs)", key=f"kpi_baseline_{uc.id}", disabled=not can_kpi)
        add_kpi = st.form_submit_button("Add KPI", disabled=not can_kpi)
    if add_kpi:
        done = None
        with session.service_call():
            done = usecases.add_kpi(
                db,
                actor=actor,
                use_case_id=uc.id,
                kind=kind,
                metric=metric if kind == "model" else None,
                name=name if kind == "business" else None,
                direction=DIRS[direction],
                target=target,
                warning=warning,
                unit=unit if kind == "business" else "",
                baseline=baseline if kind == "business" else None,
            )
        if done is not None:
            st.session_state[f"_kpi_reset_{uc.id}"] = True
            collab_ui.flash("use_case", f"KPI added: {plain_markdown(done.label)}.")
            st.rerun()

# --- discussion and sign-offs ---------------------------------------------------------------
with tab_discussion:
    collab_ui.discussion("use_case", uc.id)
    usecase_webhook_ui.section(uc.id)  # the use case's Slack/Teams webhook (issue 18)

with tab_signoffs:
    collab_ui.signoffs(
        "use_case",
        uc.id,
        default_title=f"Approve “{uc.title}” and its KPIs",
        evidence=lambda: {
            "use_case": uc.title,
            "status": uc.status,
            "version": uc.version,
            "kpis": [k.label for k in uc.kpis],
        },
    )


# --- what the other stages built for this use case: readable tables, each row a link -------------------
with tab_delivery:
    st.subheader("Lineage")
    lineage_ui.lineage_section(uc.id)
    stage_ui.delivery_tables(db, uc)

with tab_history:
    hist = usecases.history(db, actor=actor, use_case_id=uc.id)
    st.dataframe(
        [
            {
                "when": session.fmt_time(h.at),
                "from": h.from_status or "—",
                "to": h.to_status,
                "who": h.by_username,
                "note": h.note,
            }
            for h in hist
        ],
        hide_index=True,
        width="stretch",
    )

# --- ML canvas, value model, runs by value (issue 20; widgets in hub_ui/value_ui.py) ----------------
value_ui.use_case_sections(uc)
