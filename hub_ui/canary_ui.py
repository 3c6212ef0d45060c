"""The canary panel of the Deployment page (issue 15, ops): champion vs challenger side by side, each
figure's difference with its 95% interval, and whether it is significant, in words. The numbers come
from services/canary.py; nothing is computed here."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from mlops_core.services import canary
from mlops_core.textsafety import plain_markdown as md_text

from . import session


def _num(v, metric: str) -> str:
    if v is None:
        return "—"
    if "rate" in metric or metric.split(" ")[0] in canary.PROPORTION_METRICS:
        return f"{v:.1%}"
    if "ms" in metric:
        return f"{v:,.1f}"
    return f"{v:.3f}"


def _diff(c: dict) -> str:
    d = c["difference"]
    if d is None:
        return "—"
    pct = "rate" in c["metric"] or c["metric"].split(" ")[0] in canary.PROPORTION_METRICS
    fmt = (lambda x: f"{x * 100:+.1f} pt") if pct else (lambda x: f"{x:+,.3g}")
    out = fmt(d)
    if c["ci_low"] is not None and c["ci_high"] is not None:
        out += f" ({fmt(c['ci_low'])} to {fmt(c['ci_high'])})"
    return out


def _significant(c: dict) -> str:
    if c["significant"] is None:
        return "can't tell yet" if c["method"] else "not tested"
    return "yes" if c["significant"] else "no"


def render(db, name: str) -> None:
    out = canary.canary_comparison(db, deployment_name=name)
    if out.champion is None:
        st.caption(out.message)
        return
    a, b = out.champion, out.challenger
    when = f"since {session.fmt_time(out.since)}" + ("" if out.active else f" until {session.fmt_time(out.until)}")
    head = (
        f"**Canary running** ({out.share:.0%} of traffic to the challenger), {when} UTC"
        if out.active
        else f"**Last canary** (stopped), {when} UTC"
    )
    st.markdown(head)
    c = st.columns(2)
    for col, arm in zip(c, (a, b)):
        with col.container(border=True):
            st.caption(arm.role.capitalize())
            st.markdown(f"**{md_text(arm.label)}**")
            st.caption(
                f"{arm.requests:,} requests · {arm.server_errors:,} server errors (5xx)"
                + (f" · {arm.client_errors:,} refused (4xx)" if arm.client_errors else "")
                + f" · {arm.labelled:,} labelled"
            )
    few = [x for x in out.comparisons if x["method"] and not x["enough"]]
    if few:
        n_a, n_b = few[0]["n_champion"], few[0]["n_challenger"]
        st.info(
            f"Not enough requests yet to tell (n={n_a:,} champion, {n_b:,} challenger; {out.min_n} each needed)"
            if any("requests" in x["verdict"] for x in few)
            else md_text(few[0]["verdict"]).capitalize()
        )
    st.dataframe(
        [
            {
                "figure": x["metric"],
                "champion": _num(x["champion"], x["metric"]),
                "challenger": _num(x["challenger"], x["metric"]),
                "difference (95% interval)": _diff(x),
                "significant": _significant(x),
                "in words": x["verdict"],
                "test": x["method"] or "—",
                "p-value": f"{x['p_value']:.3g}" if x["p_value"] is not None else "—",
            }
            for x in out.comparisons
        ],
        hide_index=True,
        width="stretch",
        key="dep_canary_table",
    )
    st.caption(
        "Challenger minus champion. Rates and accuracy-like metrics: two-proportion z-test; median latency and "
        "scores: Mann-Whitney U, with a bootstrap interval; latency p95: the bootstrap interval alone (significant "
        "when it excludes 0); significant at p < 0.05. Errors of requests refused before scoring are counted "
        "under the champion."
    )
    if out.agreement is not None:
        st.markdown(
            f"On the challenger's {out.n_agreement:,} requests both versions answered: they agree on "
            f"**{out.agreement:.1%}** of them."
        )
    h = out.score_histogram
    if h.get("edges"):
        mids = [(lo + hi) / 2 for lo, hi in zip(h["edges"][:-1], h["edges"][1:])]
        fig = go.Figure()
        fig.add_bar(x=mids, y=h["champion"], name=f"champion ({a.label})", opacity=0.6)
        fig.add_bar(x=mids, y=h["challenger"], name=f"challenger ({b.label})", opacity=0.6)
        fig.update_layout(
            barmode="overlay",
            height=280,
            margin={"l": 10, "r": 10, "t": 30, "b": 10},
            title="Score distribution (share of each arm's requests)",
            xaxis_title="score (positive-class probability)",
            yaxis_tickformat=".0%",
            legend={"orientation": "h", "y": -0.3},
        )
        st.plotly_chart(fig, width="stretch", key="dep_canary_scores")
