"""One dataset: its versions, validation report (waive with a reason), profile charts, schema editor,
version-to-version diff, scheduled ingestion runs, and discussion. Everything shown is stored data:
profiles and reports were computed once, when the version was registered."""

import pandas as pd
import streamlit as st

from hub_ui import collab as collab_ui
from hub_ui import badges, compare_ui, drift_format, notify_ui, session
from hub_ui.collab import flash
from hub_ui.empty import nothing_yet
from hub_ui import dataset_quality_ui
from mlops_core.errors import DomainError
from mlops_core.models.datasets import COLUMN_TYPES
from mlops_core.profiling import profile_figure
from mlops_core.services import datasets
from mlops_core.textsafety import code_span
from mlops_core.textsafety import plain_markdown as md_text

actor = session.require_actor()
db = session.db()
SEVERITY = {"error": st.error, "warning": st.warning, "info": st.info}

all_sets = datasets.list_datasets(db)
if not all_sets:
    nothing_yet(
        "There are no datasets yet.",
        title="Dataset",
        page="pages/datasets.py",
        label="Go to Datasets",
        icon=":material/table:",
    )

names = {d.id: d.name for d in all_sets}
_v = st.query_params.get("v")
if _v and _v.isdigit() and not (st.query_params.get("id") or "").isdigit():
    # a link naming only the version (its id is global): open that version's own dataset, never the one
    # picked before (issue 15: "customers@v2" opened wine_lab@v2)
    try:
        st.query_params["id"] = str(datasets.get_version(db, int(_v)).dataset_id)
    except DomainError:
        pass
dataset_id = session.pick_id_from_query("Dataset", names, key="ds_pick", param="id")

d = datasets.get_dataset(db, dataset_id)
versions = datasets.list_versions(db, d.id)
st.title(md_text(d.name))
notify_ui.watch_button("dataset", d.id)
st.caption(
    (md_text(d.description) + " · " if d.description else "")
    + f"{d.n_versions} version{'s' if d.n_versions != 1 else ''} · created {session.fmt_time(d.created_at)}"
)
flash("dataset")

if not versions:
    st.info("This dataset has no versions yet; add one on the Datasets page.")
    st.stop()

st.subheader("Versions")
st.dataframe(
    [
        {
            "version": f"v{v.version}",
            "status": badges.label(v.status),
            "rows": v.n_rows,
            "columns": v.n_cols,
            "errors": v.n_errors,
            "warnings": v.n_warnings,
            "source": v.source,
            "by": v.created_by,
            "when": session.fmt_time(v.created_at),
            "content hash": v.content_hash[:12],
        }
        for v in versions
    ],
    hide_index=True,
    width="stretch",
)
dataset_quality_ui.quality_trends(db, d.id, n_versions=len(versions))
by_id = {v.id: v for v in versions}
# The option is the version number only: the status is shown next to it from this run's data (an option
# label with the status kept saying "failed" after a waiver).
vc = st.columns([3, 2], vertical_alignment="bottom")
with vc[0]:
    version_id = session.pick_id_from_query(
        "Version", {i: f"v{x.version}" for i, x in by_id.items()}, key="ds_ver", param="v"
    )
v = by_id[version_id]
vc[1].markdown(badges.badge(v.status))

tab_report, tab_profile, tab_schema, tab_diff, tab_ingest, tab_talk = st.tabs(
    ["Validation report", "Profile", "Schema", "Compare versions", "Ingestion", "Discussion"]
)

