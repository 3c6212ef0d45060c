"""Datasets: the list per use case, and (for data engineers) bringing data in: upload a file with a
progress indicator, register a server file or a SQL query, or schedule a recurring ingestion."""

import streamlit as st

from hub_ui import badges, session
from hub_ui.collab import flash
from mlops_core import data_io
from mlops_core.errors import DomainError, PermissionDenied
from mlops_core.services import datasets, usecases
from mlops_core.textsafety import plain_markdown as md_text

actor = session.require_actor()
db = session.db()
st.title("Datasets")
st.caption(
    "Every dataset version is immutable and named by the hash of its content; each is validated against "
    "its dataset's schema. Only validated versions (or failed ones waived with a reason) can be used "
    "for training."
)
flash("datasets")


use_cases = {u.id: u.title for u in usecases.list_use_cases(db, actor=actor, limit=500).items}
ALL = 0
wanted = st.session_state.get("use_case_id")
options = [ALL] + list(use_cases)
if "ds_uc" not in st.session_state and wanted in use_cases:
    st.session_state["ds_uc"] = wanted
uc_filter = st.selectbox(
    "Use case", options, key="ds_uc", format_func=lambda i: "(all use cases)" if i == ALL else use_cases.get(i, f"#{i}")
)
rows = datasets.list_datasets(db, use_case_id=None if uc_filter == ALL else uc_filter)

if not rows:
    st.info(
        "No datasets yet."
        + (" Add the first one below." if session.may("dataset.write") else " A data engineer registers them.")
    )
else:
    st.caption(f"{len(rows):,} dataset{'s' if len(rows) != 1 else ''}")
    for d in rows:
        with st.container(border=True):
            c1, c2, c3 = st.columns([3, 2, 2])
            c1.page_link(
                "pages/dataset.py", label=md_text(d.name), icon=":material/table:", query_params={"id": str(d.id)}
            )
            if d.description:
                c1.caption(md_text(d.description[:200]))
            c2.markdown(f"use case: **{md_text(use_cases.get(d.use_case_id, '—') if d.use_case_id else '—')}**")
            latest = f"v{d.latest_version} · {badges.badge(d.latest_status)}" if d.latest_version else "no versions"
            c3.markdown(f"{d.n_versions} version{'s' if d.n_versions != 1 else ''} · latest {latest}")

if not session.may("dataset.write"):
    st.caption("Only data engineers (and admins) add data; everyone can read it.")
    st.stop()

st.subheader("Add data")
existing = [d.name for d in datasets.list_datasets(db)]
uc_options = [None] + list(use_cases)


def _target(prefix: str):
    """Dataset name (new or existing) and use case, shared by the forms."""
    c1, c2 = st.columns(2)
    name = c1.text_input(
        "Dataset name",
        key=f"{prefix}_name",
        help="letters, digits, '_', '-', '.'; an existing name adds a new version to it",
        placeholder=existing[0] if existing else "customers",
    )
    uc = c2.selectbox(
        "Use case",
        uc_options,
        key=f"{prefix}_uc",
        index=uc_options.index(uc_filter) if uc_filter in uc_options else 0,
        format_func=lambda i: "(none)" if i is None else use_cases.get(i, f"#{i}"),
    )
    return name.strip(), uc


def _show_result(v) -> None:
    if v.deduplicated:
        msg = f"{md_text(v.ref)} already holds exactly this content; no new version was stored."
    else:
        msg = (
            f"Registered {md_text(v.ref, line_start=False)}: {v.n_rows:,} rows × {v.n_cols} columns — {badges.badge(v.status)} "
            f"({v.n_errors} errors, {v.n_warnings} warnings)."
        )
    flash("datasets", msg, "success" if v.status != "failed" else "warning")
    st.session_state["ds_last"] = (v.dataset_id, v.id, v.ref)
    st.rerun()


def _run(label: str, call):
    """Run one registration inside a status box with a progress bar; nothing is stored if it fails. A
    refusal says why at once, in an error box of its own (not inside the collapsed status), and the link
    to a dataset registered earlier goes away."""
    result, refused = None, ""
    st.session_state.pop("ds_last", None)
    with st.status(label, expanded=True) as box:
        bar = st.progress(0.0, text="starting")

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(1.0, max(0.0, float(fraction))), text=message)

        try:
            result = call(progress)
        except PermissionDenied as exc:
            refused = f"Not allowed: {exc}"
        except DomainError as exc:
            refused = str(exc)
        box.update(
            label=label + (" — done" if result else " — refused, nothing stored"),
            state="complete" if result else "error",
            expanded=False,
        )
    if refused:
        st.error(f"**Nothing was stored.** {md_text(refused, line_start=False)}", icon=":material/error:")
    return result


