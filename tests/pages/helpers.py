"""AppTest helpers: run app.py as a given user, switch pages, find widgets by label."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from mlops_core.config import PROJECT_ROOT
from mlops_core.services.auth import Actor

APP = str(PROJECT_ROOT / "app.py")


def app_as(actor: Actor | None, page: str | None = None, timeout: float = 60) -> AppTest:
    """app.py with `actor` logged in (None: logged out), then switched to `page` (e.g. "pages/activity.py")."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if actor is not None:
        at.session_state["actor"] = actor
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def by_label(widgets, label: str):
    for w in widgets:
        if w.label == label:
            return w
    raise AssertionError(f"no widget labelled {label!r}; have: {[w.label for w in widgets]}")


def texts(at: AppTest) -> str:
    """Everything a user can read on the page (markdown, captions, alerts, titles), as one string."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
        "metric",
    ):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    return "\n".join(parts)


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
