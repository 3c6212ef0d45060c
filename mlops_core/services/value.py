"""The value model of a use case (issue 20): what a model is worth per period, in money.

- `set_value_model` / `get_value_model` / `value_history`: gain or cost per outcome (or per unit of error),
  currency and volume per period, saved with history (one row per version);
- `run_values`: every run's expected value per period on its test split, sortable;
- `choose_threshold` / `threshold_for`: the value-maximising decision threshold of a binary classifier's
  model version (serving uses it);
- `value_gate`: the deployment gate "expected value >= the champion's" for use cases with a KPI of kind
  "value";
- `live_value` / `portfolio_values`: realised value where labels exist, estimated value (CBPE from
  `monitoring.estimation`, else calibrated scores) where they don't, with its band; totals per currency.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Mapping

from sqlmodel import Session, col, select

from .. import artifacts
from ..db import Database, utcnow
from ..errors import NotFound, ValidationError
from ..ml import value as vm_math
from ..ml.scoring import label_key, positive_label
from ..models.deployments import Deployment, GateResult, Prediction
from ..models.experiments import ModelVersion, Run, RunArtifact
from ..models.usecases import Kpi, UseCase
from ..models.value import (
    ModelVersionThreshold,
    RunValuePublic,
    ThresholdPublic,
    UseCaseValuePublic,
    ValueModelPublic,
    ValueModelRow,
    ValuePublic,
)
from . import audit
from ._common import get_or_404
from .auth import Actor, require

VALUE_KPI_KIND = "value"
LIVE_DAYS = 30  # live value is measured over the last 30 days of predictions
MIN_REALISED = 30  # fewer labelled predictions than this: the card shows the estimate
MAX_LIVE_ROWS = 50_000  # the newest predictions of the window that live value reads (per deployment)


# --- the value model ------------------------------------------------------------------------------------


def _vm_public(r: ValueModelRow) -> ValueModelPublic:
    cells = {"tp": r.value_tp, "fp": r.value_fp, "fn": r.value_fn, "tn": r.value_tn}
    pub = ValueModelPublic(
        use_case_id=r.use_case_id,
        version=r.version,
        problem_type=r.problem_type,
        currency=r.currency,
        period=r.period,
        volume_per_period=r.volume_per_period,
        outcome_values=cells if r.problem_type != "regression" else {},
        cost_per_unit_error=r.cost_per_unit_error,
        missing=[],
        created_by=r.created_by,
        created_at=r.created_at,
    )
    pub.missing = to_math(pub).missing()
    return pub


def to_math(vm: ValueModelPublic) -> vm_math.ValueModel:
    return vm_math.ValueModel(
        problem_type=vm.problem_type,
        currency=vm.currency,
        period=vm.period,
        volume_per_period=vm.volume_per_period,
        outcome_values=dict(vm.outcome_values),
        cost_per_unit_error=vm.cost_per_unit_error,
    )


def _latest_row(s: Session, use_case_id: int) -> ValueModelRow | None:
    return s.exec(
        select(ValueModelRow)
        .where(ValueModelRow.use_case_id == int(use_case_id))
        .order_by(col(ValueModelRow.version).desc())
        .limit(1)
    ).first()


def get_value_model(db: Database, *, use_case_id: int) -> ValueModelPublic | None:
    with db.read() as s:
        row = _latest_row(s, use_case_id)
        return _vm_public(row) if row is not None else None


def value_history(db: Database, *, use_case_id: int) -> list[ValueModelPublic]:
    with db.read() as s:
        rows = s.exec(
            select(ValueModelRow)
            .where(ValueModelRow.use_case_id == int(use_case_id))
            .order_by(col(ValueModelRow.version).desc())
        ).all()
        return [_vm_public(r) for r in rows]


def set_value_model(
    db: Database,
    *,
    actor: Actor,
    use_case_id: int,
    problem_type: str,
    currency: str,
    period: str = "month",
    volume_per_period: Any = None,
    outcome_values: Mapping[str, Any] | None = None,
    cost_per_unit_error: Any = None,
) -> ValueModelPublic:
    """Save a new version of the use case's value model. Cells may be left empty (the value is then
    "incomplete", naming them); a regression use case takes a cost per unit of error instead of cells."""
    require(actor, "value.write")
    m = vm_math.check_value_model(
        problem_type=problem_type,
        currency=currency,
        period=period,
        volume_per_period=volume_per_period,
        outcome_values=outcome_values,
        cost_per_unit_error=cost_per_unit_error,
    )
    with db.unit_of_work() as s:
        uc = get_or_404(s, UseCase, int(use_case_id), "use case", "open one from the portfolio")
        cur = _latest_row(s, uc.id)
        row = ValueModelRow(
            use_case_id=uc.id,
            version=(cur.version if cur else 0) + 1,
            problem_type=m.problem_type,
            currency=m.currency,
            period=m.period,
            volume_per_period=m.volume_per_period,
            value_tp=m.outcome_values.get("tp"),
            value_fp=m.outcome_values.get("fp"),
            value_fn=m.outcome_values.get("fn"),
            value_tn=m.outcome_values.get("tn"),
            cost_per_unit_error=m.cost_per_unit_error,
            created_by=actor.username,
        )
        s.add(row)
        s.flush()
        pub = _vm_public(row)
        audit.record(
            s,
            actor=actor,
            action="value_model.save",
            entity_type="use_case",
            entity_id=uc.id,
            summary=f"saved the value model of {uc.title!r} (version {row.version}, {m.currency} per {m.period})"
            + (f"; still missing {', '.join(pub.missing)}" if pub.missing else ""),
            before=_vm_public(cur).model_dump(mode="json") if cur else None,
            after=pub.model_dump(mode="json"),
        )
        return pub


# --- runs ------------------------------------------------------------------------------------------------


def _value_public(res: vm_math.ValueResult, basis: str = "") -> ValuePublic:
    return ValuePublic(
        value_per_period=res.value_per_period,
        currency=res.currency,
        period=res.period,
        status=res.status,
        missing=list(res.missing),
        reason=res.reason,
        low=res.low,
        high=res.high,
        text=res.describe(),
        basis=basis,
    )


def _unavailable(vm: ValueModelPublic | None, reason: str, basis: str = "") -> ValuePublic:
    res = vm_math.ValueResult(
        None, None, vm.currency if vm else "", vm.period if vm else "", reason=reason if vm else "no value model yet"
    )
    return _value_public(res, basis)


def _plots_raw(s: Session, run_id: int) -> dict[str, Any] | None:
    art = s.exec(select(RunArtifact).where(RunArtifact.run_id == int(run_id), RunArtifact.kind == "plot_data")).first()
    if art is None or not artifacts.exists(art.artifact_key):
        return None
    try:
        return json.loads(artifacts.get_bytes(art.artifact_key))
    except ValueError:
        return None


def _histogram_for(plots: Mapping[str, Any], positive: str) -> dict[str, list[int]] | None:
    """The score histogram oriented to `positive` (stored for the run's classes_[1]; flipped otherwise)."""
    hist = plots.get("score_histogram")
    if not hist:
        return None
    stored = str(plots.get("positive_class") or "")
    if not positive or positive == stored:
        return {"pos": list(hist["pos"]), "neg": list(hist["neg"])}
    labels = [str(x) for x in ((plots.get("confusion_matrix") or {}).get("labels") or [])]
    if positive not in labels:
        return None
    # score of the other class = 1 - score: reversed bins, positives and negatives swapped
    return {"pos": list(reversed(hist["neg"])), "neg": list(reversed(hist["pos"]))}


def _positive_for(s: Session, use_case_id: int | None, labels: list[str]) -> str:
    from .canvas import _latest as latest_canvas

    if use_case_id is not None:
        c = latest_canvas(s, use_case_id)
        if c is not None and c.positive_class and c.positive_class in labels:
            return c.positive_class
    return positive_label(labels) if labels else ""


def _run_value(
    s: Session, run: Run, vm: ValueModelPublic | None, threshold: float | None = None, metrics: dict | None = None
) -> tuple[ValuePublic, float | None, float | None, float | None]:
    """(value, threshold used, best threshold, best value) of a finished run on its test split."""
    basis = "test split"
    if vm is None:
        return _unavailable(None, ""), None, None, None
    m = to_math(vm)
    if vm.problem_type == "regression":
        mae = (metrics or {}).get("mae")
        return _value_public(vm_math.regression_value(m, mae), basis), None, None, None
    if run.status != "finished":
        return _unavailable(vm, f"the run is {run.status}", basis), None, None, None
    plots = _plots_raw(s, run.id) or {}
    cm = plots.get("confusion_matrix") or {}
    labels = [str(x) for x in cm.get("labels") or []]
    if len(labels) != 2:
        why = "the run has no confusion matrix" if not labels else "a value per outcome needs a binary classifier"
        return _unavailable(vm, why, basis), None, None, None
    positive = _positive_for(s, run.use_case_id, labels)
    hist = _histogram_for(plots, positive)
    best_t = best_v = None
    if hist is not None and not m.missing():
        try:
            choice = vm_math.choose_threshold(m, hist)
            best_t, best_v = choice.threshold, choice.value.value_per_period
        except ValidationError:
            pass
    if threshold is not None and hist is not None:
        try:
            conf = vm_math.check_threshold(hist, threshold)
        except ValidationError as exc:
            return _unavailable(vm, str(exc), basis), threshold, best_t, best_v
        return _value_public(vm_math.expected_value(m, conf), basis), threshold, best_t, best_v
    conf = vm_math.confusion_from_matrix(labels, cm["matrix"], positive)
    return _value_public(vm_math.expected_value(m, conf), basis), 0.5, best_t, best_v


def run_value(db: Database, *, run_id: int) -> RunValuePublic:
    """A run's expected value per period on its test split (at the default decision rule)."""
    from . import experiments

    r = experiments.get_run(db, run_id)
    with db.read() as s:
        run = get_or_404(s, Run, int(run_id), "run")
        vm = _latest_row(s, run.use_case_id) if run.use_case_id is not None else None
        vmp = _vm_public(vm) if vm is not None else None
        value, t, bt, bv = _run_value(s, run, vmp, metrics=r.metrics)
    return RunValuePublic(
        run_id=r.id,
        run_name=r.name,
        algorithm=r.algorithm,
        status=r.status,
        created_at=r.created_at,
        value=value,
        threshold=t,
        best_threshold=bt,
        best_value_per_period=bv,
        kpi_metrics={k: float(v) for k, v in r.metrics.items() if isinstance(v, (int, float))},
    )


def run_values(db: Database, *, use_case_id: int, sort: str = "value", limit: int = 50) -> list[RunValuePublic]:
    """The use case's latest finished runs with their expected value per period, best value first
    (`sort="value"`; runs without a value last) or newest first (`sort="created_at"`)."""
    from . import experiments

    if sort not in ("value", "created_at"):
        raise ValidationError(f"cannot sort runs by {sort!r}; use value or created_at")
    page = experiments.list_runs(db, use_case_id=int(use_case_id), status="finished", limit=int(limit))
    out: list[RunValuePublic] = []
    with db.read() as s:
        vm = _latest_row(s, use_case_id)
        vmp = _vm_public(vm) if vm is not None else None
        for r in page.items:
            run = s.get(Run, r.id)
            value, t, bt, bv = _run_value(s, run, vmp, metrics=r.metrics)
            out.append(
                RunValuePublic(
                    run_id=r.id,
                    run_name=r.name,
                    algorithm=r.algorithm,
                    status=r.status,
                    created_at=r.created_at,
                    value=value,
                    threshold=t,
                    best_threshold=bt,
                    best_value_per_period=bv,
                    kpi_metrics={k: float(v) for k, v in r.metrics.items() if isinstance(v, (int, float))},
                )
            )
    if sort == "value":
        out.sort(key=lambda x: (x.value.value_per_period is None, -(x.value.value_per_period or 0.0)))
    return out


# --- thresholds ----------------------------------------------------------------------------------------


def _threshold_public(t: ModelVersionThreshold) -> ThresholdPublic:
    return ThresholdPublic.model_validate(t, from_attributes=True)


def get_threshold(db: Database, model_version_id: int) -> ThresholdPublic | None:
    with db.read() as s:
        t = s.exec(
            select(ModelVersionThreshold).where(ModelVersionThreshold.model_version_id == int(model_version_id))
        ).first()
        return _threshold_public(t) if t is not None else None


def threshold_for(db: Database, model_version_id: int) -> float | None:
    """The stored decision threshold of a model version (None: the model's own predict rule)."""
    t = get_threshold(db, model_version_id)
    return t.threshold if t is not None else None


def choose_threshold(
    db: Database, *, actor: Actor, model_version_id: int, threshold: float | None = None
) -> ThresholdPublic:
    """Store the decision threshold of a binary classifier's model version: the one maximising the use
    case's value on the run's held-out predictions, or `threshold` as given (refused when it leaves no
    positive prediction). Serving predicts the positive class when score >= threshold."""
    require(actor, "threshold.set")
    with db.unit_of_work() as s:
        mv = get_or_404(s, ModelVersion, int(model_version_id), "model version", "see the Models page")
        if mv.use_case_id is None:
            raise ValidationError("the model version belongs to no use case, so there is no value model to use")
        row = _latest_row(s, mv.use_case_id)
        if row is None:
            raise ValidationError("the use case has no value model yet; business sets the costs first (Use case page)")
        vmp = _vm_public(row)
        if vmp.problem_type != "binary":
            raise ValidationError(
                f"a decision threshold is for a binary classifier; the value model is {vmp.problem_type}"
            )
        plots = _plots_raw(s, mv.run_id) or {}
        labels = [str(x) for x in ((plots.get("confusion_matrix") or {}).get("labels") or [])]
        positive = _positive_for(s, mv.use_case_id, labels)
        hist = _histogram_for(plots, positive) if len(labels) == 2 else None
        if hist is None:
            raise ValidationError(
                "the run of this model version kept no held-out scores (it is older than value models or not a "
                "binary classifier with probabilities); retrain it to choose a threshold"
            )
        m = to_math(vmp)
        if threshold is None:
            choice = vm_math.choose_threshold(m, hist)
            t, v, dv = choice.threshold, choice.value.value_per_period, choice.default_value.value_per_period
        else:
            t = float(threshold)
            conf = vm_math.check_threshold(hist, t)
            v = vm_math.expected_value(m, conf).value_per_period
            dv = vm_math.expected_value(
                m, vm_math.confusion_from_histogram(hist, len(hist["pos"]) // 2)
            ).value_per_period
        cur = s.exec(select(ModelVersionThreshold).where(ModelVersionThreshold.model_version_id == mv.id)).first()
        before = _threshold_public(cur).model_dump(mode="json") if cur else None
        if cur is None:
            cur = ModelVersionThreshold(model_version_id=mv.id, threshold=t, chosen_by=actor.username)
        cur.threshold, cur.value_per_period, cur.default_value_per_period = t, v, dv
        cur.currency, cur.value_model_version = vmp.currency, vmp.version
        cur.chosen_by, cur.chosen_at = actor.username, utcnow()
        s.add(cur)
        s.flush()
        pub = _threshold_public(cur)
        audit.record(
            s,
            actor=actor,
            action="model.threshold",
            entity_type="model_version",
            entity_id=mv.id,
            summary=f"decision threshold {t:g} for model version {mv.id}"
            + (f" (value {vm_math.format_money(v, vmp.currency)} per {vmp.period})" if v is not None else ""),
            before=before,
            after=pub.model_dump(mode="json"),
        )
        return pub


# --- the deployment gate -------------------------------------------------------------------------------


def _model_version_value(s: Session, mv: ModelVersion, vmp: ValueModelPublic) -> ValuePublic:
    run = s.get(Run, mv.run_id)
    if run is None:
        return _unavailable(vmp, "the model version's run is gone")
    t = s.exec(select(ModelVersionThreshold).where(ModelVersionThreshold.model_version_id == mv.id)).first()
    value, *_ = _run_value(s, run, vmp, threshold=t.threshold if t else None, metrics=dict(mv.metrics or {}))
    return value


VALUE_GATE = ("value_vs_champion", "Expected value ≥ the champion's")


def value_gates(db: Database, *, model_version_id: int, champion_model_version_id: int | None) -> list[GateResult]:
    """The gate list item "expected value >= the champion's" ([] when the use case has no value KPI)."""
    g = value_gate(db, model_version_id=model_version_id, champion_model_version_id=champion_model_version_id)
    if g is None:
        return []
    return [
        GateResult(
            gate=VALUE_GATE[0], title=VALUE_GATE[1], status=g["status"], detail=g["detail"], evidence=g["evidence"]
        )
    ]


def value_gate(db: Database, *, model_version_id: int, champion_model_version_id: int | None) -> dict[str, Any] | None:
    """The gate "expected value >= the champion's" when the use case has a KPI of kind "value", else None.
    Returns {"status": passed|failed, "detail", "evidence"} (deployments turns it into a GateResult)."""
    with db.read() as s:
        mv = s.get(ModelVersion, int(model_version_id))
        if mv is None or mv.use_case_id is None:
            return None
        kpi = s.exec(select(Kpi).where(Kpi.use_case_id == mv.use_case_id, Kpi.kind == VALUE_KPI_KIND)).first()
        if kpi is None:
            return None
        row = _latest_row(s, mv.use_case_id)
        if row is None:
            return {
                "status": "failed",
                "detail": "the use case has a value KPI but no value model; business sets the costs first",
                "evidence": {"use_case_id": mv.use_case_id},
            }
        vmp = _vm_public(row)
        mine = _model_version_value(s, mv, vmp)
        ev: dict[str, Any] = {
            "use_case_id": mv.use_case_id,
            "value_model_version": vmp.version,
            "value": mine.value_per_period,
            "currency": vmp.currency,
            "margin": kpi.target,
        }
        if mine.value_per_period is None:
            return {"status": "failed", "detail": f"expected value unknown: {mine.text}", "evidence": ev}
        champ = s.get(ModelVersion, int(champion_model_version_id)) if champion_model_version_id else None
        if champ is None or champ.id == mv.id:
            return {"status": "passed", "detail": f"expected value {mine.text}; no champion to beat", "evidence": ev}
        theirs = _model_version_value(s, champ, vmp)
        ev["champion_model_version_id"], ev["champion_value"] = champ.id, theirs.value_per_period
        if theirs.value_per_period is None:
            return {
                "status": "passed",
                "detail": f"expected value {mine.text}; the champion's is unknown ({theirs.text})",
                "evidence": ev,
            }
        need = theirs.value_per_period + float(kpi.target or 0.0)
        ok = mine.value_per_period >= need
        cmp = ">=" if ok else "<"
        return {
            "status": "passed" if ok else "failed",
            "detail": f"expected value {mine.text} {cmp} the champion's {theirs.text}"
            + (f" + margin {kpi.target:g}" if kpi.target else ""),
            "evidence": ev,
        }


# --- live value ----------------------------------------------------------------------------------------


def _live_for_deployment(
    s: Session, d: Deployment, vmp: ValueModelPublic, days: int = LIVE_DAYS
) -> dict[str, ValuePublic]:
    """{"realised": ..., "estimated": ...} over the last `days` of the deployment's predictions."""
    since = utcnow() - timedelta(days=days)
    rows = s.exec(
        select(
            Prediction.prediction,
            Prediction.label,
            Prediction.labelled_at,
            Prediction.score,
            Prediction.model_version_id,
        )
        .where(Prediction.deployment_id == d.id, Prediction.status == "ok", Prediction.created_at >= since)
        .order_by(col(Prediction.created_at).desc())
        .limit(MAX_LIVE_ROWS)
    ).all()
    m = to_math(vmp)
    out: dict[str, ValuePublic] = {}
    if vmp.problem_type == "regression":
        errs = []
        for pred, label, _at, _score, _mv in rows:
            try:
                if label is not None:
                    errs.append(abs(float(label) - float(pred)))
            except (TypeError, ValueError):
                continue
        if errs:
            res = vm_math.regression_value(m, sum(errs) / len(errs))
            out["realised"] = _value_public(res, f"realised on {len(errs)} labelled predictions ({days} days)")
        return out
    labelled = [(label_key(p), label_key(lb)) for p, lb, at, _sc, _mv in rows if lb is not None and p is not None]
    keys = sorted({k for pair in labelled for k in pair} | {label_key(p) for p, *_ in rows if p is not None})
    positive = _positive_for(s, d.use_case_id, keys)
    if labelled:
        tp = sum(1 for p, y in labelled if p == positive and y == positive)
        fp = sum(1 for p, y in labelled if p == positive and y != positive)
        fn = sum(1 for p, y in labelled if p != positive and y == positive)
        tn = len(labelled) - tp - fp - fn
        res = vm_math.expected_value(m, vm_math.Confusion(tp, fp, fn, tn))
        out["realised"] = _value_public(res, f"realised on {len(labelled)} labelled predictions ({days} days)")
    unlabelled = [float(sc) for _p, lb, _at, sc, _mv in rows if lb is None and sc is not None]
    if unlabelled:
        t = None
        if d.model_version_id is not None:
            tr = s.exec(
                select(ModelVersionThreshold).where(ModelVersionThreshold.model_version_id == d.model_version_id)
            ).first()
            t = tr.threshold if tr else None
        threshold = t if t is not None else 0.5
        rough = vm_math.estimated_value(m, unlabelled, threshold)
        basis = f"estimated from calibrated scores of {len(unlabelled)} unlabelled predictions ({days} days)"
        ref = [(float(sc), label_key(lb)) for _p, lb, _at, sc, _mv in rows if lb is not None and sc is not None]
        cbpe = _cbpe_value(m, ref, unlabelled, positive, threshold, rough)
        out["estimated"] = cbpe if cbpe is not None else _value_public(rough, basis)
    return out


def _cbpe_value(m, ref, live, positive, threshold, rough) -> ValuePublic | None:
    """Value from CBPE's expected confusion (scores calibrated on the labelled predictions), with the
    calibrated-score band around it; None when CBPE cannot run (too few labelled rows)."""
    try:
        from ..monitoring import estimation
    except ImportError:  # pragma: no cover - the estimation module is optional
        return None
    if len(ref) < getattr(estimation, "MIN_REFERENCE_ROWS", 20):
        return None
    try:
        result = estimation.estimate_classification(
            [sc for sc, _ in ref], [lb for _, lb in ref], live, positive=positive, threshold=threshold
        )
    except Exception:  # noqa: BLE001 - an estimate is optional; the calibrated-score value stands
        return None
    conf = getattr(result, "confusion", None)
    if not conf:
        return None
    res = vm_math.expected_value(m, vm_math.Confusion(conf["tp"], conf["fp"], conf["fn"], conf["tn"]))
    if res.value_per_period is None:
        return _value_public(res)
    half = None
    if rough.low is not None and rough.high is not None:
        half = (rough.high - rough.low) / 2
    res = vm_math.ValueResult(
        res.value_per_period,
        res.value_per_record,
        res.currency,
        res.period,
        low=res.value_per_period - half if half is not None else None,
        high=res.value_per_period + half if half is not None else None,
    )
    return _value_public(res, f"estimated with CBPE on {len(live)} unlabelled predictions")


def live_value(db: Database, *, use_case_id: int) -> dict[str, Any]:
    """{"deployment": name|None, "realised": ValuePublic|None, "estimated": ValuePublic|None, "headline": ValuePublic}
    for the use case's production deployment (the first one by name)."""
    with db.read() as s:
        return _live(s, int(use_case_id))


def _live(s: Session, use_case_id: int) -> dict[str, Any]:
    row = _latest_row(s, use_case_id)
    vmp = _vm_public(row) if row is not None else None
    d = s.exec(
        select(Deployment)
        .where(Deployment.use_case_id == use_case_id, Deployment.environment == "production")
        .order_by(Deployment.name)
    ).first()
    out: dict[str, Any] = {"deployment": d.name if d else None, "realised": None, "estimated": None}
    if vmp is None:
        out["headline"] = _unavailable(None, "")
        return out
    if d is None:
        out["headline"] = _unavailable(vmp, "not deployed in production")
        return out
    live = _live_for_deployment(s, d, vmp)
    out.update(live)
    realised, estimated = live.get("realised"), live.get("estimated")
    n_real = 0
    if realised is not None:
        try:
            n_real = int(realised.basis.split(" labelled")[0].split()[-1])
        except (ValueError, IndexError):
            n_real = 0
    if realised is not None and (n_real >= MIN_REALISED or estimated is None):
        out["headline"] = realised
    elif estimated is not None:
        out["headline"] = estimated
    else:
        out["headline"] = _unavailable(vmp, f"no predictions in the last {LIVE_DAYS} days")
    return out


def portfolio_values(
    db: Database, *, use_case_ids: list[int] | None = None
) -> tuple[list[UseCaseValuePublic], dict[str, float]]:
    """Every use case's live value per period, best first (none last), and totals per currency and period
    (key "EUR per month"): currencies are never added together."""
    with db.read() as s:
        q = select(UseCase.id, UseCase.title)
        if use_case_ids is not None:
            q = q.where(col(UseCase.id).in_([int(i) for i in use_case_ids] or [-1]))
        cases = s.exec(q).all()
        with_models = set(s.exec(select(ValueModelRow.use_case_id).distinct()).all())
        out = []
        for uc_id, title in cases:
            if uc_id in with_models:
                live = _live(s, uc_id)
                out.append(
                    UseCaseValuePublic(
                        use_case_id=uc_id, title=title, deployment_name=live["deployment"], value=live["headline"]
                    )
                )
            else:
                out.append(
                    UseCaseValuePublic(
                        use_case_id=uc_id, title=title, deployment_name=None, value=_unavailable(None, "")
                    )
                )
    out.sort(key=lambda x: (x.value.value_per_period is None, -(x.value.value_per_period or 0.0), x.title))
    totals: dict[str, float] = {}
    for x in out:
        if x.value.value_per_period is not None:
            key = f"{x.value.currency} per {x.value.period}"
            totals[key] = totals.get(key, 0.0) + x.value.value_per_period
    return out, totals


def require_use_case(db: Database, use_case_id: int) -> None:
    with db.read() as s:
        if s.get(UseCase, int(use_case_id)) is None:
            raise NotFound(f"no use case {use_case_id}")
