"""The lineage graph of a use case (issue 18), drawn with plotly: one column per stage, click a node to get a
link to its page. By default the lineage of the served model; a toggle shows everything (runs clustered)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from mlops_core.services import lineage

from . import session

PAGES = {
    "use_case": "pages/use_case.py",
    "dataset_version": "pages/dataset.py",
    "run": "pages/run.py",
    "model_version": "pages/models.py",
    "deployment": "pages/deployment.py",
    "alert": "pages/alerts.py",
}
COLUMN_TITLES = ["Use case", "Data", "Runs", "Models", "Deployments", "Alerts"]
GOOD = {"validated", "finished", "production", "resolved"}
BAD = {"failed", "open", "rejected"}


def _colour(n: lineage.Node) -> str:
    if n.key.startswith("runs:"):
        return "#9aa5b1"
    if n.status in BAD:
        return "#d64545"
    if n.served or n.status in GOOD:
        return "#2f8132"
    return "#3e7bfa"


def figure(g: lineage.Graph) -> go.Figure:
    pos: dict[str, tuple[float, float]] = {}
    for x, kind in enumerate(lineage.LAYERS):
        col = [n for n in g.nodes if n.kind == kind]
        for i, n in enumerate(col):
            pos[n.key] = (x, -(i - (len(col) - 1) / 2))
    ex, ey = [], []
    for a, b in g.edges:
        ex += [pos[a][0], pos[b][0], None]
        ey += [pos[a][1], pos[b][1], None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#bcccdc", "width": 1.5}, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=[pos[n.key][0] for n in g.nodes],
            y=[pos[n.key][1] for n in g.nodes],
            mode="markers+text",
            text=[n.label[:28] for n in g.nodes],
            textposition="bottom center",
            customdata=[n.key for n in g.nodes],
            hovertext=[
                f"{n.label}<br>{' · '.join(x for x in (n.status, n.detail) if x)}"
                + ("<br>served now" if n.served else "")
                for n in g.nodes
            ],
            hoverinfo="text",
            marker={
                "size": [min(34, 16 + 2 * (n.size**0.5)) for n in g.nodes],
                "color": [_colour(n) for n in g.nodes],
                "line": {"width": [3 if n.served else 0 for n in g.nodes], "color": "#102a43"},
            },
        )
    )
    rows = max((sum(1 for n in g.nodes if n.kind == k) for k in lineage.LAYERS), default=1)
    fig.update_layout(
        showlegend=False,
        height=max(260, 70 * rows + 80),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={
            "tickmode": "array",
            "tickvals": list(range(len(COLUMN_TITLES))),
            "ticktext": COLUMN_TITLES,
            "side": "top",
            "range": [-0.5, len(COLUMN_TITLES) - 0.5],
            "showgrid": False,
            "zeroline": False,
        },
        yaxis={"visible": False},
        plot_bgcolor="white",
        dragmode=False,
    )
    return fig


def lineage_section(use_case_id: int) -> None:
    db = session.db()
    full = st.toggle(
        "Show everything", key=f"lineage_full_{use_case_id}", help="Default: the lineage of what is served now."
    )
    g = lineage.use_case_lineage(db, use_case_id, full=full)
    if len(g.nodes) <= 1:
        st.caption("Nothing served yet." if not full else "No data, runs or models yet.")
        if not full:
            return
    event = st.plotly_chart(
        figure(g),
        key=f"lineage_chart_{use_case_id}_{int(full)}",
        on_select="rerun",
        selection_mode="points",
        width="stretch",
    )
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    picked = [g.node(p.get("customdata")) for p in points if p.get("customdata")]
    for n in [p for p in picked if p is not None and p.entity_id]:
        st.page_link(
            PAGES[n.kind], label=f"Open {n.label}", icon=":material/arrow_forward:", query_params={"id": n.entity_id}
        )
    if not picked:
        st.caption("Click a node to open its page. Grey nodes are clusters of runs that produced no model.")
