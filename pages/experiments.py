"""Experiments: launch no-code runs (queued for the worker), watch them live, and browse every run with
server-side filters, sorting, pagination and KPI lights."""

import streamlit as st

from hub_ui import badges, session
from mlops_core.ml import training
from mlops_core.ml.algorithms import ALGORITHMS, TASKS, algorithms_for
from mlops_core.errors import DomainError
from mlops_core.services import canvas, datasets, experiments, preferences, usecases
from mlops_core.textsafety import plain_markdown as md_text

actor = session.require_actor()
db = session.db()
st.title("Experiments")

use_cases = usecases.list_use_cases(db, actor=actor, limit=500).items
if not use_cases:
    st.info("There is no use case yet: a business user creates one on the Portfolio page, then data and runs follow.")
    st.stop()
titles = {u.id: u.title for u in use_cases}
# Which use case: the one in the URL (?use_case=, a link or bookmark) when it changed, else the one chosen
# on this or another page, else the one with the most recent run, else the first.
qp = st.query_params.get("use_case")
wanted = int(qp) if qp and qp.isdigit() and int(qp) in titles else None
if wanted is not None and st.session_state.get("_exp_uc_qp") != wanted:
    st.session_state["use_case_id"] = wanted
elif st.session_state.get("use_case_id") not in titles:
    st.session_state["use_case_id"] = experiments.latest_active_use_case(db, titles) or use_cases[0].id
use_case_id = st.selectbox("Use case", list(titles), format_func=titles.get, key="use_case_id")
st.query_params["use_case"] = str(use_case_id)
st.session_state["_exp_uc_qp"] = use_case_id

# --- launch -------------------------------------------------------------------------------------
if session.may("run.start"):
    with st.expander(
        "Launch an experiment", expanded=st.session_state.get("exp_launch_open", False), icon=":material/rocket_launch:"
    ):
        versions = datasets.trainable_versions(db, use_case_id=use_case_id)
        if not versions:
            st.warning(
                "This use case has no validated (or waived) dataset version yet; training needs one. "
                "A data engineer registers and validates data on the Data pages."
            )
        else:
            labels = {v.id: f"{v.ref} · {v.n_rows:,} rows · {v.status}" for v in versions}
            version_id = st.selectbox(
                "Dataset version (validated or waived)", list(labels), format_func=labels.get, key="exp_version"
            )
            version = next(v for v in versions if v.id == version_id)
            columns = [c["name"] for c in version.columns]
            default_target = "churned" if "churned" in columns else columns[-1]
            target = st.selectbox("Target column", columns, index=columns.index(default_target), key="exp_target")
            suggested = experiments.suggest_task_for(db, dataset_version_id=version_id, target=target)
            stated = canvas.problem_settings(db, use_case_id)[0]  # the ML canvas's problem type wins (issue 20)
            suggested = ("regression" if stated == "regression" else "classification") if stated else suggested
            task = st.radio(
                "Task",
                TASKS,
                index=TASKS.index(suggested),
                horizontal=True,
                key=f"exp_task_{version_id}_{target}",
                help=f"from the ML canvas: {stated}" if stated else f"suggested from the target: {suggested}",
            )
            features = st.multiselect(
                "Features",
                [c for c in columns if c != target],
                default=[c for c in columns if c != target],
                key=f"exp_features_{version_id}_{target}",
            )
            choices = algorithms_for(task)
            algorithms = st.multiselect(
                "Algorithms (one run each)",
                choices,
                default=choices[:1],
                format_func=lambda k: ALGORITHMS[k].label,
                key=f"exp_algs_{task}",
            )
            params_by_algorithm = {}
            if algorithms:
                st.caption(
                    "Hyperparameters: defaults are filled in. Several comma-separated values make a search "
                    f"(grid, or random with a draw count; at most {training.MAX_SEARCH_COMBINATIONS} "
                    "combinations)."
                )
                for alg in algorithms:
                    spec = ALGORITHMS[alg]
                    cols = st.columns(len(spec.params))
                    params = {}
                    for col_, (name, p) in zip(cols, spec.params.items()):
                        raw = col_.text_input(
                            f"{spec.label}: {name}",
                            value="" if p.default is None else str(p.default),
                            help=p.help or None,
                            key=f"exp_p_{alg}_{name}",
                        )
                        values = [v.strip() for v in raw.split(",")] if "," in raw else raw.strip()
                        params[name] = values
                    params_by_algorithm[alg] = params
            c1, c2, c3, c4 = st.columns(4)
            search = c1.selectbox(
                "Search",
                ["grid", "random"],
                key="exp_search",
                help="used only when a hyperparameter has several values",
            )
            n_iter = c1.number_input("Random search draws", 1, training.MAX_SEARCH_COMBINATIONS, 10, key="exp_n_iter")
            split = c2.radio(
                "Evaluation",
                ["holdout", "cv"],
                key="exp_split",
                format_func={"holdout": "holdout split", "cv": "k-fold CV"}.get,
            )
            test_size = c3.slider("Test share (holdout)", 0.05, 0.5, 0.2, 0.05, key="exp_test_size")
            folds = c3.number_input("Folds (CV)", 2, 20, 5, key="exp_folds")
            seed = c4.number_input("Seed", 0, 2**31 - 1, 42, key="exp_seed")
            name = c4.text_input("Run name (optional)", key="exp_name")
            if st.button(
                "Launch", type="primary", icon=":material/play_arrow:", key="exp_launch", disabled=not algorithms
            ):
                st.session_state["exp_launch_open"] = True
                config = {
                    "target": target,
                    "task": task,
                    "features": features,
                    "search": search,
                    "n_iter": int(n_iter),
                    "split": split,
                    "test_size": float(test_size),
                    "folds": int(folds),
                    "seed": int(seed),
                }
                with session.service_call():
                    runs = experiments.start_runs(
                        db,
                        actor=actor,
                        use_case_id=use_case_id,
                        dataset_version_id=version_id,
                        config=config,
                        algorithms=algorithms,
                        params_by_algorithm=params_by_algorithm,
                        name=name or None,
                    )
                    st.success(
                        f"Queued {len(runs)} run(s): "
                        + ", ".join(f"run {r.id}" for r in runs)
                        + ". A worker trains them; progress shows below."
                    )


