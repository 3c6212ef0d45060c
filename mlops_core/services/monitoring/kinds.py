"""The kinds of check a monitor runs, one object each: what it measures and when it alerts.

Every check first reads the shared figures of its window (health, labels, performance: see
`checks._compute_check`); then each kind in `CHECKS`, in order,
- `validate(values)`: refuses a bad setting of its `fields` (the Monitor columns that configure it);
- `measure(db, monitor, dep, figures)`: adds its own figures (drift adds "drift", kpi adds "kpis");
- `breaches(monitor, dep, check, figures, base)`: what it found that should raise an alert.

To add a check: one new object in this file (and, when it needs a new setting, that Monitor column).
The order of `CHECKS` is the order of validation messages, of alerts raised by one check and so of
which alert starts a retraining.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ...db import Database
from ...errors import ValidationError
from ...models.monitoring import CheckDriftPublic, CheckKpiPublic, Monitor, MonitorCheck
from ...monitoring.figures import finite
from .. import usecases
from .alerts import Breach
from .windows import align, load_window_frame, reference_frame

log = logging.getLogger(__name__)

# Fewer labelled predictions than this in a window: metrics are shown but KPIs stay "unknown"
# (a handful of labels says nothing and would only raise noisy alerts).
MIN_LABELLED_FOR_KPIS = 20
# Fewer rows than this in a window: no drift verdict (evidently's tests need some data).
MIN_ROWS_FOR_DRIFT = 10


class CheckKind:
    """One kind of check; subclasses override what they need (the defaults measure and raise nothing)."""

    kind = ""  # the alert kind its breaches raise
    fields: tuple[str, ...] = ()  # Monitor columns that configure it
    retrains = False  # a new alert of this kind starts retraining (per the monitor's policy)
    health = False  # a breach makes the check's health status "breach"

    def validate(self, values: dict[str, Any]) -> None:
        """Raise ValidationError for a bad value of one of `fields`."""

    def measure(self, db: Database, monitor: Monitor, dep, figures: dict[str, Any]) -> None:
        """Add this kind's figures to `figures` (no writes)."""

    def breached(self, monitor: Monitor, figures: dict[str, Any]) -> bool:
        """Whether the figures cross this kind's threshold."""
        return False

    def breaches(
        self, monitor: Monitor, dep, check: MonitorCheck, figures: dict[str, Any], base: dict[str, Any]
    ) -> list[Breach]:
        """The alerts to raise (`base`: deployment, monitor, check and link fields every breach carries)."""
        return []

    def store(self, s, check: MonitorCheck, figures: dict[str, Any]) -> None:
        """Write this kind's own rows for the check (inside the check's unit of work, `check.id` is set)."""


def effect_words(effect: dict[str, Any] | None) -> str:
    """ "mean 13.0 → 15.5, 4.1 sd" or "north 32% → 51%" from a drift result's effect ('' without one)."""
    if not effect:
        return ""
    if effect.get("kind") == "mean" and effect.get("reference_mean") is not None:
        text = f"mean {effect['reference_mean']:.3g} → {effect['current_mean']:.3g}"
        if effect.get("shift_sd") is not None:
            text += f", {abs(effect['shift_sd']):.1f} sd"
        return text
    if effect.get("kind") == "share" and effect.get("value") is not None:
        return f"{effect['value']} {effect['reference_share']:.0%} → {effect['current_share']:.0%}"
    return ""


