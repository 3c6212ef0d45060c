"""The use case report (issue 18): one self-contained HTML document for the decision meeting, printable to PDF
by a browser, built from live evidence.

Self-contained: inline CSS, charts drawn as inline CSS bars, no script, no image, no stylesheet and no link
to another host. Links back to the Hub are RELATIVE (`use-case?id=3`): they work when the file is opened from
the Hub and request nothing when it is opened elsewhere. A section with no data says so (a partial report).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..db import Database, utcnow
from . import collab, datasets, deployments, experiments, registry, usecases
from .monitoring import alerts as alert_svc
from .monitoring import dashboards

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2933;max-width:960px;margin:24px auto;padding:0 16px;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.1em}h2{font-size:1.2em;border-bottom:2px solid #d9e2ec;padding-bottom:4px;margin-top:1.8em;page-break-after:avoid}
table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.92em}th,td{border:1px solid #d9e2ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}.muted{color:#627d98}.empty{color:#9f580a;background:#fffbea;padding:6px 10px;border-left:4px solid #f0b429}
.met,.passed,.validated,.sent,.approved,.green{color:#0e7c3a;font-weight:600}.missed,.failed,.rejected,.red,.open{color:#b91c1c;font-weight:600}
.warning,.amber,.pending,.waived{color:#b45309;font-weight:600}.bar{background:#e4e7eb;height:12px;width:220px;display:inline-block;vertical-align:middle}
.bar>span{background:#3e7bfa;height:12px;display:block}code{font-size:.9em;background:#f0f4f8;padding:0 3px;word-break:break-all}
@media print{body{margin:0}a{color:inherit;text-decoration:none}}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _status(word: Any) -> str:
    w = _e(word)
    return f'<span class="{w}">{w}</span>'


def _num(v: Any) -> str:
    if v is None:
        return "—"
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return _e(v)


def _table(head: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escape with _e)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _bar(value: float, top: float) -> str:
    pct = 0.0 if top <= 0 else max(0.0, min(100.0, 100.0 * value / top))
    return f'<span class="bar"><span style="width:{pct:.1f}%"></span></span>'


def _link(page: str, id_: Any, text: str) -> str:
    return f'<a href="{_e(page)}?id={_e(id_)}">{_e(text)}</a>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


@dataclass
class Report:
    html: str
    sha256: str
    missing: list[str]  # sections with no data yet


def _section(title: str, build: Callable[[], str | None], missing: list[str], none_text: str) -> str:
    try:
        body = build()
    except Exception as exc:  # noqa: BLE001 - one broken section must not lose the rest of the report
        body = _empty(f"This section could not be built: {type(exc).__name__}: {exc}")
        missing.append(title)
    if not body:
        missing.append(title)
        body = _empty(none_text)
    return f"<h2>{_e(title)}</h2>{body}"


def build_report(db: Database, *, use_case: int | str) -> Report:
    """The report of one use case (id or title), from what the Hub holds now."""
    uc = usecases.resolve_use_case(db, use_case)
    missing: list[str] = []
    deps = deployments.list_deployments(db, use_case_id=uc.id)
    runs = experiments.list_runs(db, use_case_id=uc.id, status="finished", limit=200).items
    versions = [v for d in datasets.list_datasets(db, use_case_id=uc.id) for v in datasets.list_versions(db, d.id)]
    served_ids = [d.model_version_id for d in deps if d.model_version_id]

    def problem() -> str:
        parts = [
            f"<p><b>Status</b> {_status(uc.status)} · <b>owner</b> {_e(uc.owner_username)} · <b>priority</b> {_e(uc.priority)}"
            + (f" · <b>target date</b> {uc.target_date:%Y-%m-%d}" if uc.target_date else "")
            + "</p>"
        ]
        parts.append(f"<p><b>Problem.</b> {_e(uc.problem_statement) or '<span class=muted>not written yet</span>'}</p>")
        parts.append(f"<p><b>Objectives.</b> {_e(uc.objectives) or '<span class=muted>not written yet</span>'}</p>")
        if uc.members:
            parts.append(
                "<p><b>Team.</b> "
                + ", ".join(f"{_e(m.username)} ({_e(m.role.replace('_', ' '))})" for m in uc.members)
                + "</p>"
            )
        return "".join(parts)

    def kpis() -> str | None:
        checks = usecases.kpi_status(db, uc)
        if not checks:
            return None
        rows = [
            [
                _e(c.kpi.kind),
                _e(c.kpi.label),
                _num(c.value),
                _num(c.kpi.baseline),
                _status(c.status),
            ]
            for c in checks
        ]
        return _table(["kind", "KPI (contract)", "current value", "baseline", "status"], rows) + (
            '<p class="muted">Model KPIs: the best finished run so far. Business KPIs: the latest reading.</p>'
        )

    def data() -> str | None:
        if not versions:
            return None
        rows = [
            [
                _link("dataset", v.dataset_id, v.ref),
                _status(v.status),
                f"{v.n_rows:,} × {v.n_cols}",
                f"{v.n_errors} errors, {v.n_warnings} warnings"
                + (f"; waived: {_e(v.waived_reason)}" if v.waived_reason else ""),
                f"<code>{_e(v.content_hash[:16])}</code>",
                f"{v.created_at:%Y-%m-%d} by {_e(v.created_by)}",
            ]
            for v in versions
        ]
        return _table(["version", "validation", "rows × columns", "findings", "content hash", "created"], rows)

    def best_runs() -> str | None:
        if not runs:
            return None
        model_kpis = [k for k in uc.kpis if k.kind == "model" and k.metric]
        out = []
        for k in model_kpis or [None]:
            if k is None:
                ranked = runs[:10]
                head = "Latest finished runs"
            else:
                have = [r for r in runs if k.metric in r.metrics]
                ranked = sorted(have, key=lambda r: r.metrics[k.metric], reverse=k.direction == ">=")[:5]
                head = f"Best runs for {k.label}"
            if not ranked:
                continue
            top = max((abs(r.metrics.get(k.metric, 0.0)) for r in ranked), default=1.0) if k else 1.0
            rows = []
            for r in ranked:
                v = r.metrics.get(k.metric) if k else None
                ok = (
                    ""
                    if k is None or v is None
                    else ("met" if (v >= k.target if k.direction == ">=" else v <= k.target) else "missed")
                )
                rows.append(
                    [
                        _link("run", r.id, r.name),
                        _e(r.algorithm),
                        (f"{_num(v)} {_bar(abs(v), top)}" if v is not None else "—"),
                        _status(ok) if ok else "—",
                        f"{r.finished_at:%Y-%m-%d}" if r.finished_at else "—",
                    ]
                )
            out.append(f"<h3>{_e(head)}</h3>" + _table(["run", "algorithm", "value", "vs target", "finished"], rows))
        return "".join(out) or None

    def card() -> str | None:
        if not served_ids:
            versions_ = registry.list_model_versions(db, use_case_id=uc.id, limit=1)
            if not versions_:
                return None
            ids = [versions_[0].id]
        else:
            ids = list(dict.fromkeys(served_ids))
        out = []
        for mv_id in ids:
            c = registry.model_card(db, mv_id)
            mv = c.version
            rows = [
                ["model", _link("models", mv.id, mv.label)],
                ["trained on", _e(c.dataset_label or "—") + f" <code>{_e(c.dataset_hash[:16])}</code>"],
                ["run", _link("run", mv.run_id, c.run_name) + f" · {_e(c.algorithm)} · by {_e(c.trained_by)}"],
                ["code version", f"<code>{_e(c.code_version or '—')}</code>"],
                ["metrics", ", ".join(f"{_e(k)} {_num(v)}" for k, v in sorted(mv.metrics.items())) or "—"],
                ["intended use", _e(c.intended_use) or '<span class="muted">not written</span>'],
                ["limitations", _e(c.limitations) or '<span class="muted">not written</span>'],
            ]
            out.append(f"<h3>{_e(mv.label)}</h3>" + _table(["", ""], rows))
            plots = experiments.plot_data(db, mv.run_id)
            imp = (plots.permutation_importance or plots.feature_importance) if plots else []
            if imp:
                top = sorted(imp, key=lambda f: -abs(f.importance))[:12]
                m = max(abs(f.importance) for f in top) or 1.0
                out.append(
                    "<p><b>Feature importance</b></p>"
                    + _table(
                        ["feature", "importance", ""],
                        [[_e(f.feature), _num(f.importance), _bar(abs(f.importance), m)] for f in top],
                    )
                )
        return "".join(out)

    def deployment_history() -> str | None:
        if not deps:
            return None
        out = []
        for d in deps:
            labels = deployments.version_labels(db, [d.model_version_id])
            out.append(
                f"<h3>{_link('deployment', d.id, d.name)} ({_e(d.environment)})</h3><p>Serving: "
                + _e(labels.get(d.model_version_id, "nothing yet"))
                + "</p>"
            )
            events = deployments.history(db, deployment_name=d.name)[:20]
            if events:
                out.append(
                    _table(
                        ["when", "what", "by", "reason"],
                        [[f"{e.at:%Y-%m-%d %H:%M}", _e(e.kind), _e(e.actor_username), _e(e.reason)] for e in events],
                    )
                )
            for r in deployments.list_requests(db, deployment_name=d.name, limit=5):
                gates = ", ".join(f"{_e(g.title)}: {_status(g.status)}" for g in r.gates) or "—"
                out.append(
                    f"<p>Request #{r.id} ({_status(r.status)}, {r.created_at:%Y-%m-%d}, by {_e(r.requested_by)}): gates {gates}"
                    + (f"; overridden by {_e(r.overridden_by)}: {_e(r.override_reason)}" if r.overridden_by else "")
                    + f"; evidence hash <code>{_e(r.evidence_hash[:16])}</code></p>"
                )
        return "".join(out)

    def monitoring() -> str | None:
        names = {d.name for d in deps}
        rows = [o for o in dashboards.overview(db) if o.deployment in names and o.last_check_at is not None]
        if not rows:
            return None
        return _table(
            ["deployment", "last check", "drift", "drift share", "KPIs", "health", "rows", "open alerts"],
            [
                [
                    _e(o.deployment),
                    f"{o.last_check_at:%Y-%m-%d %H:%M}" if o.last_check_at else "never",
                    _status(o.drift),
                    _num(o.drift_share),
                    _status(o.kpi_status or o.kpis),
                    _status(o.health),
                    _num(o.n_rows),
                    _num(o.open_alerts),
                ]
                for o in rows
            ],
        )

    def open_alerts() -> str | None:
        rows = alert_svc.list_alerts(db, states=["open", "acknowledged"], use_case_id=uc.id, limit=50)
        if not rows:
            return None
        return _table(
            ["alert", "severity", "state", "deployment", "since", "seen"],
            [
                [
                    _link("alerts", a.id, a.title),
                    _status(a.severity),
                    _status(a.state),
                    _e(a.deployment_name),
                    f"{a.created_at:%Y-%m-%d %H:%M}",
                    f"{a.occurrences}×",
                ]
                for a in rows
            ],
        )

    def signoffs() -> str | None:
        items = list(collab.signoffs_for(db, "use_case", uc.id))
        for d in deps:
            items += collab.signoffs_for(db, "deployment", d.id)
        for mv_id in dict.fromkeys(served_ids):
            items += collab.signoffs_for(db, "model_version", mv_id)
        if not items:
            return None
        return _table(
            ["asked", "of", "status", "decided by", "reason", "evidence hash"],
            [
                [
                    _e(so.title) + f' <span class="muted">({_e(so.entity_type)} {_e(so.entity_id)})</span>',
                    _e(so.assignee),
                    _status(so.status),
                    _e(so.decided_by or "—") + (f" {so.decided_at:%Y-%m-%d}" if so.decided_at else ""),
                    _e(so.reason),
                    f"<code>{_e(so.evidence_hash)}</code>",
                ]
                for so in items
            ],
        )

    sections = [
        _section("The problem and objectives", problem, missing, ""),
        _section("KPI contract", kpis, missing, "No KPI defined yet."),
        _section("Data versions and validation", data, missing, "No dataset registered for this use case yet."),
        _section("Best runs against the KPIs", best_runs, missing, "No finished run yet."),
        _section("Model card", card, missing, "No model registered or served yet."),
        _section("Deployment history and gates", deployment_history, missing, "Not deployed yet."),
        _section("Live monitoring", monitoring, missing, "No monitoring check yet."),
        _section("Open alerts", open_alerts, missing, "No open alert."),
        _section("Decisions and sign-offs", signoffs, missing, "No sign-off asked yet."),
    ]
    missing = [m for m in missing if m != "Open alerts"]
    partial = f'<p class="empty">Partial report: no data yet for {_e(", ".join(missing))}.</p>' if missing else ""
    now = utcnow()
    doc = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(uc.title)} — use case report</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(uc.title)}</h1><p class=\"muted\">Use case report from the MLOps Hub, "
        f"{now:%Y-%m-%d %H:%M} UTC · {_link('use-case', uc.id, 'open in the Hub')}</p>"
        + partial
        + "".join(sections)
        + "</body></html>"
    )
    return Report(html=doc, sha256=hashlib.sha256(doc.encode()).hexdigest(), missing=missing)
