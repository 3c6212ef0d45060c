"""Monitoring: data drift (fast, evidently-compatible verdicts) and on-demand evidently reports."""

from mlops_core.monitoring.drift import ColumnDrift, DriftResult, detect_drift

__all__ = ["ColumnDrift", "DriftResult", "detect_drift"]
