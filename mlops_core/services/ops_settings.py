"""Ops settings of a deployment (issue 15): SLOs and alert routing, edited on the Deployment monitoring page.

- SLOs: the error rate (5xx) and latency p95 objectives ARE the health check's thresholds (the deployment's
  default monitor's `max_error_rate` / `max_latency_p95_ms`, see monitoring/kinds.py), so saving them here
  changes what the next check alerts on; the availability objective (share of requests answered without
  a 5xx over the last N days) is kept in `ops_settings` and read by `slo_status` (met or not, error
  budget left).
- Alert routing: who hears of which alerts of this deployment, on which channels. It adds to the default
  (the use case's ops and data science members get every alert in their inbox). It reuses issue 18's
  delivery: `route_alert` gives the alert's inbox recipients (called by monitoring/alerts) and
  `routed_deliveries` the people and webhook a notification event of the alert goes to (called by
  delivery.fan_out, which sends with each person's own email address and chat webhook, retries and cools
  down as for any event).

Only ops (and admin) may edit (`monitor.configure`); every save is audited with before -> after in one unit
of work. Everyone may read; the webhook URL (a credential) is blanked for those who may not edit.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..db import Database, utcnow
from ..errors import Conflict, ValidationError
from ..models.base import ROLES
from ..models.collab import InboxItem
from ..models.deployments import Deployment, Prediction
from ..models.monitoring import ALERT_KINDS, SEVERITIES, Alert, Monitor
from ..models.ops_settings import ROUTE_CHANNELS, AlertRoute, OpsSettings, OpsSettingsPublic, SloStatusPublic
from ..models.users import User
from . import audit
from ._common import aware, deployment_by_name
from .auth import Actor, can, require

EDIT = "monitor.configure"
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
CLIENT_ERROR = "4__:%"  # a client's mistake (4xx) is not a failure of the service
MAX_ROUTES = 20


def _default_monitor(s: Session, deployment_id: int) -> Monitor | None:
    rows = s.exec(select(Monitor).where(Monitor.deployment_id == deployment_id).order_by(col(Monitor.id))).all()
    return next((m for m in rows if m.name == "default"), rows[0] if rows else None)


def _public(actor: Actor, dep: Deployment, row: OpsSettings | None, mon: Monitor | None) -> OpsSettingsPublic:
    may = can(actor, EDIT)
    return OpsSettingsPublic(
        deployment=dep.name,
        deployment_id=dep.id,
        # without a monitor yet: the thresholds its default monitor will start with
        max_error_rate=mon.max_error_rate if mon else Monitor().max_error_rate,
        max_latency_p95_ms=mon.max_latency_p95_ms if mon else Monitor().max_latency_p95_ms,
        slo_availability=row.slo_availability if row else None,
        slo_window_days=row.slo_window_days if row else 30,
        alert_routes=[AlertRoute(**r) for r in (row.alert_routes if row else [])],
        webhook_url=(row.webhook_url if row and may else ""),
        webhook_set=bool(row and row.webhook_url),
        webhook_flavor=row.webhook_flavor if row else "slack",
        version=row.version if row else 0,
        updated_by=row.updated_by if row else "",
        updated_at=aware(row.updated_at) if row else None,
    )


def get_ops_settings(db: Database, *, actor: Actor, deployment_name: str) -> OpsSettingsPublic:
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        row = s.exec(select(OpsSettings).where(OpsSettings.deployment_id == dep.id)).first()
        return _public(actor, dep, row, _default_monitor(s, dep.id))


def _check_routes(s: Session, routes: list[dict[str, Any] | AlertRoute], webhook: str) -> list[dict[str, Any]]:
    if len(routes) > MAX_ROUTES:
        raise ValidationError(f"at most {MAX_ROUTES} alert routes per deployment")
    users = {u for u in s.exec(select(User.username).where(col(User.is_active).is_(True))).all()}
    out = []
    for i, raw in enumerate(routes, start=1):
        r = raw if isinstance(raw, AlertRoute) else AlertRoute(**raw)
        kinds = sorted({k.strip() for k in r.kinds if k and k.strip()}) or ["*"]
        if "*" in kinds:
            kinds = ["*"]
        bad = [k for k in kinds if k != "*" and k not in ALERT_KINDS]
        if bad:
            raise ValidationError(f"route {i}: unknown alert kind {bad[0]!r}; use * or one of {', '.join(ALERT_KINDS)}")
        if r.min_severity not in SEVERITIES:
            raise ValidationError(f"route {i}: severity must be one of {', '.join(SEVERITIES)}")
        chans = [c for c in ROUTE_CHANNELS if c in set(r.channels)]
        unknown = sorted(set(r.channels) - set(ROUTE_CHANNELS))
        if unknown or not chans:
            raise ValidationError(f"route {i}: choose channels among {', '.join(ROUTE_CHANNELS)}")
        people = []
        for who in dict.fromkeys(x.strip() for x in r.recipients if x and x.strip()):
            if who.startswith("role:"):
                if who[5:] not in ROLES:
                    raise ValidationError(f"route {i}: no role {who[5:]!r}; roles are {', '.join(ROLES)}")
            elif who not in users:
                raise ValidationError(f"route {i}: no active user {who!r}")
            people.append(who)
        if not people and chans != ["webhook"]:
            raise ValidationError(f"route {i}: name who gets these alerts (a user, or role:ops)")
        if "webhook" in chans and not webhook:
            raise ValidationError(f"route {i}: the webhook channel needs the deployment's webhook URL")
        out.append({"kinds": kinds, "min_severity": r.min_severity, "recipients": people, "channels": chans})
    return out


def _fraction(name: str, v: float | None, lo: float, hi: float) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValidationError(f"the {name} must be a number") from None
    if not math.isfinite(v) or not lo < v < hi:
        raise ValidationError(f"the {name} must be between {lo:g} and {hi:g} (exclusive), e.g. 0.995")
    return v


def save_ops_settings(
    db: Database,
    *,
    actor: Actor,
    deployment_name: str,
    max_error_rate: float | None,
    max_latency_p95_ms: float | None,
    slo_availability: float | None,
    slo_window_days: int = 30,
    alert_routes: list[dict[str, Any] | AlertRoute] = (),
    webhook_url: str | None = None,
    expected_version: int | None = None,
) -> OpsSettingsPublic:
    """Save the SLOs and alert routes of a deployment (ops, admin). `webhook_url`: None keeps the stored
    one, "" removes it. `expected_version` refuses a save over someone else's change made meanwhile."""
    require(actor, EDIT)
    err = _fraction("error-rate objective", max_error_rate, 0.0, 1.0)
    avail = _fraction("availability objective", slo_availability, 0.0, 1.0)
    if max_latency_p95_ms is not None:
        try:
            lat = float(max_latency_p95_ms)
        except (TypeError, ValueError):
            raise ValidationError("the latency p95 objective must be a number of milliseconds") from None
        if not math.isfinite(lat) or lat <= 0:
            raise ValidationError("the latency p95 objective must be a positive number of milliseconds, e.g. 300")
    else:
        lat = None
    days = int(slo_window_days)
    if not 1 <= days <= 90:
        raise ValidationError("the availability window must be 1 to 90 days")
    hook = None
    if webhook_url is not None and webhook_url.strip():
        from .subscriptions import validate_webhook_url

        hook = validate_webhook_url(webhook_url)
    with db.read() as s:  # the default monitor the health check reads (created now if none yet)
        has_monitor = _default_monitor(s, deployment_by_name(s, deployment_name).id) is not None
    if not has_monitor:
        from .monitoring.monitors import configure_monitor

        try:
            configure_monitor(db, actor=actor, deployment_name=deployment_name)
        except Conflict:
            pass  # created meanwhile
    with db.unit_of_work() as s:
        dep = deployment_by_name(s, deployment_name)
        row = s.exec(select(OpsSettings).where(OpsSettings.deployment_id == dep.id)).first()
        mon = _default_monitor(s, dep.id)
        if expected_version is not None and (row.version if row else 0) != expected_version:
            raise Conflict(
                f"the ops settings of {dep.name} were changed by someone else meanwhile; reload and apply yours again"
            )
        if row is None:
            row = OpsSettings(deployment_id=dep.id, version=0)
        webhook = row.webhook_url if webhook_url is None else (hook or "")
        routes = _check_routes(s, list(alert_routes), webhook)

        def snap() -> dict[str, Any]:
            return {
                "max_error_rate": mon.max_error_rate if mon else None,
                "max_latency_p95_ms": mon.max_latency_p95_ms if mon else None,
                "slo_availability": row.slo_availability,
                "slo_window_days": row.slo_window_days,
                "alert_routes": list(row.alert_routes or []),
                "webhook": "set" if row.webhook_url else "none",  # the URL is a credential: not in the log
            }

        before = snap()
        if mon is not None:
            mon.max_error_rate, mon.max_latency_p95_ms = err, lat
            mon.version += 1
            mon.updated_at = utcnow()
            s.add(mon)
        row.slo_availability, row.slo_window_days = avail, days
        row.alert_routes = routes
        row.webhook_url = webhook
        row.version += 1
        row.updated_by, row.updated_at = actor.username, utcnow()
        s.add(row)
        s.flush()
        after = snap()
        changed = [k for k in after if before[k] != after[k]]
        audit.record(
            s,
            actor=actor,
            action="deployment.ops_settings",
            entity_type="deployment",
            entity_id=dep.id,
            summary=f"SLOs and alert routing of {dep.name}: " + (", ".join(changed) if changed else "unchanged"),
            before=before,
            after=after,
        )
        return _public(actor, dep, row, mon)


