"""Monitoring: data drift (fast, evidently-compatible verdicts) and on-demand evidently reports."""

from __future__ import annotations

from .drift import ColumnDrift, DriftResult, detect_drift

__all__ = ["ColumnDrift", "DriftResult", "detect_drift"]
