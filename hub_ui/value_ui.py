"""ML canvas and value widgets (issue 20): the guided canvas form with per-field comments, the value model,
runs by expected value, the decision threshold, live value; and the portfolio's value lines.

Pages call `use_case_sections(uc)` (use case page) and `portfolio_values(ids)` / `card_value(v)` (portfolio).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from mlops_core.ml import value as value_math
from mlops_core.models.value import ValuePublic
from mlops_core.services import canvas, registry, usecases, value
from mlops_core.textsafety import plain_markdown as md_text

from . import collab as collab_ui
from . import session

PERIOD_WORDS = {p: p for p in value_math.PERIODS}


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def value_text(v: ValuePublic | None) -> str:
    if v is None:
        return "no value model"
    return md_text(v.text or v.reason or "no value")


def canvas_form(uc) -> None:
    """The guided ML canvas of a use case, saved as a new version; comments per field."""
    db = session.db()
    cur = canvas.get_canvas(db, use_case_id=uc.id)
    can_write = session.may("canvas.write")
    st.subheader("ML canvas")
    st.caption(
        "What the model must do, agreed by business and data scientists. Every field is optional; each save "
        f"keeps a version (now version {cur.version}"
        + (f", saved by {cur.created_by}" if cur.created_by else "")
        + "). The problem type and positive class are used by serving and the value model."
    )
    collab_ui.flash(f"canvas_{uc.id}")
    with st.form(f"canvas_form_{uc.id}"):
        values: dict[str, str] = {}
        cols = st.columns(2)
        for i, (key, label, help_text) in enumerate(canvas.FIELDS):
            values[key] = cols[i % 2].text_area(
                label,
                value=cur.fields.get(key, ""),
                placeholder=help_text,
                height=80,
                key=f"canvas_{uc.id}_{key}",
                disabled=not can_write,
            )
        c1, c2 = st.columns(2)
        types = ["", *value_math.PROBLEM_TYPES]
        problem_type = c1.selectbox(
            "Problem type",
            types,
            index=types.index(cur.problem_type) if cur.problem_type in types else 0,
            format_func=lambda t: t or "(not stated)",
            key=f"canvas_{uc.id}_problem_type",
            disabled=not can_write,
        )
        positive = c2.text_input(
            "Positive class (the label the model must find, e.g. 1 or churned)",
            value=cur.positive_class,
            key=f"canvas_{uc.id}_positive",
            disabled=not can_write,
        )
        save = st.form_submit_button("Save canvas", type="primary", disabled=not can_write)
    if save:
        with session.service_call():
            saved = canvas.save_canvas(
                db,
                actor=session.require_actor(),
                use_case_id=uc.id,
                fields=values,
                problem_type=problem_type,
                positive_class=positive,
                expected_version=cur.version,
            )
            collab_ui.flash(f"canvas_{uc.id}", f"Canvas saved (version {saved.version}).")
            st.rerun()
    with st.expander("Comments per field"):
        field = st.selectbox(
            "Field",
            list(canvas.FIELD_KEYS),
            format_func=lambda k: canvas.FIELD_LABELS[k],
            key=f"canvas_{uc.id}_comment_field",
        )
        collab_ui.discussion(canvas.COMMENT_ENTITY, canvas.comment_entity_id(uc.id, field), title="")
    history = canvas.canvas_history(db, use_case_id=uc.id)
    if len(history) > 1:
        with st.expander(f"Canvas history ({len(history)} versions)"):
            for h in history:
                st.markdown(f"**Version {h.version}** · {h.created_by} · {session.fmt_time(h.created_at)}")
                st.caption(md_text("; ".join(f"{canvas.FIELD_LABELS[k]}: {v}" for k, v in h.fields.items())) or "empty")


def new_canvas_fields(disabled: bool = False) -> dict[str, str]:
    """The guided canvas inside the portfolio's "New use case" form (no form of its own): returns
    {"canvas_fields": ..., "problem_type": ..., "positive_class": ...} for usecases.create_use_case."""
    st.markdown("**ML canvas** (optional: what the model must do; saved as the canvas's first version)")
    values: dict[str, str] = {}
    cols = st.columns(2)
    for i, (key, label, help_text) in enumerate(canvas.FIELDS):
        values[key] = cols[i % 2].text_area(
            label, placeholder=help_text, height=80, key=f"new_uc_canvas_{key}", disabled=disabled
        )
    c1, c2 = st.columns(2)
    problem_type = c1.selectbox(
        "Problem type",
        ["", *value_math.PROBLEM_TYPES],
        format_func=lambda t: t or "(not stated)",
        key="new_uc_canvas_problem_type",
        disabled=disabled,
    )
    positive = c2.text_input(
        "Positive class (the label the model must find, e.g. 1 or churned)",
        key="new_uc_canvas_positive",
        disabled=disabled,
    )
    return {"canvas_fields": values, "problem_type": problem_type or "", "positive_class": positive}


def value_model_form(uc) -> None:
    db = session.db()
    vm = value.get_value_model(db, use_case_id=uc.id)
    can_write = session.may("value.write")
    st.subheader("Value model")
    st.caption(
        "What each outcome is worth, in one currency: a gain as a positive number, a cost as a negative one; "
        "and how many records are scored per period. Regression: a cost per unit of error."
    )
    collab_ui.flash(f"value_{uc.id}")
    pt_default = vm.problem_type if vm else (canvas.get_canvas(db, use_case_id=uc.id).problem_type or "binary")
    with st.form(f"value_form_{uc.id}"):
        c1, c2, c3, c4 = st.columns(4)
        types = list(value_math.PROBLEM_TYPES)
        pt = c1.selectbox(
            "Problem type",
            types,
            index=types.index(pt_default) if pt_default in types else 0,
            key=f"vm_{uc.id}_pt",
            disabled=not can_write,
        )
        currency = c2.text_input(
            "Currency", value=vm.currency if vm else "EUR", key=f"vm_{uc.id}_cur", disabled=not can_write
        )
        periods = list(value_math.PERIODS)
        period = c3.selectbox(
            "Period",
            periods,
            index=periods.index(vm.period) if vm else 2,
            key=f"vm_{uc.id}_period",
            disabled=not can_write,
        )
        volume = c4.text_input(
            "Records scored per period",
            value=_num(vm.volume_per_period) if vm else "",
            key=f"vm_{uc.id}_vol",
            disabled=not can_write,
        )
        cells: dict[str, str] = {}
        cols = st.columns(4)
        for col, o in zip(cols, value_math.OUTCOMES):
            cells[o] = col.text_input(
                f"Value of a {o.upper()}",
                value=_num(vm.outcome_values.get(o)) if vm else "",
                help=value_math.OUTCOME_LABELS[o] + " (regression: leave empty)",
                key=f"vm_{uc.id}_{o}",
                disabled=not can_write,
            )
        unit = st.text_input(
            "Regression only: cost per unit of error",
            value=_num(vm.cost_per_unit_error) if vm else "",
            key=f"vm_{uc.id}_unit",
            disabled=not can_write,
        )
        save = st.form_submit_button("Save value model", type="primary", disabled=not can_write)
    if save:
        with session.service_call():
            saved = value.set_value_model(
                db,
                actor=session.require_actor(),
                use_case_id=uc.id,
                problem_type=pt,
                currency=currency,
                period=period,
                volume_per_period=volume,
                outcome_values=cells if pt != "regression" else None,
                cost_per_unit_error=unit if pt == "regression" else None,
            )
            note = f"; still missing {', '.join(saved.missing)}" if saved.missing else ""
            collab_ui.flash(f"value_{uc.id}", f"Value model saved (version {saved.version}){note}.")
            st.rerun()
    if vm is None:
        st.caption("No value model yet.")
        return
    if vm.missing:
        st.warning(f"Value is incomplete: missing {', '.join(vm.missing)}.")
    suggestions = canvas.suggested_kpis(db, use_case_id=uc.id)
    if suggestions:
        st.markdown("**Suggested model KPIs from these costs**")
        for k in suggestions:
            target = f" {k['target']:g}" if k.get("target") is not None else ""
            st.markdown(f"- `{k['metric']} {k['direction']}{target}`: {md_text(k['why'])}")
    gate_kpi = next((k for k in uc.kpis if k.kind == value.VALUE_KPI_KIND), None)
    if gate_kpi is not None:
        st.caption(f"Deployment gate: {md_text(gate_kpi.name)} (margin {gate_kpi.target:g} {vm.currency}).")
    elif session.may("kpi.write") and st.button(
        "Require expected value ≥ the champion's at deployment", key=f"vm_{uc.id}_gate"
    ):
        with session.service_call():
            usecases.add_kpi(db, actor=session.require_actor(), use_case_id=uc.id, kind=value.VALUE_KPI_KIND, target=0)
            collab_ui.flash(
                f"value_{uc.id}", "Deployments of this use case now need an expected value ≥ the champion's."
            )
            st.rerun()
    live = value.live_value(db, use_case_id=uc.id)
    st.markdown("**Live value**" + (f" (deployment {md_text(live['deployment'])})" if live["deployment"] else ""))
    for what in ("realised", "estimated"):
        v = live.get(what)
        if v is not None:
            st.markdown(f"- {what.capitalize()}: {value_text(v)} — {md_text(v.basis)}")
    if live.get("realised") is None and live.get("estimated") is None:
        st.caption(value_text(live["headline"]))
    business = [k for k in uc.kpis if k.kind == "business"]
    if business:
        latest = usecases.latest_readings(db, [k.id for k in business])
        st.markdown("**Business KPIs to compare with the value the model claims**")
        for k in business:
            reading = latest.get(k.id)
            shown = "no reading yet" if reading is None else f"{reading:g} {md_text(k.unit)}"
            st.markdown(f"- {md_text(k.name)}: latest {shown} (target {k.direction} {k.target:g})")


def runs_by_value(uc) -> None:
    db = session.db()
    st.subheader("Runs by expected value")
    order = st.radio(
        "Order",
        ["value", "created_at"],
        horizontal=True,
        format_func=lambda s: "best value first" if s == "value" else "newest first",
        key=f"rv_{uc.id}_sort",
    )
    rows = value.run_values(db, use_case_id=uc.id, sort=order)
    if not rows:
        st.caption("No finished runs yet.")
        return
    table: list[dict[str, Any]] = []
    for r in rows:
        table.append(
            {
                "run": f"#{r.run_id} {r.run_name}",
                "algorithm": r.algorithm,
                "expected value per period (test split)": value_text(r.value),
                "value-maximising threshold": r.best_threshold,
                "value at that threshold": None if r.best_value_per_period is None else round(r.best_value_per_period),
                **{
                    k: round(v, 4)
                    for k, v in r.kpi_metrics.items()
                    if k in ("roc_auc", "recall", "precision", "f1", "accuracy", "mae", "rmse")
                },
            }
        )
    st.dataframe(table, hide_index=True, width="stretch")
    versions = registry.list_model_versions(db, use_case_id=uc.id)
    if versions and session.may("threshold.set"):
        with st.form(f"threshold_{uc.id}"):
            labels = {v.id: f"{v.model_name} v{v.version} (run #{v.run_id})" for v in versions}
            mv_id = st.selectbox("Model version", list(labels), format_func=lambda i: labels[i], key=f"thr_{uc.id}_mv")
            manual = st.text_input("Threshold (empty: the value-maximising one)", key=f"thr_{uc.id}_t")
            go = st.form_submit_button("Set decision threshold")
        if go:
            with session.service_call():
                t = value.choose_threshold(
                    db,
                    actor=session.require_actor(),
                    model_version_id=mv_id,
                    threshold=float(manual) if manual.strip() else None,
                )
                st.success(f"Threshold {t.threshold:g} stored for {labels[mv_id]}; serving uses it from its next load.")
    for v in versions[:5]:
        t = value.get_threshold(db, v.id)
        if t is not None:
            st.caption(
                f"{md_text(v.model_name)} v{v.version}: decision threshold {t.threshold:g} (chosen by {t.chosen_by})"
            )


def use_case_sections(uc) -> None:
    """The canvas and value sections of the use case page."""
    st.divider()
    st.header("ML canvas and value")
    tab_canvas, tab_value, tab_runs = st.tabs(["ML canvas", "Value model", "Runs by value"])
    with tab_canvas:
        canvas_form(uc)
    with tab_value:
        value_model_form(uc)
    with tab_runs:
        runs_by_value(uc)


def portfolio_values(use_case_ids: list[int]) -> dict[int, ValuePublic]:
    """Totals per currency and the ranking by live value; returns {use case id: value} for the cards."""
    items, totals = value.portfolio_values(session.db(), use_case_ids=use_case_ids)
    if totals:
        st.markdown(
            "**Live value per period** (totals per currency): "
            + " · ".join(f"{value_math.format_money(v, k.split()[0])} per {k.split()[-1]}" for k, v in totals.items())
        )
    return {i.use_case_id: i.value for i in items}


def ranking(use_case_ids: list[int]) -> None:
    items, _ = value.portfolio_values(session.db(), use_case_ids=use_case_ids)
    rows = [
        {
            "use case": i.title,
            "deployment": i.deployment_name or "",
            "live value per period": value_text(i.value),
            "basis": i.value.basis,
        }
        for i in items
        if i.value.status != "unavailable" or i.deployment_name
    ]
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")


def card_value(v: ValuePublic | None) -> None:
    if v is None or (v.value_per_period is None and not v.missing):
        return
    st.caption(f"value: {value_text(v)}")


def run_value_line(run_id: int) -> None:
    """The run's expected value per period on its test split, next to its KPI check (run page)."""
    rv = value.run_value(session.db(), run_id=run_id)
    if rv.value.status == "unavailable" and not rv.value.currency:
        return  # the use case has no value model
    at = (
        f"decision threshold {rv.threshold:g}, scores at or above it count as positive"
        if rv.threshold is not None
        else "the model's own decision rule"
    )
    line = f"**Expected value** on the test split, with {at}: {value_text(rv.value)}"
    if rv.best_threshold is not None and rv.best_value_per_period is not None:
        money = value_math.format_money(rv.best_value_per_period, rv.value.currency)
        line += (
            f"  \nBest decision threshold (the one that maximises value on the test split): "
            f"{rv.best_threshold:g}, worth {money} per {rv.value.period}"
        )
    st.markdown(line)