def _availability(s: Session, deployment_id: int, days: int, now) -> tuple[int, int]:
    """(requests, server errors) of a deployment over the last `days`: a client's 4xx is not the service's fault."""
    is_client = sa.and_(Prediction.status != "ok", Prediction.error.like(CLIENT_ERROR))
    n, bad = s.exec(
        select(
            sa.func.count(),
            sa.func.sum(sa.case((sa.and_(Prediction.status != "ok", sa.not_(is_client)), 1), else_=0)),
        ).where(Prediction.deployment_id == deployment_id, Prediction.created_at >= now - timedelta(days=days))
    ).one()
    return int(n or 0), int(bad or 0)


def _slo(days: int, target: float | None, n: int, bad: int) -> SloStatusPublic:
    avail = (1 - bad / n) if n else None
    met = None if avail is None or target is None else avail >= target
    budget = None
    if avail is not None and target is not None and target < 1:
        budget = 1 - (bad / n) / (1 - target)
    return SloStatusPublic(
        window_days=days, requests=n, server_errors=bad, availability=avail, target=target, met=met, budget_left=budget
    )


def slo_status(db: Database, *, deployment_name: str, now=None) -> SloStatusPublic:
    """Availability over the objective's window: requests answered without a 5xx, against the target,
    and the share of the error budget (1 - target) still unspent."""
    now = now or utcnow()
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        row = s.exec(select(OpsSettings).where(OpsSettings.deployment_id == dep.id)).first()
        days = row.slo_window_days if row else 30
        target = row.slo_availability if row else None
        n, bad = _availability(s, dep.id, days, now)
    return _slo(days, target, n, bad)


