"""The retraining loop: drift or a missed KPI -> a proposal -> a run -> a challenger awaiting approval.

Started by a check (services/monitoring/checks.py) according to the monitor's policy: "propose" makes a
proposal ops approve, "automatic" queues the run at once; either way the run is linked to the alert.
When the run has finished (the "retraining_advance" job queued by experiments.run_training, or the next
check) it is registered and requested for deployment on the alerting endpoint: a challenger when it
passes the deployment gates. This module imports experiments; experiments never imports it back.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlmodel import col, select

from ..db import Database, utcnow
from ..errors import Conflict, NotFound, ValidationError
from ..models.deployments import Deployment
from ..models.experiments import ModelVersion, RegisteredModel, Run
from ..models.monitoring import Alert, Monitor, RetrainingProposal, RetrainingProposalPublic
from . import audit, collab, datasets, deployments, experiments, registry
from ._common import get_or_404
from .auth import Actor, require


def _champion_plan(db: Database, dep) -> dict[str, Any]:
    """The champion's run config and the newest trainable version of its dataset."""
    if dep.model_version_id is None:
        raise ValidationError(f"deployment {dep.name} serves no model, so there is nothing to retrain")
    with db.read() as s:
        mv = get_or_404(s, ModelVersion, dep.model_version_id, "model version")
        run = s.get(Run, mv.run_id)
        if run is None:
            raise ValidationError(f"the run behind model version {mv.id} is gone; retrain from the experiments page")
        config = dict(run.config or {})
        base_dataset = run.dataset_version_id or mv.dataset_version_id
        plan = {
            "champion_model_version_id": mv.id,
            "base_run_id": run.id,
            "config": config,
            "use_case_id": dep.use_case_id or run.use_case_id,
        }
    if not config:
        raise ValidationError(
            f"run {plan['base_run_id']} (the champion's) was logged from code and has no UI config "
            "to re-run; retrain it from your notebook or CI"
        )
    dataset_version_id = base_dataset
    if base_dataset is not None:
        base = datasets.get_version(db, base_dataset)
        newest = datasets.latest_trainable_version(db, base.dataset_id)
        if newest is not None:
            dataset_version_id = newest.id
    plan["dataset_version_id"] = dataset_version_id
    plan["same_data_warning"] = _same_data_sentence(db, dataset_version_id, base_dataset)
    return plan


def _same_data_sentence(db: Database, dataset_version_id: int | None, champion_dataset_version_id: int | None) -> str:
    """A warning when retraining would train on the very data the champion was trained on (issue 15,
    problem 7: the result is a copy of production), else ""."""
    if dataset_version_id is None or dataset_version_id != champion_dataset_version_id:
        return ""
    ref = datasets.get_version(db, dataset_version_id).ref
    return (
        f"no newer data than the champion: {ref} is still the newest usable version of its dataset, so "
        "retraining would most likely reproduce the model in production. Register newer data first "
        "(Datasets page), or reject this proposal"
    )


def same_data_warning(db: Database, proposal: RetrainingProposalPublic) -> str:
    """What the Alerts page shows before anyone approves: "" when the proposal trains on newer data."""
    if proposal.champion_model_version_id is None:
        return ""
    with db.read() as s:
        mv = s.get(ModelVersion, proposal.champion_model_version_id)
        champion_data = mv.dataset_version_id if mv is not None else None
    try:
        return _same_data_sentence(db, proposal.dataset_version_id, champion_data)
    except NotFound:
        return ""


# The next step to suggest when a retrained model fails a gate, in words (no internal gate names).
NEXT_STEPS = {
    "use_case_match": "the retrained model belongs to another use case; retrain from the use case's own runs",
    "schema_match": "the retrained model expects other inputs than the endpoint serves; check the features of "
    "the champion's run",
    "data_validated": "fix or waive the training data on its dataset page, then approve a new retraining",
    "kpis_met": "the new model misses the use case's KPIs: register newer or more data, or try other algorithms "
    "or parameters in Experiments",
    "no_regression": "the new model is not better than production: keep the champion, and retrain once newer "
    "data arrives or try other algorithms in Experiments",
    "model_loads": "the model file does not load; open the run to see why",
}