class DriftCheck(CheckKind):
    """Data drift of the window's inputs (and predictions) against the model's training reference."""

    kind = "drift"
    fields = ("columns", "method_overrides", "threshold_overrides", "drift_share", "important_columns")
    retrains = True

    def validate(self, values: dict[str, Any]) -> None:
        if not 0.0 < float(values["drift_share"]) <= 1.0:
            raise ValidationError(
                "drift share must be in (0, 1]: the share of drifted columns that makes the dataset drifted"
            )
        # the drift module imports scipy: loaded when a monitor is configured, not with every page
        from ...monitoring.drift import SUPPORTED_METHODS

        for column, method in (values["method_overrides"] or {}).items():
            if method not in SUPPORTED_METHODS:
                raise ValidationError(
                    f"drift method {method!r} for column {column!r} is not supported; "
                    f"use one of {', '.join(SUPPORTED_METHODS)}"
                )
        for column, thr in (values["threshold_overrides"] or {}).items():
            if finite(thr) is None:
                raise ValidationError(f"the drift threshold of column {column!r} must be a number (got {thr!r})")
        important = values.get("important_columns")
        if important is not None and (
            not isinstance(important, list) or not all(isinstance(c, str) and c for c in important)
        ):
            raise ValidationError("important columns must be a list of column names")

    def measure(self, db: Database, monitor: Monitor, dep, figures: dict[str, Any]) -> None:
        # scipy again (see validate): only a worker running a check pays for it
        from ...monitoring import detect_drift

        out = figures
        out["drift"] = None
        if out["health"].volume == 0:
            out["status"] = "no_data"
            return
        if dep.model_version_id is None:
            out["status"] = "failed"
            out["error"] = f"deployment {dep.name} serves no model version yet, so there is no training reference"
            return
        from .checks import drift_from_sketches, use_sketches  # issue 16.4: large windows from sketches

        if use_sketches(out["health"].volume):
            drift_from_sketches(db, monitor, dep, out)
            return
        try:
            ref, ref_pred, ref_version = reference_frame(db, model_version_id=dep.model_version_id)
        except Exception as exc:  # noqa: BLE001 - a check without reference still stores health and performance
            out["status"] = "failed"
            out["error"] = f"could not load the training reference: {exc}"[:2000]
            return
        out["reference_dataset_version_id"] = ref_version
        out["n_reference_rows"] = len(ref)
        with db.read() as s:
            cur = load_window_frame(s, deployment_id=dep.id, window=out["window"], columns=list(ref.columns))
        out["unreadable_rows"] = cur.attrs.get("unreadable_rows", 0)
        if len(cur) < MIN_ROWS_FOR_DRIFT:
            out["status"] = "ok"
            out["drift_note"] = (
                f"only {len(cur)} rows in the window: at least {MIN_ROWS_FOR_DRIFT} are needed for drift"
            )
            return
        current = align(cur.drop(columns="__prediction__"), ref)
        columns = [c for c in (monitor.columns or list(ref.columns)) if c in ref.columns]
        methods = {k: v for k, v in (monitor.method_overrides or {}).items() if k in columns}
        thresholds = {k: float(v) for k, v in (monitor.threshold_overrides or {}).items() if k in columns}
        try:
            result = detect_drift(
                ref,
                current,
                columns=columns,
                stattest_overrides=methods or None,
                threshold_overrides=thresholds or None,
                drift_share=monitor.drift_share,
            )
        except ValueError as exc:
            out["status"] = "failed"
            out["error"] = f"drift could not be computed: {exc}"[:2000]
            return
        drift = result.to_dict()
        drift["prediction"] = None
        if ref_pred is not None:
            ref_s = pd.Series(ref_pred)
            cur_s = pd.Series(list(cur["__prediction__"]))
            if ref_s.dtype.kind in "fiub" and pd.api.types.is_numeric_dtype(cur_s):
                cur_s = cur_s.astype(ref_s.dtype if cur_s.notna().all() else float)
            else:
                ref_s, cur_s = ref_s.astype(str).astype(object), cur_s.astype(str).astype(object)
            try:
                pr = detect_drift(pd.DataFrame({"prediction": ref_s}), pd.DataFrame({"prediction": cur_s}))
                drift["prediction"] = pr.columns["prediction"].to_dict() if "prediction" in pr.columns else None
            except (ValueError, TypeError) as exc:
                log.info("prediction drift skipped: %s", exc)
        out["drift"] = CheckDriftPublic.model_validate(drift)

    def breaches(self, monitor, dep, check, figures, base):
        dataset = self._dataset_breaches(monitor, dep, check, figures, base)
        if dataset:
            return dataset
        return self._important_column_breaches(monitor, dep, check, figures, base)

    def _important_column_breaches(self, monitor, dep, check, figures, base):
        """Issue 15: a drifted column marked important alerts on its own, one alert per column."""
        drift: CheckDriftPublic | None = figures.get("drift")
        important = getattr(monitor, "important_columns", None) or []
        if not (drift and important):
            return []
        out = []
        for col in important:
            res = drift.columns.get(col)
            if res is None or not res.drifted:
                continue
            shift = effect_words(res.effect)
            out.append(
                Breach(
                    kind="drift",
                    severity="warning",
                    key=f"drift:{dep.id}:{monitor.id}:column:{col}",
                    title=f"{col} drifted on {dep.name}" + (f": {shift}" if shift else ""),
                    detail=f"{col} is marked important on the monitor and drifted ({res.method}, score "
                    f"{res.score:.3g} against threshold {res.threshold:.3g}) over {check.n_rows:,} predictions, "
                    f"although only {drift.number_of_drifted_columns} of {drift.number_of_columns} columns "
                    "drifted in all.",
                    evidence={
                        "check_id": check.id,
                        "drifted_columns": [col],
                        "column": col,
                        "effect": res.effect,
                        "drift_share": drift.drift_share,
                    },
                    **base,
                )
            )
        return out

    def _dataset_breaches(self, monitor, dep, check, figures, base):
        drift: CheckDriftPublic | None = figures.get("drift")
        if not (drift and drift.dataset_drifted):
            return []
        cols = drift.drifted_columns
        need = getattr(monitor, "drift_min_importance", None)
        if need is not None:  # issue 17: only drift in a feature that matters alerts
            ranked = [r for r in figures.get("drift_ranking") or [] if r["drifted"] and (r["rank_score"] or 0) >= need]
            if not ranked:
                return []
            cols = [r["column"] for r in ranked] + [c for c in cols if c not in {r["column"] for r in ranked}]
        return [
            Breach(
                kind="drift",
                severity="warning",
                key=f"drift:{dep.id}:{monitor.id}",
                title=f"Data drift on {dep.name}: {len(cols)} of {drift.number_of_columns} columns drifted",
                detail=f"drifted columns: {', '.join(cols)} (share {drift.drift_share:.0%} >= "
                f"{drift.drift_share_threshold:.0%}) over {check.n_rows:,} predictions "
                f"against the training data.",
                evidence={"check_id": check.id, "drifted_columns": cols, "drift_share": drift.drift_share},
                **base,
            )
        ]


