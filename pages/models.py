"""Model registry: registered models and their versions, aliases, model cards and lineage."""

import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import run_metrics_ui as rm_ui
from hub_ui import session
from mlops_core.errors import DomainError
from mlops_core.services import experiments, registry
from mlops_core.textsafety import code_span
from mlops_core.textsafety import plain_markdown as md_text
from mlops_core.textsafety import safe_markdown

actor = session.require_actor()
db = session.db()
st.title("Models")

search = st.text_input("Search models", key="models_search")
models = registry.list_models(db, search=search or None)
if not models:
    st.info("No registered model yet. Open a finished run and press Register as model.")
    st.stop()
st.dataframe(
    [
        {
            "model": m.name,
            "latest version": m.latest_version,
            "aliases": ", ".join(f"{a} → v{v}" for a, v in sorted(m.aliases.items())),
            "created by": m.created_by,
            "created": session.fmt_time(m.created_at),
        }
        for m in models
    ],
    hide_index=True,
    width="stretch",
)
names = [m.name for m in models]
_want = st.query_params.get("id")  # ?id=<model version id>: links from sign-offs and notifications
if _want and _want.isdigit() and st.session_state.get("_models_qp") != _want:
    st.session_state["_models_qp"] = _want
    try:
        _linked = registry.get_model_version(db, int(_want))
        st.session_state["models_pick"] = _linked.model_name
        st.session_state[f"models_v_{_linked.model_name}"] = _linked.version
    except DomainError:
        pass
if st.session_state.get("models_pick") not in names:
    st.session_state["models_pick"] = names[0]
name = st.selectbox("Model", names, key="models_pick")
versions = registry.list_model_versions(db, model_name=name)
st.subheader(f"{md_text(name)}: versions")
st.dataframe(
    [
        {
            "version": v.version,
            "aliases": ", ".join(v.aliases),
            "run": v.run_id,
            "task": v.task,
            **{k: round(x, 4) for k, x in sorted(v.metrics.items())[:6]},
            "by": v.created_by,
            "registered": session.fmt_time(v.created_at),
        }
        for v in versions
    ],
    hide_index=True,
    width="stretch",
)
by_number = {v.version: v for v in versions}
number = st.selectbox(
    "Version",
    list(by_number),
    format_func=lambda n: f"v{n}" + (f" ({', '.join(by_number[n].aliases)})" if by_number[n].aliases else ""),
    key=f"models_v_{name}",
)
mv = by_number[number]
if session.may("deployment.request"):
    st.page_link(
        "pages/deployments.py",
        label=f"Request deployment of {md_text(name)} v{mv.version}",
        icon=":material/rocket_launch:",
        query_params={"mv": str(mv.id)},
    )

if session.may("model.register"):
    with st.expander("Aliases", icon=":material/label:"):
        c1, c2, c3 = st.columns([2, 1, 1])
        alias = c1.selectbox(
            "Alias",
            ["champion", "challenger"],
            key="models_alias",
            help="moves the alias to this version if another version had it",
        )
        if c2.button(f"Point at v{mv.version}", key="models_set_alias"):
            with session.service_call(f"{name}@{alias} now points at v{mv.version}."):
                registry.set_alias(db, actor=actor, model_name=name, alias=alias, version=mv.version)
        if mv.aliases and c3.button("Remove aliases of this version", key="models_rm_alias"):
            with session.service_call("Removed."):
                for a in mv.aliases:
                    registry.remove_alias(db, actor=actor, model_name=name, alias=a)

try:
    card = registry.model_card(db, mv.id)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