def slo_breaches(s: Session, now) -> list:
    """A Breach per deployment whose availability objective is missed over its window (the error budget is
    spent), for the system health check (one open alert per deployment, repeated while the objective is missed)."""
    from .monitoring.alerts import Breach

    out = []
    rows = s.exec(
        select(OpsSettings, Deployment)
        .join(Deployment, col(Deployment.id) == OpsSettings.deployment_id)
        .where(col(OpsSettings.slo_availability).is_not(None))
    ).all()
    for row, dep in rows:
        st = _slo(row.slo_window_days, row.slo_availability, *_availability(s, dep.id, row.slo_window_days, now))
        if st.met is not False:
            continue
        out.append(
            Breach(
                kind="slo_availability",
                severity="critical",
                key=f"slo_availability:{dep.id}",
                title=f"{dep.name} misses its availability objective: {st.availability:.3%} "
                f"(objective {st.target:.3%} over {st.window_days} days)",
                detail=f"{st.server_errors:,} of {st.requests:,} requests failed on the service side (5xx) in the "
                f"last {st.window_days} days; the error budget is spent"
                + (f" ({-st.budget_left:.0%} over)." if st.budget_left is not None and st.budget_left < 0 else ".")
                + " See the deployment's health and recent errors.",
                evidence={"slo": st.model_dump(mode="json")},
                link=f"/deployment-monitoring?deployment={dep.name}",
                deployment_id=dep.id,
                deployment_name=dep.name,
                use_case_id=dep.use_case_id,
            )
        )
    return out