# --- live progress ------------------------------------------------------------------------------
@st.fragment(run_every=2)
def live_progress() -> None:
    active = experiments.active_runs(db, use_case_id=use_case_id)
    ids = {r.id for r in active}
    seen = st.session_state.get("exp_active_ids", set())
    st.session_state["exp_active_ids"] = ids
    if seen - ids:  # a run ended since the last poll: refresh the whole page (table, counts)
        st.rerun()
    st.subheader("In progress")
    if not active:
        st.caption("No run is queued or running.")
        return
    for r in active:
        with st.status(f"Run {r.id} · {md_text(r.name)} · {r.status}", state="running", expanded=True):
            st.progress(min(max(r.progress, 0.0), 1.0), text=md_text(r.progress_message or r.status))


live_progress()

# --- runs table -----------------------------------------------------------------------------------
st.subheader("Runs")
counts = experiments.status_counts(db, use_case_id=use_case_id)
st.caption(" · ".join(f"{n:,} {s}" for s, n in sorted(counts.items())) or "No runs yet.")
choices = experiments.filter_choices(db, use_case_id=use_case_id)
f1, f2, f3, f4, f5 = st.columns([1, 1, 1.2, 1.2, 0.6])
status = f1.multiselect("Status", ["queued", "running", "finished", "failed", "cancelled"], key="exp_f_status")
algorithm = f2.selectbox("Algorithm", ["(all)"] + choices["algorithm"], key="exp_f_alg")
sort_options = ["created_at", "duration", "name"] + [f"metric:{k}" for k in choices["metric"]]
default_sort = "metric:roc_auc" if "metric:roc_auc" in sort_options else "created_at"
SORT_WORDS = {"created_at": "created", "duration": "duration", "name": "name"}
sort = f3.selectbox(
    "Sort by",
    sort_options,
    index=sort_options.index(default_sort),
    key="exp_f_sort",
    format_func=lambda o: SORT_WORDS.get(o) or o.removeprefix("metric:"),  # "created", "roc_auc", not "created_at"
)
search = f4.text_input("Search name / target / algorithm", key="exp_f_search")
ascending = f5.toggle("Ascending", key="exp_f_asc")
page_size = 25
page_no = st.number_input("Page", min_value=1, value=1, step=1, key="exp_page", width=180)
try:
    page = experiments.list_runs(
        db,
        use_case_id=use_case_id,
        status=status or None,
        algorithm=None if algorithm == "(all)" else algorithm,
        search=search or None,
        sort=sort,
        descending=not ascending,
        limit=page_size,
        offset=(int(page_no) - 1) * page_size,
    )
except DomainError as exc:
    st.error(md_text(str(exc)))  # the message quotes the search text
    st.stop()