def propose_retraining(db: Database, *, monitor: Monitor, dep, alert_id: int) -> dict[str, Any] | None:
    """Propose retraining the champion because of a new alert (the monitor's policy \"automatic\": start it now)."""
    try:
        plan = _champion_plan(db, dep)
    except Exception as exc:  # noqa: BLE001 - the alert stands; the proposal explains why it cannot retrain
        plan = {"error": str(exc)}
    with db.unit_of_work() as s:
        alert = s.get(Alert, alert_id)
        p = RetrainingProposal(
            alert_id=alert_id,
            deployment_id=dep.id,
            deployment_name=dep.name,
            use_case_id=dep.use_case_id,
            policy=monitor.retraining_policy,
            state="proposed" if "error" not in plan else "failed",
            champion_model_version_id=plan.get("champion_model_version_id"),
            base_run_id=plan.get("base_run_id"),
            dataset_version_id=plan.get("dataset_version_id"),
            config=plan.get("config") or {},
            reason=f"{alert.kind.replace('_', ' ')}: {alert.title}"[:1000],
            note=(plan.get("error") or plan.get("same_data_warning") or "")[:2000],
        )
        s.add(p)
        s.flush()
        audit.record(
            s,
            actor=Actor.system(),
            action="retraining.propose",
            entity_type="retraining_proposal",
            entity_id=p.id,
            summary=f"proposed retraining {dep.name} because of alert {alert_id}",
            after={"alert_id": alert_id, "policy": p.policy, "dataset_version_id": p.dataset_version_id},
        )
        if p.state == "proposed" and monitor.retraining_policy == "propose":
            collab.notify(
                s,
                roles=("ops",),
                kind="retraining",
                title=f"Retraining proposed for {dep.name}",
                entity_type="retraining_proposal",
                entity_id=p.id,
                from_username="system",
            )
        pid = p.id
    if monitor.retraining_policy == "automatic" and "error" not in plan:
        return _start_retraining(db, proposal_id=pid, decided_by="system (automatic policy)")
    return {"id": pid, "run_id": None}


def _start_retraining(db: Database, *, proposal_id: int, decided_by: str, note: str = "") -> dict[str, Any]:
    with db.read() as s:
        p = s.get(RetrainingProposal, proposal_id)
        s.expunge(p)
    try:
        # The run is started on behalf of the decision (ops may decide, only data science may start
        # runs by hand), so it is started as the system and linked to the alert that caused it.
        run = experiments.start_run(
            db,
            actor=Actor.system(),
            use_case_id=p.use_case_id,
            dataset_version_id=p.dataset_version_id,
            config=dict(p.config),
            triggered_by_alert_id=p.alert_id,
        )
        run_id, state, err = run.id, "training", ""
    except Exception as exc:  # noqa: BLE001 - recorded on the proposal, shown on the alerts page
        run_id, state, err = None, "failed", f"could not start the run: {exc}"
    with db.unit_of_work() as s:
        row = s.get(RetrainingProposal, proposal_id)
        row.run_id = run_id
        row.state = state
        row.decided_by = row.decided_by or decided_by
        row.decided_at = row.decided_at or utcnow()
        row.note = "; ".join(x for x in (note, err) if x)[:2000]
        s.add(row)
        audit.record(
            s,
            actor=Actor.system(),
            action="retraining.start",
            entity_type="retraining_proposal",
            entity_id=proposal_id,
            summary=f"retraining run {run_id} for {row.deployment_name} (alert {row.alert_id}): {state}",
            after={"run_id": run_id, "state": state, "error": err},
        )
    return {"id": proposal_id, "run_id": run_id}


def decide_proposal(
    db: Database, *, actor: Actor, proposal_id: int, approve: bool, note: str = ""
) -> RetrainingProposalPublic:
    """Approve (queue the retraining run) or reject a proposal."""
    require(actor, "retraining.decide")
    note = (note or "").strip()
    with db.unit_of_work() as s:
        p = s.get(RetrainingProposal, proposal_id)
        if p is None:
            raise NotFound(f"retraining proposal {proposal_id} does not exist")
        if p.state != "proposed":
            raise Conflict(
                f"retraining proposal {proposal_id} is already {p.state}"
                f"{' (by ' + p.decided_by + ')' if p.decided_by else ''}; reload the page"
            )
        if not approve and not note:
            raise ValidationError("say in a note why the retraining is rejected")
        p.state = "approved" if approve else "rejected"
        p.decided_by = actor.username
        p.decided_at = utcnow()
        p.note = note[:2000]
        s.add(p)
        audit.record(
            s,
            actor=actor,
            action="retraining.approve" if approve else "retraining.reject",
            entity_type="retraining_proposal",
            entity_id=p.id,
            summary=f"{'approved' if approve else 'rejected'} retraining of {p.deployment_name} (alert {p.alert_id})",
            before={"state": "proposed"},
            after={"state": p.state, "note": note},
        )
    if approve:
        _start_retraining(db, proposal_id=proposal_id, decided_by=actor.username, note=note)
    return get_proposal(db, proposal_id)


