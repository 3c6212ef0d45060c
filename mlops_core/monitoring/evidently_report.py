"""The only module of the project that imports evidently (lazily: importing it costs seconds).

* :func:`evidently_drift_verdicts` runs the real ``DataDriftPreset`` and returns its verdicts in
  the same shape as ``DriftResult.to_dict()``; it is the oracle the drift tests and the
  benchmark compare :func:`mlops_core.monitoring.drift.detect_drift` against.
* :func:`render_drift_report_html` returns the preset's full HTML report, rendered on demand.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import pandas as pd

__all__ = ["evidently_drift_verdicts", "render_drift_report_html"]


def _run_preset(reference: pd.DataFrame, current: pd.DataFrame, columns: Optional[Sequence[str]], drift_share: float):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(columns=list(columns) if columns is not None else None, drift_share=drift_share)
    report = Report([preset], include_tests=True)
    return report.run(current, reference)


def _method_names() -> Dict[str, str]:
    """evidently reports a test's display name ("K-S p_value"); map it back to its short name ("ks")."""
    from evidently.legacy.calculations import stattests
    from evidently.legacy.calculations.stattests.registry import StatTest

    names = {}
    for value in vars(stattests).values():
        if isinstance(value, StatTest) and value.name:
            names[value.display_name] = value.name
    return names


def evidently_drift_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Optional[Sequence[str]] = None,
    *,
    drift_share: float = 0.5,
) -> Dict[str, Any]:
    """Run evidently's ``DataDriftPreset`` (defaults) and return its verdicts.

    Returns ``{"dataset_drifted": bool, "drift_share": float, "number_of_columns": int,
    "number_of_drifted_columns": int, "columns": {column: {"method", "method_display",
    "score", "threshold", "drifted"}}}``. ``method`` is evidently's short stattest name
    ("ks", "wasserstein", "chisquare", "z", "jensenshannon", ...). Column verdicts come from the
    preset's per-column "Value Drift" tests, the dataset verdict from its "Share of Drifted
    Columns" test.
    """
    snapshot = _run_preset(reference, current, columns, drift_share)
    data = snapshot.dict()
    names = _method_names()

    metric_columns: Dict[str, str] = {}  # metric id -> column
    verdicts: Dict[str, Dict[str, Any]] = {}
    count_metric_id = None
    share = None
    drifted_count = None
    for metric in data["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            column = config["column"]
            metric_columns[metric["id"]] = column
            display = config.get("method")
            verdicts[column] = {
                "method": names.get(display, display),
                "method_display": display,
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drifted": None,
            }
        elif kind.endswith(":DriftedColumnsCount"):
            count_metric_id = metric["id"]
            drifted_count = int(metric["value"]["count"])
            share = float(metric["value"]["share"])

    dataset_drifted = None
    for test in data["tests"]:
        metric_id = test["metric_config"]["metric_id"]
        failed = test["status"] == "FAIL"
        if metric_id in metric_columns:
            verdicts[metric_columns[metric_id]]["drifted"] = failed
        elif metric_id == count_metric_id:
            dataset_drifted = failed
    if dataset_drifted is None and share is not None:
        dataset_drifted = share >= drift_share
    missing = [c for c, v in verdicts.items() if v["drifted"] is None]
    if missing:  # pragma: no cover - evidently always emits one test per ValueDrift with include_tests
        raise RuntimeError(f"evidently returned no drift test for columns: {', '.join(missing)}")

    return {
        "dataset_drifted": bool(dataset_drifted),
        "drift_share": share,
        "number_of_columns": len(verdicts),
        "number_of_drifted_columns": drifted_count,
        "columns": verdicts,
    }


def render_drift_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Optional[Sequence[str]] = None,
    *,
    drift_share: float = 0.5,
) -> str:
    """Full standalone HTML of evidently's ``DataDriftPreset`` report (slow: render on demand)."""
    snapshot = _run_preset(reference, current, columns, drift_share)
    return snapshot.get_html_str(as_iframe=False)
