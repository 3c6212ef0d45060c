"""The use case page's status strip and the delivery tables, and the portfolio card's stage lines
(issue 15, problems 6 and 8). Data from mlops_core/services/stage_status.py; lights via hub_ui/badges.py."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from hub_ui import badges, session
from mlops_core.models.stage_status import UseCaseStatusPublic
from mlops_core.textsafety import plain_markdown


def light(state: str) -> str:
    return badges.badge(f"stage_{state}")


def status_strip(status: UseCaseStatusPublic) -> None:
    """One tile per stage across the top: its light, a short line, and a link to the page that shows it."""
    cols = st.columns(len(status.tiles))
    for col, tile in zip(cols, status.tiles):
        with col.container(border=True, key=f"stage_tile_{tile.stage}"):
            st.markdown(f"**{tile.title}**  \n{light(tile.state)}")
            st.markdown(plain_markdown(tile.value))
            if tile.detail:
                st.caption(plain_markdown(tile.detail))
            st.page_link(tile.page, label="Open", icon=":material/arrow_forward:", query_params=tile.params or None)
    next_step(status)


def next_step(status: UseCaseStatusPublic, *, compact: bool = False) -> None:
    text = f"**Next:** {plain_markdown(status.next_step)}"
    if status.suggested_status:
        text += f" The evidence says this use case is at {badges.badge(status.suggested_status)}."
    if compact:
        st.caption(text)
        return
    c1, c2 = st.columns([5, 1])
    c1.markdown(text)
    with c2:
        st.page_link(status.next_page, label="Go", icon=":material/east:", query_params=status.next_params or None)


def card_lines(status: UseCaseStatusPublic | None) -> None:
    """Deployments, open alerts and the next step on a portfolio card."""
    if status is None:
        return
    lines = []
    for d in status.deployments[:3]:
        served = plain_markdown(d.model) if d.model else "nothing served yet"
        lines.append(
            f":material/rocket_launch: {plain_markdown(d.name)} ({d.environment}): {served}"
            + (f" · {d.open_alerts} alert{'s' if d.open_alerts != 1 else ''}" if d.open_alerts else "")
        )
    if not status.deployments:
        lines.append(":material/rocket_launch: not deployed")
    if status.open_alerts:
        lines.append(
            f"{badges.badge('critical' if status.critical_alerts else 'open')} "
            f"{status.open_alerts} open alert{'s' if status.open_alerts != 1 else ''}"
        )
    if status.pending_signoffs:
        lines.append(f"{badges.badge('pending')} {status.pending_signoffs} sign-off(s) waiting")
    st.markdown("  \n".join(lines))
    next_step(status, compact=True)


def _when(dt) -> str:
    return session.fmt_time(dt)


# --- "Datasets, runs, models, deployments": readable tables with links ---------------------------------------


def _origin() -> str:
    """scheme://host:port of the page being served (a link column wants a full URL); "" when unknown."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no script run context, or AppTest's mock context
        return ""
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme in ("http", "https") and parts.netloc else ""


def _link(page_url: str, **params) -> str:
    """A link to another screen of this app; LinkColumn shows it as "Open"."""
    query = urlencode({k: str(v) for k, v in params.items()})
    path = f"{page_url}?{query}" if query else page_url
    return _origin() + path


def _table(rows: list[dict], link_label: str = "Open") -> None:
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={"Link": st.column_config.LinkColumn("Link", display_text=link_label, width="small")},
    )


def _metric(v) -> str:
    return "—" if v is None else f"{v:.3f}".rstrip("0").rstrip(".")


def delivery_tables(db, uc) -> None:
    """What the other stages built for this use case, one readable table each, every row linking to its page."""
    from mlops_core.services import datasets, deployments, experiments, monitoring, registry

    kpi_metrics = [k.metric for k in uc.kpis if k.kind == "model" and k.metric]

    st.subheader("Datasets")
    ds = datasets.list_datasets(db, use_case_id=uc.id)
    if not ds:
        st.caption("No datasets for this use case yet.")
    else:
        _table(
            [
                {
                    "Dataset": d.name,
                    "Latest version": f"v{d.latest_version}" if d.latest_version else "—",
                    "Validation": badges.label(d.latest_status) if d.latest_status else "—",
                    "Versions": d.n_versions,
                    "Created": _when(d.created_at),
                    "Link": _link("dataset", id=d.id),
                }
                for d in ds
            ]
        )

    st.subheader("Runs")
    runs = experiments.list_runs(db, use_case_id=uc.id, limit=20).items
    if not runs:
        st.caption("No runs for this use case yet.")
    else:
        _table(
            [
                {
                    "Run": f"Run {r.id}",
                    "Name": r.name,
                    "Algorithm": r.algorithm.replace("_", " "),
                    "Status": badges.label(r.status),
                    **{m.replace("_", " "): _metric(r.metrics.get(m)) for m in kpi_metrics},
                    "By": r.created_by,
                    "Created": _when(r.created_at),
                    "Link": _link("run", id=r.id),
                }
                for r in runs
            ]
        )

    st.subheader("Models")
    mvs = registry.list_model_versions(db, use_case_id=uc.id)
    labels = {mv.id: mv.label for mv in mvs}
    if not mvs:
        st.caption("No models registered for this use case yet.")
    else:
        _table(
            [
                {
                    "Model": mv.label,
                    "Aliases": ", ".join(mv.aliases) or "—",
                    **{m.replace("_", " "): _metric(mv.metrics.get(m)) for m in kpi_metrics},
                    "From run": f"Run {mv.run_id}",
                    "Registered": _when(mv.created_at),
                    "Link": _link("models", id=mv.id),
                }
                for mv in mvs
            ]
        )

    st.subheader("Deployments")
    deps = deployments.list_deployments(db, use_case_id=uc.id)
    if not deps:
        st.caption("No deployments for this use case yet.")
    else:
        _table(
            [
                {
                    "Deployment": d.name,
                    "Environment": d.environment,
                    "Serves": labels.get(d.model_version_id, "a model") if d.model_version_id else "nothing yet",
                    "Canary": f"{d.canary_share:.0%} to {labels.get(d.canary_model_version_id, 'a challenger')}"
                    if d.canary_model_version_id
                    else "—",
                    "Deployed": _when(d.deployed_at),
                    "Link": _link("deployment", deployment=d.name),
                }
                for d in deps
            ]
        )

    st.subheader("Alerts")
    alerts = monitoring.list_alerts(db, use_case_id=uc.id, limit=20)
    if not alerts:
        st.caption("No alerts for this use case yet.")
    else:
        _table(
            [
                {
                    "Alert": a.title,
                    "Severity": badges.label(a.severity),
                    "State": badges.label(a.state),
                    "Deployment": a.deployment_name or "—",
                    "Last seen": _when(a.last_seen_at),
                    "Link": _link("alerts"),
                }
                for a in alerts
            ]
        )