def get_proposal(db: Database, proposal_id: int) -> RetrainingProposalPublic:
    with db.read() as s:
        p = s.get(RetrainingProposal, proposal_id)
        if p is None:
            raise NotFound(f"retraining proposal {proposal_id} does not exist")
        return RetrainingProposalPublic.model_validate(p, from_attributes=True)


def list_proposals(
    db: Database, *, states: Iterable[str] | None = None, alert_id: int | None = None, limit: int = 200
) -> list[RetrainingProposalPublic]:
    with db.read() as s:
        q = select(RetrainingProposal)
        if states:
            q = q.where(col(RetrainingProposal.state).in_(list(states)))
        if alert_id is not None:
            q = q.where(RetrainingProposal.alert_id == alert_id)
        rows = s.exec(q.order_by(col(RetrainingProposal.id).desc()).limit(limit)).all()
        return [RetrainingProposalPublic.model_validate(r, from_attributes=True) for r in rows]


def advance_retraining(db: Database) -> list[int]:
    """Move retraining runs on: a finished run is registered and requested for deployment on the
    alerting endpoint; when its gates pass it is a challenger awaiting ops' approval."""
    moved = []
    with db.read() as s:
        rows = s.exec(
            select(RetrainingProposal.id, RetrainingProposal.run_id).where(RetrainingProposal.state == "training")
        ).all()
        runs = (
            {r.id: r.status for r in s.exec(select(Run).where(col(Run.id).in_([x[1] for x in rows if x[1]]))).all()}
            if rows
            else {}
        )
    for pid, run_id in rows:
        status = runs.get(run_id)
        if status in ("failed", "cancelled"):
            _set_proposal(db, pid, state="failed", note=f"retraining run {run_id} {status}")
            moved.append(pid)
        elif status == "finished":
            try:
                _promote_retrained(db, pid, run_id)
            except Exception as exc:  # noqa: BLE001 - shown on the proposal; the loop goes on
                _set_proposal(
                    db,
                    pid,
                    state="finished",
                    note=f"run {run_id} finished but could not be requested for deployment: {exc}"[:2000],
                )
            moved.append(pid)
    return moved


def _set_proposal(db: Database, pid: int, **values) -> None:
    with db.unit_of_work() as s:
        row = s.get(RetrainingProposal, pid)
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)


def _promote_retrained(db: Database, pid: int, run_id: int) -> None:
    with db.read() as s:
        p = s.get(RetrainingProposal, pid)
        champion = s.get(ModelVersion, p.champion_model_version_id) if p.champion_model_version_id else None
        model_name = s.get(RegisteredModel, champion.model_id).name if champion else f"{p.deployment_name}-model"
        dep_name = p.deployment_name
        env = s.exec(select(Deployment.environment).where(Deployment.id == p.deployment_id)).one()
    system = Actor.system()
    mv = registry.register_model(db, actor=system, run_id=run_id, name=model_name)
    # Business is asked to sign off only a challenger that passes every other gate (not a copy of production).
    req = deployments.request_deployment(
        db,
        actor=system,
        model_version_id=mv.id,
        deployment_name=dep_name,
        environment=env,
        signoff_only_when_passing=True,
    )
    # The business sign-off is requested with the deployment request itself: pending, it is part of the
    # approval the challenger now awaits, not a reason to drop it.
    failed_gates = [g for g in getattr(req, "gates", []) if g.status == "failed" and "signoff" not in g.gate]
    failed = [g.gate for g in failed_gates]
    gates = {
        "request_id": req.id,
        "run_id": run_id,
        "model_version": f"{mv.model_name} v{mv.version}",
        "failed": failed,
        "explained": [
            {"title": g.title, "detail": g.detail, "next_step": NEXT_STEPS.get(g.gate, "")} for g in failed_gates
        ],
        "gates": [{"gate": g.gate, "status": g.status} for g in getattr(req, "gates", [])],
    }
    state = "challenger" if not failed else "finished"
    note = (
        f"{mv.model_name} v{mv.version} passes the deployment gates: a challenger awaiting sign-off and "
        f"approval (request {req.id})"
        if not failed
        else f"{mv.model_name} v{mv.version} (run {run_id}) did not pass the deployment gates: "
        + "; ".join(f"{g.title.lower()}: {g.detail}" for g in failed_gates)
        + ". Next step: "
        + "; ".join(dict.fromkeys(NEXT_STEPS[g] for g in failed if g in NEXT_STEPS) or ["see the run"])
    )
    _set_proposal(db, pid, state=state, model_version_id=mv.id, gate_summary=gates, note=note)


def advance_job(ctx) -> dict[str, Any]:
    """Kind "retraining_advance": queued when a retraining run finishes, so the loop closes at once
    (registered, requested for deployment) instead of at the next monitor check."""
    return {"moved": advance_retraining(ctx.db)}
