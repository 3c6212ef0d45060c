"""What a data scientist reads on a run and a model card (issue 15): the test-set size next to every metric,
per-class metrics, one ROC / PR curve per class with its area in the legend, the run's dataset version, and
its notes and tags (edited through experiments.annotate_run).

Runs trained before these were kept have no per-class data: they say "not recorded for this run".
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from mlops_core.errors import DomainError
from mlops_core.models.experiments import PlotDataPublic, RunPublic
from mlops_core.services import datasets, experiments
from mlops_core.textsafety import code_span, safe_markdown
from mlops_core.textsafety import plain_markdown as md_text

from . import session

_SAVED = "_run_notes_saved"
NOT_RECORDED = "not recorded for this run (trained before they were kept; reproduce it to get them)"


# --- sizes ------------------------------------------------------------------------------------------------


def _cv(run: RunPublic | None) -> bool:
    return bool(run and (run.config or {}).get("split") == "cv")


def rows_phrase(plots: PlotDataPublic | None, run: RunPublic | None = None) -> str:
    """ "2,000 test rows" (holdout), "2,000 rows, out of fold" (cross-validation), "" when not recorded."""
    if plots is None or not plots.n_test:
        return ""
    return f"{plots.n_test:,} rows, out of fold" if _cv(run) else f"{plots.n_test:,} test rows"


def class_counts_phrase(plots: PlotDataPublic | None) -> str:
    """ "no: 1,600 · yes: 400" for a classifier whose test split's classes were recorded, else ""."""
    if plots is None or not plots.class_counts:
        return ""
    return " · ".join(f"{md_text(k, line_start=False)}: {n:,}" for k, n in plots.class_counts.items())


def size_line(plots: PlotDataPublic | None, run: RunPublic | None = None) -> str:
    """The sentence above a run's metrics: what they were computed on."""
    rows = rows_phrase(plots, run)
    if plots is None or not rows:
        return "Test-set size: not recorded for this run."
    where = (
        f"out-of-fold predictions on all {plots.n_test:,} rows ({(run.config or {}).get('folds', 'k')}-fold cross-validation)"
        if _cv(run)
        else f"the {plots.n_test:,} rows of the test split"
        + (f" (training used {plots.n_train:,})" if plots.n_train else "")
    )
    counts = class_counts_phrase(plots)
    return f"Every test metric is computed on {where}" + (f"; rows per class: {counts}." if counts else ".")


def metric_with_size(name: str, value: float | None, plots: PlotDataPublic | None, run: RunPublic | None = None) -> str:
    """ "recall 0.7100 on 2,000 test rows" (or without the size when it was not recorded)."""
    text = f"{name} {'—' if value is None else f'{value:.4g}'}"
    rows = rows_phrase(plots, run)
    return f"{text} on {rows}" if rows else text


# --- tables -------------------------------------------------------------------------------------------------


def metrics_table(metrics: dict[str, float], plots: PlotDataPublic | None, run: RunPublic | None = None, **extra):
    """Rows for st.dataframe: metric, test value, what it was computed on, and `extra` columns (key -> dict)."""
    rows_text = rows_phrase(plots, run) or "not recorded"
    extra = {c: v for c, v in extra.items() if any(v.get(k) is not None for k in metrics)}  # no column of "None"
    out = []
    for k, v in sorted(metrics.items()):
        row: dict[str, Any] = {"metric": k, "test": v, "computed on": rows_text}
        for col, values in extra.items():
            row[col.replace("_", " ")] = values.get(k)
        out.append(row)
    return out


def per_class_table(plots: PlotDataPublic | None, *, key: str) -> None:
    """Precision, recall, f1 and rows of each class (the positive class marked), or "not recorded"."""
    st.markdown("**Per class** (test split)")
    if plots is None or not plots.per_class:
        st.caption("Per-class metrics: " + NOT_RECORDED)
        return
    pos = plots.positive_class if len(plots.per_class) == 2 else None
    if len(plots.per_class) == 2 and plots.roc_curves:
        pos = plots.roc_curves[0].label  # the class binary metrics and curves are about
    st.dataframe(
        [
            {
                "class": c.label + (" (positive)" if c.label == pos else ""),
                "test rows": c.support,
                "precision": c.precision,
                "recall": c.recall,
                "f1": c.f1,
            }
            for c in plots.per_class
        ],
        hide_index=True,
        key=key,
        column_config={
            "test rows": st.column_config.NumberColumn(format="localized"),
            "precision": st.column_config.NumberColumn(format="%.3f"),
            "recall": st.column_config.NumberColumn(format="%.3f"),
            "f1": st.column_config.NumberColumn(format="%.3f"),
        },
    )


# --- curves -------------------------------------------------------------------------------------------------


def _layout(fig: go.Figure, title: str, x: str, y: str, *, legend_left: bool = False) -> go.Figure:
    """Axes 0-1 and the legend in the corner the curves leave empty (ROC: bottom right; PR: bottom left)."""
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=380,
        margin=dict(t=50, l=60, r=20, b=50),
        legend=dict(
            title="class (area)",
            x=0.02 if legend_left else 1,
            xanchor="left" if legend_left else "right",
            y=0.02,
            yanchor="bottom",
        ),
    )
    fig.update_xaxes(range=[0, 1], constrain="domain")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def roc_figure(plots: PlotDataPublic, run: RunPublic | None = None) -> go.Figure | None:
    traces = [
        go.Scatter(
            x=c.fpr, y=c.tpr, mode="lines", name=f"{c.label} (AUC {c.auc:.3f})" if c.auc is not None else c.label
        )
        for c in plots.roc_curves
    ]
    if not traces and plots.roc:  # a binary run trained before per-class curves: its one curve
        auc = (run.metrics if run else {}).get("roc_auc")
        label = plots.positive_class or "positive class"
        traces = [
            go.Scatter(
                x=plots.roc.fpr,
                y=plots.roc.tpr,
                mode="lines",
                name=f"{label} (AUC {auc:.3f})" if auc is not None else label,
            )
        ]
    if not traces:
        return None
    traces.append(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (AUC 0.500)", line=dict(dash="dash", color="gray"))
    )
    title = "ROC curve" if len(traces) == 2 else "ROC curves, one class vs the rest"
    return _layout(go.Figure(traces), title, "false positive rate", "true positive rate")