with tab_report:
    report = datasets.get_report(db, v.id)
    head = md_text(
        f"{v.ref}: {v.n_rows:,} rows × {v.n_cols} columns, registered by {v.created_by} "
        f"{session.fmt_time(v.created_at)} from {v.source_kind} {v.source!r}",
        line_start=False,
    )
    if v.status == "validated":
        st.success(f"**Validated** — {head}. It can be used for training.")
    elif v.status == "waived":
        st.warning(
            f"**Waived** by {v.waived_by}: “{md_text(v.waived_reason, line_start=False)}” — {head}. "
            "It can be used for training."
        )
    else:
        st.error(f"**Failed validation** — {head}. It cannot be used for training unless a data engineer waives it.")
    counts = report.counts
    c1, c2, c3 = st.columns(3)
    c1.metric("Errors", counts.get("error", 0))
    c2.metric("Warnings", counts.get("warning", 0))
    c3.metric("Notes", counts.get("info", 0))
    st.caption(
        f"Checked against schema v{report.schema_version if report.schema_version is not None else '?'}"
        + (f"; drift compared with {report.compared_with}" if report.compared_with else "")
    )
    for f in report.findings:
        SEVERITY.get(f.severity, st.info)(
            f"**{f.kind.replace('_', ' ')}**"
            + (f" · {code_span(f.column)}" if f.column else "")
            + f" — {md_text(f.message, line_start=False)}"
        )
    drift = report.drift
    if drift:
        with st.expander(f"Drift per column ({drift.number_of_drifted_columns} of {drift.number_of_columns} drifted)"):
            rows = [drift_format.column_row(c, x) for c, x in drift.columns.items()]
            # tall enough for ~25 columns without a scroll box (35 px a row, plus the header)
            st.dataframe(rows, hide_index=True, width="stretch", height=38 + 35 * min(len(rows), 25))
    dataset_quality_ui.report_downloads(db, v)
    if v.status == "failed" and session.may("dataset.approve"):
        with st.form(f"waive_{v.id}"):
            reason = st.text_area(
                "Reason for the waiver (why the failed checks are acceptable)", key=f"waive_reason_{v.id}"
            )
            go = st.form_submit_button("Waive and allow training")
        if go:
            done = None
            with session.service_call():
                done = datasets.waive_version(db, actor=actor, version_id=v.id, reason=reason)
            if done:
                flash("dataset", f"{done.ref} waived; it can now be used for training.")
                st.rerun()
    if session.may("dataset.approve"):
        if st.button("Check again against the current schema", key=f"recheck_{v.id}"):
            done = None
            with st.status(f"Checking {v.ref} again", expanded=False) as box:
                with session.service_call():
                    done = datasets.revalidate_version(db, actor=actor, version_id=v.id)
                box.update(state="complete" if done else "error")
            if done:
                flash("dataset", f"{done.ref} re-checked: {done.status}.")
                st.rerun()
    # One click downloads the data (built when clicked, not on every rerun).
    st.download_button(
        "Download the data (CSV)",
        data=lambda: datasets.export_csv(db, v.id),
        file_name=f"{d.name}_v{v.version}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key=f"dl_{v.id}",
        help="Cells that a spreadsheet could run as a formula (starting with = + - @) are prefixed with a quote.",
    )

with tab_profile:
    profile = datasets.get_profile(db, v.id)
    if not profile:
        st.info("No profile is stored for this version.")
    else:
        st.caption(
            f"{profile.n_rows:,} rows · {profile.duplicate_rows:,} duplicate rows · computed once at registration"
            " · figures: exact, or ≈ a sketch (t-digest quantiles, HyperLogLog distinct counts, Misra-Gries top values)"
        )
        summary = []
        for c in profile.columns:
            sketched = [f"{k} ({v.removeprefix('sketch: ')})" for k, v in (c.kinds or {}).items() if v != "exact"]
            summary.append(
                {
                    "column": c.name,
                    "type": c.type,
                    "nulls": c.nulls,
                    "null share": c.null_share,
                    "min": c.min,
                    "mean": c.mean,
                    "max": c.max,
                    "std": c.std,
                    "distinct": "" if c.distinct is None else str(c.distinct),
                    "figures": ("≈ " + ", ".join(sketched)) if sketched else ("exact" if c.kinds else ""),
                }
            )
        st.dataframe(summary, hide_index=True, width="stretch")
        charts = [c for c in profile.columns if c.chart]
        for i in range(0, len(charts), 2):
            cols = st.columns(2)
            for col, c in zip(cols, charts[i : i + 2]):
                fig = profile_figure(c)
                if fig is not None:
                    col.plotly_chart(fig, key=f"chart_{v.id}_{c.name}", width="stretch")

