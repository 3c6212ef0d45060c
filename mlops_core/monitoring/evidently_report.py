"""The only module of the project that imports evidently (lazily: importing it costs seconds).

* :func:`evidently_drift_verdicts` runs the real ``DataDriftPreset`` and returns its verdicts in
  the same shape as ``DriftResult.to_dict()``; it is the oracle the drift tests and the
  benchmark compare :func:`mlops_core.monitoring.drift.detect_drift` against.
* :func:`render_drift_report_html` returns the preset's full HTML report, rendered on demand, with
  the data evidently inlines in a ``<script>`` made safe (:func:`escape_report_data`).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Sequence, Tuple

import pandas as pd

__all__ = ["escape_report_data", "evidently_drift_verdicts", "render_drift_report_html"]

# evidently (legacy/utils/dashboard.py, file_html_template) inlines the report's data as
#     <script>\n    var <id> = <json>;\n    var additional_graphs_<id> = <json>;\n</script>
# with json.dumps, which leaves "</script>" inside strings as it is: a logged category value
# "</script><script>...</script>" closed the data block and ran as a script of the page that shows the
# report. json.dumps never emits a raw newline, so each JSON value is exactly one line.
_DATA_BLOCK = re.compile(
    r"(<script>\n\s*var (?P<id>\w+) = )(?P<data>.*)(;\n\s*var additional_graphs_(?P=id) = )(?P<graphs>.*)(;\n</script>)"
)


def _run_preset(reference: pd.DataFrame, current: pd.DataFrame, columns: Optional[Sequence[str]], drift_share: float):
    # evidently is heavy (seconds): loaded only when a report is rendered
    from evidently import Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(columns=list(columns) if columns is not None else None, drift_share=drift_share)
    report = Report([preset], include_tests=True)
    return report.run(current, reference)


def _method_names() -> Dict[str, str]:
    """evidently reports a test's display name ("K-S p_value"); map it back to its short name ("ks")."""
    # evidently is heavy (seconds): loaded only when a report is rendered
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
    """Full standalone HTML of evidently's ``DataDriftPreset`` report (slow: render on demand), with its
    inlined data escaped so no value from the logged traffic can end the script block it sits in."""
    snapshot = _run_preset(reference, current, columns, drift_share)
    html, blocks = escape_report_data(snapshot.get_html_str(as_iframe=False))
    if blocks != 1:
        # Fail closed: an evidently upgrade changed the layout, and an unescaped report must not be stored.
        raise RuntimeError(
            f"evidently's report has {blocks} data blocks where 1 was expected; "
            "update mlops_core.monitoring.evidently_report._DATA_BLOCK for this evidently version"
        )
    return html


def _escape_json(text: str) -> str:
    # "<" only ever occurs inside JSON strings, where \u003c is the same character to JSON and to
    # JavaScript; without any "<" the HTML parser can neither see "</script" nor "<!--" in the block.
    return text.replace("<", "\\u003c")


def escape_report_data(html: str) -> Tuple[str, int]:
    """(evidently's HTML with "<" in its inlined JSON written as \\u003c, number of data blocks escaped).

    Idempotent, so it also makes reports stored before this existed safe when they are read again."""
    n = 0

    def fix(m: "re.Match[str]") -> str:
        nonlocal n
        n += 1
        return m.group(1) + _escape_json(m.group("data")) + m.group(4) + _escape_json(m.group("graphs")) + m.group(6)

    return _DATA_BLOCK.sub(fix, html), n