tab_up, tab_path, tab_sql, tab_sched = st.tabs(
    ["Upload a file", "From a server file", "From a SQL query", "Schedule ingestion"]
)
with tab_up:
    with st.form("ds_upload", clear_on_submit=False):
        name, uc = _target("up")
        description = st.text_input("Description (for a new dataset)", key="up_desc")
        file = st.file_uploader(
            f"CSV or Parquet file (up to {data_io.max_upload_bytes() // (1024 * 1024):,} MB)",
            type=["csv", "parquet"],
            key="up_file",
        )
        go = st.form_submit_button("Upload and validate", type="primary")
    if go:
        if file is None:
            st.error("Choose a CSV or Parquet file first.")
        else:
            v = _run(
                f"Registering {data_io.sanitize_filename(file.name)}",
                lambda p: datasets.register_version_from_upload(
                    db,
                    actor=actor,
                    dataset_name=name,
                    fileobj=file,
                    filename=file.name,
                    use_case_id=uc,
                    description=description,
                    progress=p,
                ),
            )
            if v:
                _show_result(v)

with tab_path:
    roots = ", ".join(str(r) for r in data_io.allowed_roots())
    with st.form("ds_path"):
        name, uc = _target("path")
        path = st.text_input("Path on the server", key="path_path", help=f"inside: {roots}")
        go = st.form_submit_button("Register and validate", type="primary")
    st.caption(f"Files are read on the server, only inside: {roots} (MLOPS_INGEST_ROOTS).")
    if go:
        v = _run(
            f"Registering {path}",
            lambda p: datasets.register_version_from_path(
                db, actor=actor, dataset_name=name, path=path, use_case_id=uc, progress=p
            ),
        )
        if v:
            _show_result(v)

with tab_sql:
    conns = []
    with session.service_call():  # a refused MLOPS_SQL_CONNECTIONS (e.g. the app's own database) says which
        conns = sorted(data_io.sql_connections())
    if not conns:
        st.info(
            "No SQL connections are configured. An admin sets MLOPS_SQL_CONNECTIONS, e.g. "
            '{"warehouse": "postgresql://reader@db/warehouse"}; only the names are shown here.'
        )
    else:
        with st.form("ds_sql"):
            name, uc = _target("sql")
            conn = st.selectbox("Connection", conns, key="sql_conn")
            query = st.text_area("Read-only query (SELECT ... or WITH ...)", key="sql_query")
            go = st.form_submit_button("Run and register", type="primary")
        if go:
            v = _run(
                f"Querying {conn}",
                lambda p: datasets.register_version_from_sql(
                    db, actor=actor, dataset_name=name, connection=conn, query=query, use_case_id=uc, progress=p
                ),
            )
            if v:
                _show_result(v)

with tab_sched:
    if not session.may("ingestion.schedule"):
        st.caption("Scheduling ingestion needs the data engineer role.")
    else:
        st.caption(
            "The worker reads the source on this schedule; a new version is created only when the content "
            "changed, and a failed run shows its error on the dataset page."
        )
        with st.form("ds_sched"):
            name, uc = _target("sched")
            kind = st.radio(
                "Source",
                ["path", "sql"],
                horizontal=True,
                key="sched_kind",
                format_func=lambda k: "Server file" if k == "path" else "SQL query",
            )
            location = st.text_input("Server file path, or SQL connection name", key="sched_loc")
            query = st.text_area("Query (for SQL)", key="sched_query")
            c1, c2 = st.columns(2)
            every = c1.number_input("Every (minutes, 0 = use cron)", min_value=0, value=60, step=5, key="sched_every")
            cron = c2.text_input("or cron (UTC), e.g. 0 6 * * *", key="sched_cron")
            go = st.form_submit_button("Schedule", type="primary")
        if go:
            src = None
            with session.service_call():
                src = datasets.schedule_ingestion(
                    db,
                    actor=actor,
                    dataset_name=name,
                    kind=kind,
                    location=location,
                    query=query or None,
                    interval_seconds=int(every) * 60 if every and not cron.strip() else None,
                    cron=cron.strip() or None,
                    use_case_id=uc,
                )
            if src:
                flash("datasets", f"Scheduled {src.schedule_name}: the worker will read {src.location}.")
                st.rerun()

last = st.session_state.get("ds_last")
if isinstance(last, tuple):  # only right after a registration that stored something: that version
    st.page_link(
        "pages/dataset.py",
        label=f"Open {md_text(last[2])}, which you just registered",
        icon=":material/arrow_forward:",
        query_params={"id": str(last[0]), "v": str(last[1])},
    )