with tab_schema:
    schema = datasets.current_schema(db, d.id)
    if schema is None:
        st.info("No schema yet.")
    else:
        st.caption(
            f"Schema v{schema.version} by {schema.created_by}, {session.fmt_time(schema.created_at)}"
            + (f" — {md_text(schema.note, line_start=False)}" if schema.note else "")
            + ". New versions are checked against it: types, allowed share of empty cells, numeric ranges, "
            "and the allowed categories."
        )
        frame = pd.DataFrame(
            [
                {
                    "name": c["name"],
                    "type": c["type"],
                    "nullable": bool(c.get("nullable")),
                    "max_null_share": float(c.get("max_null_share") or 0.0),
                    "min": c.get("min"),
                    "max": c.get("max"),
                    "categories": ", ".join(c.get("categories") or []),
                }
                for c in schema.columns
            ]
        )
        frame["min"] = pd.to_numeric(frame["min"], errors="coerce")
        frame["max"] = pd.to_numeric(frame["max"], errors="coerce")
        can_edit = session.may("dataset.write")
        edited = st.data_editor(
            frame,
            key=f"schema_{d.id}_{schema.version}",
            hide_index=True,
            width="stretch",
            disabled=not can_edit,
            num_rows="dynamic" if can_edit else "fixed",
            column_config={
                "type": st.column_config.SelectboxColumn("type", options=list(COLUMN_TYPES), required=True),
                "max_null_share": st.column_config.NumberColumn(
                    "allowed empty share", min_value=0.0, max_value=1.0, step=0.01, format="%.2f"
                ),
                "categories": st.column_config.TextColumn("categories (comma-separated)"),
            },
        )
        if can_edit:
            note = st.text_input("What changed and why", key=f"schema_note_{d.id}")
            if st.button("Save schema as a new version", key=f"schema_save_{d.id}", type="primary"):
                cols = []
                for row in edited.to_dict("records"):
                    if not str(row.get("name") or "").strip():
                        continue
                    c = {
                        "name": row["name"],
                        "type": row["type"],
                        "nullable": bool(row["nullable"]),
                        "max_null_share": row["max_null_share"],
                        "min": row["min"],
                        "max": row["max"],
                    }
                    if row["type"] == "category":
                        c["categories"] = row["categories"] or ""
                    cols.append(c)
                saved = None
                with session.service_call():
                    saved = datasets.update_schema(
                        db, actor=actor, dataset_id=d.id, columns=cols, note=note, expected_version=schema.version
                    )
                if saved:
                    flash(
                        "dataset",
                        f"Saved schema v{saved.version}. New versions are checked against it; use "
                        "'Check again' on a version to re-check it.",
                    )
                    st.rerun()
        history = datasets.schema_history(db, d.id)
        if len(history) > 1:
            with st.expander(f"Schema history ({len(history)} versions)"):
                for h in history:
                    st.markdown(
                        f"**v{h.version}** · {h.created_by} · {session.fmt_time(h.created_at)} — "
                        + md_text(h.note or "—", line_start=False)
                    )
        dataset_quality_ui.schema_diff_section(db, d.id, history)