# --- routing (called by monitoring/alerts and delivery; reads only) ------------------------------------


def _matching(s: Session, alert: Alert) -> list[dict[str, Any]]:
    if alert.deployment_id is None:
        return []
    row = s.exec(select(OpsSettings).where(OpsSettings.deployment_id == alert.deployment_id)).first()
    if row is None:
        return []
    rank = SEVERITY_RANK.get(alert.severity, 0)
    return [
        r
        for r in row.alert_routes or []
        if ("*" in r.get("kinds", []) or alert.kind in r.get("kinds", []))
        and rank >= SEVERITY_RANK.get(r.get("min_severity", "info"), 0)
    ]


def _people(s: Session, names: list[str]) -> dict[int, str]:
    """{user id: username} of the active users named or holding a named role ("role:ops")."""
    users = [n for n in names if not n.startswith("role:")]
    roles = [n[5:] for n in names if n.startswith("role:")]
    conds = []
    if users:
        conds.append(col(User.username).in_(users))
    if roles:
        conds.append(col(User.role).in_(roles))
    if not conds:
        return {}
    rows = s.exec(select(User.id, User.username).where(col(User.is_active).is_(True), sa.or_(*conds))).all()
    return {int(i): u for i, u in rows}


def route_alert(s: Session, alert: Alert, *, title: str, skip: set[str] = frozenset()) -> list[str]:
    """Put the alert in the inbox of those its routes name with the in_app channel (not already told,
    `skip`), inside the caller's transaction; returns their usernames. Email, chat and webhook go through
    delivery (`routed_deliveries`), so a route without in_app sends no inbox item."""
    names: dict[int, str] = {}
    for r in _matching(s, alert):
        if "in_app" in r["channels"]:
            names.update(_people(s, r["recipients"]))
    told = []
    for uid, username in sorted(names.items()):
        if username in skip:
            continue
        s.add(
            InboxItem(
                user_id=uid,
                kind="alert",
                title=title[:500],
                entity_type="alert",
                entity_id=str(alert.id),
                from_username="system",
            )
        )
        told.append(username)
    return told


def routed_deliveries(s: Session, alert_id: int) -> tuple[dict[int, set[str]], list[str]]:
    """({user id: {"email", "chat"}}, [webhook URL]) of the routes matching an alert: who gets the alert's
    notification by email or on their own chat webhook, and whether the deployment's webhook gets it."""
    alert = s.get(Alert, alert_id)
    if alert is None:
        return {}, []
    people: dict[int, set[str]] = {}
    hooks: list[str] = []
    for r in _matching(s, alert):
        chans = {c for c in r["channels"] if c in ("email", "chat")}
        if chans:
            for uid in _people(s, r["recipients"]):
                people.setdefault(uid, set()).update(chans)
        if "webhook" in r["channels"]:
            row = s.exec(
                select(OpsSettings.webhook_url).where(OpsSettings.deployment_id == alert.deployment_id)
            ).first()
            if row and row not in hooks:
                hooks.append(row)
    return people, hooks