def pr_figure(plots: PlotDataPublic) -> go.Figure | None:
    traces = [
        go.Scatter(
            x=c.recall,
            y=c.precision,
            mode="lines",
            name=f"{c.label} (AP {c.average_precision:.3f})" if c.average_precision is not None else c.label,
        )
        for c in plots.pr_curves
    ]
    if not traces and plots.pr:
        traces = [go.Scatter(x=plots.pr.recall, y=plots.pr.precision, mode="lines", name=plots.positive_class or "PR")]
    if not traces:
        return None
    if len(plots.pr_curves) == 1 and plots.pr_curves[0].prevalence is not None:
        base = plots.pr_curves[0].prevalence
        traces.append(
            go.Scatter(
                x=[0, 1],
                y=[base, base],
                mode="lines",
                name=f"chance (AP {base:.3f})",
                line=dict(dash="dash", color="gray"),
            )
        )
    title = "Precision-recall curve" if len(plots.pr_curves) <= 1 else "Precision-recall curves, one class vs the rest"
    return _layout(go.Figure(traces), title, "recall", "precision", legend_left=True)


def curves(plots: PlotDataPublic | None, run: RunPublic | None = None, *, key: str) -> None:
    """ROC and PR side by side (a classifier), or "not recorded" (a classifier without them)."""
    if plots is None or plots.task != "classification":
        return
    roc, pr = roc_figure(plots, run), pr_figure(plots)
    if roc is None and pr is None:
        st.caption("ROC and precision-recall curves: " + NOT_RECORDED)
        return
    c1, c2 = st.columns(2)
    if roc is not None:
        c1.plotly_chart(roc, width="stretch", key=f"{key}_roc")
    if pr is not None:
        c2.plotly_chart(pr, width="stretch", key=f"{key}_pr")
    if rows := rows_phrase(plots, run):
        st.caption(f"Curves on {rows}; AUC: area under the ROC curve, AP: average precision.")


# --- header: dataset version, notes and tags ------------------------------------------------------------------


def dataset_link(run: RunPublic, *, key: str) -> None:
    """ "Trained on customers@v2" linking to that version of that dataset (both ids in the link)."""
    if run.dataset_version_id is None:
        st.caption("Dataset version: not recorded for this run.")
        return
    try:
        v = datasets.get_version(session.db(), run.dataset_version_id)
    except DomainError:
        st.caption(f"Dataset version {run.dataset_version_id} (no longer available).")
        return
    st.page_link(
        "pages/dataset.py",
        label=f"Trained on {md_text(v.ref, line_start=False)}",
        icon=":material/table:",
        query_params={"id": str(v.dataset_id), "v": str(v.id)},
        help=f"dataset hash {run.dataset_hash[:12]}" if run.dataset_hash else None,
    )


def parse_tags(text: str) -> dict[str, str]:
    """ "name = value" per line (":" works too; a bare name is a tag with an empty value); blank lines skipped."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        name, value = (line[:cut], line[cut + 1 :]) if cut >= 0 else (line, "")
        out[name.strip()] = value.strip()
    return out


def tags_text(tags: dict[str, str]) -> str:
    return "\n".join(f"{k} = {v}" if v != "" else k for k, v in tags.items())


def notes_and_tags(run: RunPublic, *, key: str = "run_notes") -> None:
    """The run's notes (markdown) and its own tags, and an editor for whoever may change them."""
    notes = experiments.run_notes(run)
    mine = experiments.user_tags(run)
    if st.session_state.pop(_SAVED, None) == run.id:
        st.success("Notes and tags saved.")
    if mine:
        st.caption("Tags: " + " · ".join(code_span(f"{k}: {v}" if v != "" else k) for k, v in mine.items()))
    if notes:
        with st.container(border=True):
            st.markdown(safe_markdown(notes))
    actor = session.actor()
    if not experiments.may_annotate(actor, run):
        return
    with st.expander("Edit notes and tags", icon=":material/edit_note:", expanded=False):
        new_notes = st.text_area(
            "Notes", value=notes, key=f"{key}_{run.id}_notes", help="Markdown. What you tried, what you saw, what next."
        )
        new_tags = st.text_area(
            "Tags (one per line: name = value)",
            value=tags_text(mine),
            key=f"{key}_{run.id}_tags",
            help="tags set by the hub (mlflow.*, mlops.*, ci.*, executor) are kept and cannot be edited here",
        )
        if st.button("Save notes and tags", key=f"{key}_{run.id}_save", icon=":material/save:"):
            wanted = parse_tags(new_tags)
            saved = False
            with session.service_call():
                experiments.annotate_run(
                    session.db(),
                    actor=actor,
                    run_id=run.id,
                    notes=new_notes,
                    tags={k: v for k, v in wanted.items() if mine.get(k) != v},
                    remove_tags=[k for k in mine if k not in wanted],
                )
                saved = True
            if saved:  # draw the page again with the stored notes and tags
                st.session_state[_SAVED] = run.id
                st.rerun()
