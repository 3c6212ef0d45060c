"""Monitoring: data drift (fast, evidently-compatible verdicts) and on-demand evidently reports.

`detect_drift` and friends are imported lazily (module __getattr__): the drift module needs
numpy/scipy, and `python -m mlops_core --help` imports `mlops_core.monitoring.cli` through this
package, which must stay fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ColumnDrift", "DriftResult", "detect_drift"]

if TYPE_CHECKING:  # pragma: no cover
    from mlops_core.monitoring.drift import ColumnDrift, DriftResult, detect_drift


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlops_core.monitoring import drift

        return getattr(drift, name)
    raise AttributeError(f"module 'mlops_core.monitoring' has no attribute {name!r}")
