"""Plotly axes that stay readable with few points (issue 15, problem 14).

A time axis with one or two points lets plotly zoom to milliseconds ("16:15:15.6105"); a numeric axis of one
check id becomes "8.6 – 9.4". `time_axis` pads a short span to at least an hour and formats ticks to the
minute; `category_axis` treats ids as labels."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

MIN_SPAN = timedelta(hours=1)


def time_axis(values, title: str | None = None) -> dict:
    xs = pd.to_datetime(pd.Series(list(values)), errors="coerce", utc=True).dropna()
    axis: dict = {"type": "date", "tickformat": "%b %d, %H:%M", "nticks": 8}
    if title:
        axis["title"] = title
    if xs.empty:
        return axis
    lo, hi = xs.min(), xs.max()
    if hi - lo < MIN_SPAN:
        mid = lo + (hi - lo) / 2
        lo, hi = mid - MIN_SPAN / 2, mid + MIN_SPAN / 2
        # plotly.js drops a timezone suffix and shows the wall time: give the range the same way
        axis["range"] = [t.tz_convert(None).strftime("%Y-%m-%d %H:%M:%S") for t in (lo, hi)]
    return axis


def category_axis(title: str | None = None) -> dict:
    axis: dict = {"type": "category"}
    if title:
        axis["title"] = title
    return axis
