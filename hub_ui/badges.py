"""One status -> badge map for every page: a Material icon, a colour and the word itself.

The word is always part of what is shown, so a machine without an emoji font (or a screen reader) still
reads "failed", not a box. Pages never keep their own icon maps; a new status word is one row in BADGES.

- `badge(status)`: inline markdown, e.g. ":green-badge[:material/check_circle: validated]", for st.markdown,
  captions, headings, expander and page-link labels.
- `show(status)`: the same as an st.badge element, where a widget of its own reads better.
- `label(status)`: the plain word, for places that render no markdown (table cells, select options).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class Badge:
    icon: str  # Material Symbols (rounded) name, without the ":material/…:" wrapper
    color: str  # a Streamlit markdown colour: green, orange, red, blue, violet, gray, primary
    text: str  # the word shown next to the icon


_OK = ("check_circle", "green")
_BAD = ("cancel", "red")
_WARN = ("warning", "orange")
_WAIT = ("hourglass_top", "orange")
_NONE = ("radio_button_unchecked", "gray")


def _b(icon_color: tuple[str, str], text: str) -> Badge:
    return Badge(icon_color[0], icon_color[1], text)


BADGES: dict[str, Badge] = {
    # dataset versions (validated | failed | waived) and ingestion runs (created | unchanged | failed)
    "validated": _b(_OK, "validated"),
    "waived": _b(_WARN, "waived"),
    "failed": _b(_BAD, "failed"),
    "created": _b(_OK, "created"),
    "unchanged": Badge("equal", "gray", "unchanged"),
    # runs and jobs (queued -> running -> finished | failed | cancelled; lost when a worker died)
    "queued": Badge("schedule", "gray", "queued"),
    "running": Badge("autorenew", "blue", "running"),
    "finished": _b(_OK, "finished"),
    "cancelled": Badge("do_not_disturb_on", "gray", "cancelled"),
    "lost": Badge("help", "red", "lost"),
    # workers
    "stopping": _b(_WAIT, "stopping"),
    "stopped": Badge("stop_circle", "gray", "stopped"),
    # reproduction check of a run
    "match": _b(_OK, "match"),
    "mismatch": _b(_BAD, "mismatch"),
    # deployment gates
    "passed": _b(_OK, "passed"),
    "not_required": Badge("remove", "gray", "not required"),
    # sign-offs and deployment requests (pending -> approved | rejected; a request ends deployed)
    "pending": _b(_WAIT, "pending"),
    "approved": Badge("thumb_up", "green", "approved"),
    "rejected": Badge("block", "red", "rejected"),
    "deployed": Badge("rocket_launch", "green", "deployed"),
    "withdrawn": Badge("do_not_disturb_on", "gray", "withdrawn"),
    # KPI lights
    "met": _b(_OK, "met"),
    "warning": _b(_WARN, "warning"),
    "missed": _b(_BAD, "missed"),
    "unknown": _b(_NONE, "unknown"),
    # KPI lights judged on estimates (no labels yet): the word says "estimated"
    "estimated_met": Badge("query_stats", "green", "estimated met"),
    "estimated_warning": Badge("query_stats", "orange", "estimated warning"),
    "estimated_missed": Badge("query_stats", "red", "estimated missed"),
    # monitoring traffic lights (drift / KPIs / health of the latest check)
    "green": _b(_OK, "ok"),
    "amber": _b(_WARN, "warning"),
    "red": Badge("error", "red", "breach"),
    "grey": _b(_NONE, "not checked"),
    # predictions and service health
    "ok": _b(_OK, "ok"),
    "error": _b(_BAD, "error"),
    "breach": Badge("error", "red", "breach"),
    # alert severities and states
    "critical": Badge("error", "red", "critical"),
    "info": Badge("info", "blue", "info"),
    "open": Badge("notifications_active", "red", "open"),
    "acknowledged": Badge("visibility", "orange", "acknowledged"),
    "resolved": Badge("task_alt", "green", "resolved"),
    # retraining proposals (proposed | approved | rejected | training | finished | failed | challenger)
    "training": Badge("model_training", "blue", "training"),
    "challenger": Badge("compare_arrows", "violet", "challenger"),
    # a use case's stage tiles and portfolio cards (services/stage_status.py states)
    "stage_good": _b(_OK, "on track"),
    "stage_warn": _b(_WARN, "watch"),
    "stage_bad": Badge("error", "red", "needs attention"),
    "stage_none": _b(_NONE, "not yet"),
    # use-case lifecycle stages
    "proposed": Badge("lightbulb", "gray", "proposed"),
    "data": Badge("database", "blue", "data"),
    "experimentation": Badge("science", "blue", "experimentation"),
    "monitored": Badge("monitor_heart", "green", "monitored"),
    "retired": Badge("archive", "gray", "retired"),
}


def get(status: str | None) -> Badge:
    """The badge of a status word; an unknown word still shows itself, in grey."""
    key = (status or "unknown").strip()
    return BADGES.get(key) or Badge("label", "gray", key.replace("_", " "))


def label(status: str | None) -> str:
    """The plain word: for table cells and select options, which render no markdown."""
    return get(status).text


def badge(status: str | None) -> str:
    """Inline markdown: a coloured badge with the icon and the word."""
    b = get(status)
    return f":{b.color}-badge[:material/{b.icon}: {b.text}]"


def kpi_words(status: str | None, segments_missed: int = 0) -> str:
    """A KPI verdict in words, with the segments that miss a KPI although the whole window meets it:
    "met overall; 2 segments missed"."""
    text = label(status)
    if segments_missed:
        text += f" overall; {segments_missed} segment{'s' if segments_missed != 1 else ''} missed"
    return text


def role_label(role: str | None) -> str:
    """A role in words: "data_engineer" -> "data engineer"."""
    return (role or "").replace("_", " ")


def show(status: str | None, **kw) -> None:
    """The badge as an st.badge element of its own."""
    b = get(status)
    st.badge(b.text, icon=f":material/{b.icon}:", color=b.color, **kw)