class KpiCheck(CheckKind):
    """The use case's model KPIs evaluated on the window's labelled predictions."""

    kind = "kpi_missed"
    fields = ("watch_kpis",)
    retrains = True

    def measure(self, db: Database, monitor: Monitor, dep, figures: dict[str, Any]) -> None:
        figures["kpis"] = []
        if monitor.use_case_id is None:
            return
        n_labelled = figures["performance"].n_labelled
        for c in usecases.evaluate_metrics(db, monitor.use_case_id, figures["performance"].metrics):
            if monitor.watch_kpis and c.kpi.name not in monitor.watch_kpis:
                continue
            status = c.status if n_labelled >= MIN_LABELLED_FOR_KPIS else "unknown"
            figures["kpis"].append(
                CheckKpiPublic(
                    kpi_id=c.kpi.id,
                    name=c.kpi.name,
                    metric=c.kpi.metric,
                    direction=c.kpi.direction,
                    target=c.kpi.target,
                    warning=c.kpi.warning,
                    value=c.value,
                    status=status,
                )
            )

    def breaches(self, monitor, dep, check, figures, base):
        return [
            Breach(
                kind="kpi_missed",
                severity="critical",
                key=f"kpi_missed:{dep.id}:{k.name}",
                title=f"KPI missed on {dep.name}: {k.name} = {k.value:.3f} (target {k.direction} {k.target:g})",
                detail=f"{k.metric} on {figures['performance'].n_labelled:,} labelled predictions "
                f"is {k.value:.4f}; the use case needs {k.direction} {k.target:g}.",
                evidence={"check_id": check.id, "kpi": k.model_dump(mode="json", exclude_unset=True)},
                **base,
            )
            for k in figures.get("kpis") or []
            if k.status == "missed"
        ]


class ThresholdCheck(CheckKind):
    """A figure of the window against one limit set on the monitor: breached when the figure is known and
    crosses it (above `limit_field`, or below it when `below`); one alert per deployment."""

    limit_field = ""  # the Monitor column holding the limit (None: not watched)
    below = False  # breached when the figure falls below the limit (else when it rises above)
    severity = "warning"

    def figure(self, figures: dict[str, Any]) -> float | None:
        """The watched figure of this window (None when unknown)."""
        raise NotImplementedError

    def breached(self, monitor, figures):
        limit, value = getattr(monitor, self.limit_field), self.figure(figures)
        if limit is None or value is None:
            return False
        return value < limit if self.below else value > limit

    def alert_text(self, monitor, dep, figures) -> tuple[str, str, dict[str, Any]]:
        """The alert's title, detail and evidence (besides the check id)."""
        raise NotImplementedError

    def breaches(self, monitor, dep, check, figures, base):
        if not self.breached(monitor, figures):
            return []
        title, detail, evidence = self.alert_text(monitor, dep, figures)
        return [
            Breach(
                kind=self.kind,
                severity=self.severity,
                key=f"{self.kind}:{dep.id}",
                title=title,
                detail=detail,
                evidence={"check_id": check.id, **evidence},
                **base,
            )
        ]