st.caption(f"{page.total:,} runs · page {int(page_no)} of {max(1, -(-page.total // page_size))}")
lights = experiments.kpi_lights(db, page.items)
# Which columns: chosen per person (remembered in their preferences, like MLflow's and W&B's run tables);
# the metric the table is sorted by always shows, right after the name, so the order is visible.
BASE_COLS = ["status", "algorithm", "source", "KPIs", "by", "created", "seconds"]
param_keys = sorted({k for r in page.items for k, v in r.params.items() if v is not None and v != ""})
col_options = BASE_COLS + list(choices["metric"]) + [f"param: {k}" for k in param_keys]
if "exp_cols" not in st.session_state:
    saved = preferences.run_columns(db, actor=actor)
    # Few enough to fit 1440 px without scrolling sideways (issue 15): the KPI lights, the basics and one
    # headline metric (roc_auc when there is one); more metrics and parameters are a choice away.
    headline = [m for m in ("roc_auc", "r2") if m in choices["metric"]][:1] or list(choices["metric"])[:1]
    default_cols = ["KPIs", "status", "algorithm", "source", "created"] + headline
    st.session_state["exp_cols"] = [c for c in (saved if saved is not None else default_cols) if c in col_options]
else:
    st.session_state["exp_cols"] = [c for c in st.session_state["exp_cols"] if c in col_options]


def _save_columns() -> None:
    with session.service_call():
        preferences.set_run_columns(db, actor=actor, columns=st.session_state["exp_cols"])


shown_cols = st.multiselect(
    "Columns", col_options, key="exp_cols", on_change=_save_columns, help="Remembered for you on every visit."
)
sort_metric = sort.removeprefix("metric:") if sort.startswith("metric:") else None
# The sorted-by metric right after the name, then the KPI lights (when shown): both pinned with the run and
# its name, so they stay in view however many columns are chosen.
lead = ([sort_metric] if sort_metric else []) + (["KPIs"] if "KPIs" in shown_cols else [])
ordered = lead + [c for c in shown_cols if c not in lead]


def _param_cell(v) -> str:
    """Text (a column may mix numbers and words): blank where the algorithm has no such parameter, integers
    as integers."""
    if v is None or v == "":
        return ""
    if isinstance(v, float) and v.is_integer() and not isinstance(v, bool):
        return str(int(v))
    return f"{v:.6g}" if isinstance(v, float) else str(v)


rows = []
for r in page.items:
    base = {
        "status": badges.label(r.status),
        "algorithm": r.algorithm.replace("_", " "),
        "source": r.source,
        "KPIs": ", ".join(f"{c.kpi.metric} {badges.label(c.status)}" for c in lights.get(r.id, [])),
        "by": r.created_by,
        "created": session.fmt_time(r.created_at),
        "seconds": round(r.duration_seconds, 1) if r.duration_seconds else None,
    }
    row = {"run": r.id, "name": r.name}
    for c in ordered:
        if c in base:
            row[c] = base[c]
        elif c.startswith("param: "):
            row[c] = _param_cell(r.params.get(c.removeprefix("param: ")))
        else:
            row[c] = r.metrics.get(c)
    rows.append(row)


def _column_config(columns: list[str]) -> dict:
    """Fixed widths (px) and short headers, so the default columns fit the page at 1440x900 without scrolling
    sideways; run, name, the sorted-by metric and the KPI lights are pinned to the left."""
    pinned = {"run", "name", *lead}
    text = {"name": 200, "KPIs": 180, "status": 75, "algorithm": 140, "source": 60, "by": 70, "created": 120}
    config = {}
    for c in columns:
        pin = c in pinned
        if c == "run":
            config[c] = st.column_config.NumberColumn("run", width=50, format="%d", pinned=pin)
        elif c == "seconds":
            config[c] = st.column_config.NumberColumn("secs", width=60, format="%.1f", help="duration in seconds")
        elif c in text:
            config[c] = st.column_config.TextColumn(c, width=text[c], pinned=pin)
        elif c.startswith("param: "):
            config[c] = st.column_config.TextColumn(c, help=f"the run's {c.removeprefix('param: ')} parameter")
        else:  # a metric
            config[c] = st.column_config.NumberColumn(c, width=75, format="%.4f", pinned=pin, help=f"metric {c}")
    return config


if rows:
    event = st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config=_column_config(list(rows[0])),
        on_select="rerun",
        selection_mode="multi-row",
        key="exp_table",
    )
    selected = [rows[i]["run"] for i in event.selection.rows] if event and event.selection else []
    b1, b2, _ = st.columns([1, 1, 3])
    if b1.button("Open run", disabled=len(selected) != 1, key="exp_open", icon=":material/open_in_new:"):
        st.session_state["run_id"] = selected[0]
        st.switch_page("pages/run.py")
    if b2.button("Compare selected", disabled=len(selected) < 2, key="exp_compare", icon=":material/compare:"):
        st.session_state["compare_run_ids"] = selected
        st.switch_page("pages/compare.py")
    st.caption("Select rows to open one run or compare several.")
else:
    st.info(
        "No runs match. "
        + (
            "Launch an experiment above, or log one from code with the tracking SDK."
            if session.may("run.start")
            else "Data scientists launch experiments here or log them from code."
        )
    )