tab_card, tab_lineage, tab_discussion = st.tabs(["Model card", "Lineage", "Discussion"])
with tab_card:
    st.markdown(f"### {md_text(mv.model_name, line_start=False)} v{mv.version}")
    st.markdown(
        f"- **Use case:** {md_text(card.use_case_title or '—', line_start=False)}\n"
        f"- **Trained on:** {md_text(card.dataset_label or '—', line_start=False)}"
        f" (hash `{card.dataset_hash[:12] or '—'}`)\n"
        f"- **Run:** {mv.run_id} — {md_text(card.run_name, line_start=False)} ({card.algorithm.replace('_', ' ')}, by {card.trained_by})\n"
        f"- **Task:** {mv.task or '—'}, target {code_span(mv.target or '—')}\n"
        f"- **Code version:** `{card.code_version[:12] or '—'}`"
    )
    run_plots = experiments.plot_data(db, mv.run_id)
    try:
        card_run = experiments.get_run(db, mv.run_id)
    except DomainError:
        card_run = None
    rows_on = rm_ui.rows_phrase(run_plots, card_run) or "not recorded"
    st.markdown("**Metrics vs KPIs**")
    st.caption(rm_ui.size_line(run_plots, card_run))
    if card.kpi_checks:
        st.dataframe(
            [
                {"KPI": c.kpi.label, "value": c.value, "status": c.status, "computed on": rows_on}
                for c in card.kpi_checks
            ],
            hide_index=True,
        )
    st.dataframe(
        [{"metric": k, "value": v, "computed on": rows_on} for k, v in sorted(mv.metrics.items())], hide_index=True
    )
    if mv.task == "classification":
        rm_ui.per_class_table(run_plots, key=f"models_per_class_{mv.id}")
        if run_plots is not None and (run_plots.roc_curves or run_plots.roc):
            with st.expander("ROC and precision-recall curves", icon=":material/show_chart:"):
                rm_ui.curves(run_plots, card_run, key=f"models_curves_{mv.id}")
    importance = run_plots.permutation_importance if run_plots else []
    if importance:
        st.markdown("**What the model relies on** (permutation importance on the test split: score drop when shuffled)")
        st.dataframe(
            [{"feature": f.feature, "importance": f.importance, "± std": f.std} for f in importance[:10]],
            hide_index=True,
        )
    elif run_plots and run_plots.feature_importance:  # cross-validated runs: the model's own importances
        st.markdown("**What the model relies on** (the model's own feature importances)")
        st.dataframe(
            [{"feature": f.feature, "importance": f.importance} for f in run_plots.feature_importance[:10]],
            hide_index=True,
        )
    st.markdown("**Intended use:** " + (safe_markdown(card.intended_use) or "—"))
    st.markdown("**Limitations:** " + (safe_markdown(card.limitations) or "—"))
    if mv.input_schema:
        with st.expander("Input schema"):
            # categories as words, blank for a number column (it showed "None")
            st.dataframe(
                [
                    {
                        "column": c.get("name"),
                        "type": c.get("type"),
                        "categories": ", ".join(str(v) for v in c.get("categories") or []),
                    }
                    for c in mv.input_schema
                ],
                hide_index=True,
                width="stretch",
            )
    if session.may("model.register"):
        with st.expander("Edit intended use and limitations", icon=":material/edit:"):
            use = st.text_area("Intended use", value=card.intended_use, key=f"models_use_{mv.id}")
            lim = st.text_area("Limitations", value=card.limitations, key=f"models_lim_{mv.id}")
            if st.button("Save card", key=f"models_save_{mv.id}"):
                with session.service_call("Model card saved."):
                    registry.update_card(db, actor=actor, model_version_id=mv.id, intended_use=use, limitations=lim)


def _words(text: str) -> str:
    """ "gradient_boosting" -> "gradient boosting" in lineage labels (algorithm names are snake_case)."""
    return " ".join(w.replace("_", " ") if w.replace("_", "").isalpha() else w for w in str(text).split(" "))


with tab_lineage:
    nodes = registry.lineage(db, mv.id)
    # boxes wide enough for "customers@v2" and a run's name, narrow arrows between them (they took a box's
    # width each, and the boxes broke words in the middle)
    cols = st.columns([5 if i % 2 == 0 else 1 for i in range(len(nodes) * 2 - 1)], vertical_alignment="center")
    titles = {
        "use_case": "Use case",
        "dataset_version": "Dataset version",
        "run": "Run",
        "model_version": "Model version",
        "deployment": "Deployment",
    }
    for i, n in enumerate(nodes):
        with cols[i * 2].container(border=True):
            st.caption(titles.get(n.kind, n.kind))
            st.markdown(f"**{md_text(_words(n.label))}**")
            if n.detail:
                st.caption(md_text(_words(n.detail)))
        if i < len(nodes) - 1:
            cols[i * 2 + 1].markdown("### →")

with tab_discussion:  # comments with @mentions on a model version (issue 18)
    collab_ui.discussion("model_version", mv.id, title="")