class ErrorRateCheck(ThresholdCheck):
    """The share of requests the service failed (5xx) in the window; the client's 4xx are not counted."""

    kind = "error_rate"
    fields = ("max_error_rate",)
    limit_field = "max_error_rate"
    severity = "critical"
    health = True

    def validate(self, values: dict[str, Any]) -> None:
        if values["max_error_rate"] is not None and not 0 <= float(values["max_error_rate"]) <= 1:
            raise ValidationError("the error-rate threshold is a share between 0 and 1 (e.g. 0.05 for 5 %)")

    def figure(self, figures):
        return figures["health"].error_rate

    def alert_text(self, monitor, dep, figures):
        h = figures["health"]
        return (
            f"Error rate on {dep.name} is {h.error_rate:.1%} (limit {monitor.max_error_rate:.1%})",
            f"{h.errors:,} of {h.volume:,} requests in the window failed on the service side (5xx)"
            + (f"; {h.client_errors:,} client errors (4xx) are not counted." if h.client_errors else "."),
            {"health": h.model_dump(mode="json", exclude_unset=True)},
        )


class LatencyCheck(ThresholdCheck):
    """The p95 latency of the window's requests."""

    kind = "latency"
    fields = ("max_latency_p95_ms",)
    limit_field = "max_latency_p95_ms"
    health = True

    def validate(self, values: dict[str, Any]) -> None:
        if values["max_latency_p95_ms"] is not None and float(values["max_latency_p95_ms"]) <= 0:
            raise ValidationError("the p95 latency threshold must be a positive number of milliseconds")

    def figure(self, figures):
        return figures["health"].latency_p95_ms

    def alert_text(self, monitor, dep, figures):
        h = figures["health"]
        return (
            f"p95 latency on {dep.name} is {h.latency_p95_ms:.0f} ms (limit {monitor.max_latency_p95_ms:.0f} ms)",
            f"p50 {h.latency_p50_ms:.0f} ms, p95 {h.latency_p95_ms:.0f} ms, "
            f"p99 {h.latency_p99_ms:.0f} ms over {h.volume:,} requests.",
            {"health": h.model_dump(mode="json", exclude_unset=True)},
        )


class LabelCoverageCheck(ThresholdCheck):
    """The share of the window's predictions whose late label has arrived."""

    kind = "label_coverage"
    fields = ("min_label_coverage",)
    limit_field = "min_label_coverage"
    below = True
    severity = "info"

    def validate(self, values: dict[str, Any]) -> None:
        if values["min_label_coverage"] is not None and not 0 <= float(values["min_label_coverage"]) <= 1:
            raise ValidationError("the label-coverage threshold is a share between 0 and 1")

    def figure(self, figures):
        return figures["labels"]["coverage"]

    def alert_text(self, monitor, dep, figures):
        lab = figures["labels"]
        return (
            f"Label coverage on {dep.name} is {lab['coverage']:.0%} "
            f"(expected at least {monitor.min_label_coverage:.0%})",
            f"{lab['n_unlabelled']:,} predictions in the window have no label yet; "
            "performance figures rest on the labelled ones only.",
            {"labels": lab},
        )


CHECKS: list[CheckKind] = [DriftCheck(), KpiCheck(), ErrorRateCheck(), LatencyCheck(), LabelCoverageCheck()]
# Estimated KPIs and segments (issue 17): subclasses of CheckKind above, in their own module.
from .estimates import EstimatedKpiCheck, SegmentCheck  # noqa: E402

CHECKS += [EstimatedKpiCheck(), SegmentCheck()]
# Alert kinds that start the retraining loop when newly opened.
RETRAINING_KINDS = frozenset(k.kind for k in CHECKS if k.retrains)