with tab_diff:
    if len(versions) < 2:
        st.info("Only one version so far; a comparison needs two.")
    else:
        c1, c2 = st.columns(2)
        ids = [x.id for x in versions]
        older = c1.selectbox("From", ids, index=1, key="diff_from", format_func=lambda i: f"v{by_id[i].version}")
        newer = c2.selectbox("To", ids, index=0, key="diff_to", format_func=lambda i: f"v{by_id[i].version}")
        diff = datasets.diff_versions(db, from_version_id=older, to_version_id=newer)
        if diff.same_content:
            st.info("Both are the same content.")
        st.caption(
            f"{md_text(diff.from_ref)} → {md_text(diff.to_ref, line_start=False)}: "
            f"rows {diff.rows[0]:,} → {diff.rows[1]:,}"
        )
        for change, verb in (("removed", "Removed in"), ("added", "Added in"), ("type changed", "Type changed in")):
            named = [r.column for r in diff.columns if r.change == change]
            if named:
                st.warning(
                    f"**{verb} {md_text(diff.to_ref, line_start=False)}:** "
                    + ", ".join(code_span(c) for c in named)
                    + (" (not in the newer version)" if change == "removed" else "")
                )

        def pair(x):
            a, b = (drift_format.num(v) if isinstance(v, float) else v for v in x)
            return "—" if a is None and b is None else f"{a if a is not None else '—'} → {b if b is not None else '—'}"

        drift_cols = diff.drift.columns if diff.drift else {}
        st.dataframe(
            [
                {
                    "column": r.column,
                    "change": r.change or "·",
                    "type": r.type,
                    "null share": pair(r.null_share),
                    "mean": pair(r.mean),
                    "min": pair(r.min),
                    "max": pair(r.max),
                    "distinct": pair(r.distinct),
                    "drifted": drift_format.yes_no(drift_cols[r.column].drifted) if r.column in drift_cols else "",
                    "shift": drift_format.effect_text(drift_cols[r.column].effect) if r.column in drift_cols else "",
                    "test": (
                        drift_format.stat_text(
                            drift_cols[r.column].method, drift_cols[r.column].score, drift_cols[r.column].statistic
                        )
                        if r.column in drift_cols
                        else ""
                    ),
                }
                for r in diff.columns
            ],
            hide_index=True,
            width="stretch",
        )
        if diff.drift:
            st.caption(
                f"Drift on sampled rows: {diff.drift.number_of_drifted_columns} of "
                f"{diff.drift.number_of_columns} columns drifted (share {diff.drift.drift_share:.0%})."
            )
        compare_ui.render_distribution(db, older, newer, [r.column for r in diff.columns if not r.change])

with tab_ingest:
    sources = datasets.list_ingestion_sources(db, d.id)
    if not sources:
        st.caption("No scheduled ingestion for this dataset. A data engineer can add one on the Datasets page.")
    for src in sources:
        with st.container(border=True):
            when = f"every {src.interval_seconds // 60} min" if src.interval_seconds else f"cron '{src.cron}' (UTC)"
            st.markdown(
                f"**{md_text(src.schedule_name)}** · {src.kind} {code_span(src.location)} · {when} · "
                f"{'enabled' if src.enabled else 'paused'}"
            )
            if src.query:
                st.code(src.query, language="sql")
            if src.last_status == "failed":
                st.error(
                    f"Last run failed {session.fmt_time(src.last_run_at)}: " + md_text(src.last_error, line_start=False)
                )
            elif src.last_status:
                st.caption(
                    f"Last run {session.fmt_time(src.last_run_at)}: {md_text(src.last_status, line_start=False)}"
                )
            runs = datasets.list_ingestion_runs(db, src.id)
            if runs:
                st.dataframe(
                    [
                        {
                            "started": session.fmt_time(r.started_at),
                            "status": r.status,
                            "version": f"v{by_id[r.version_id].version}" if r.version_id in by_id else "",
                            "error": r.error or "",
                        }
                        for r in runs
                    ],
                    hide_index=True,
                    width="stretch",
                )
            if session.may("ingestion.schedule"):
                label = "Pause" if src.enabled else "Resume"
                if st.button(label, key=f"ing_toggle_{src.id}"):
                    with session.service_call():
                        datasets.set_ingestion_enabled(db, actor=actor, source_id=src.id, enabled=not src.enabled)
                        flash("dataset", f"{label}d {src.schedule_name}.")
                        st.rerun()

with tab_talk:
    collab_ui.discussion("dataset", d.id)
