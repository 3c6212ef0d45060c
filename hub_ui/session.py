"""Database handle, the logged-in actor, and error display for pages."""

from __future__ import annotations

import time
from contextlib import contextmanager

import streamlit as st

from mlops_core.config import get_settings
from mlops_core.db import Database, check_schema, get_database
from mlops_core.errors import AuthenticationFailed, DomainError, PermissionDenied
from mlops_core.services import users
from mlops_core.services.auth import Actor, can
from mlops_core.textsafety import plain_markdown

# Session keys: the logged-in Actor, when this session last interacted (time.time(); tests shift it to
# simulate an idle session), and a message for the login form after a forced log-out.
ACTOR, LAST_SEEN, LOGIN_NOTICE = "actor", "_last_seen", "_login_notice"


@st.cache_resource(show_spinner=False)
def _shared_database(url: str | None) -> Database:
    # One engine per process, shared by every session (thread-safe); see STYLE.md.
    return get_database(url)


def db() -> Database:
    return _shared_database(get_settings().database_url)


def ensure_schema() -> None:
    """Refuse to run on a missing or out-of-date schema, saying which command fixes it."""
    if st.session_state.get("_schema_ok"):
        return
    try:
        check_schema(db())
    except DomainError as exc:
        st.error(f"MLOps Hub cannot start: {exc}")
        st.stop()
    st.session_state["_schema_ok"] = True


def actor() -> Actor | None:
    return st.session_state.get(ACTOR)


def client_address() -> str | None:
    """The browser's address as Streamlit sees it (None for localhost and in AppTest): the login throttle's
    per-client counter."""
    try:
        ip = getattr(st.context, "ip_address", None)
    except Exception:  # noqa: BLE001 - no script run context
        return None
    return ip[:64] if isinstance(ip, str) and ip else None  # AppTest's context answers a mock object


def log_out(notice: str | None = None) -> None:
    """Forget everything about this session; the login form shows `notice`."""
    st.session_state.clear()
    if notice:
        st.session_state[LOGIN_NOTICE] = notice
    user = getattr(st, "user", None)
    if user is not None and getattr(user, "is_logged_in", False):
        st.logout()  # single sign-on: otherwise the login page would sign the same identity in again


def refresh_actor() -> Actor | None:
    """Once per rerun (app.py): end an idle session, and replace the session's Actor with its role and
    active flag as stored now (one primary-key read), so that a demotion or a deactivation reaches a tab
    that is already open. The services re-check on every write as well (services/auth.py)."""
    now = time.time()
    last = st.session_state.get(LAST_SEEN)
    st.session_state[LAST_SEEN] = now
    a = st.session_state.get(ACTOR)
    if a is None:
        return None
    idle_hours = get_settings().session_idle_hours
    if last is not None and now - float(last) > idle_hours * 3600:
        log_out(f"your session expired after {idle_hours:g} hours without activity; please log in again")
        return None
    if a.id is None:
        return a
    try:
        fresh = users.current_actor(db(), actor_id=a.id)
    except AuthenticationFailed as exc:
        log_out(str(exc))
        return None
    if fresh != a:
        st.session_state[ACTOR] = fresh
        if fresh.role != a.role:
            st.toast(f"Your role is now {fresh.role}: the screens and actions you see changed.")
    return fresh


def require_actor() -> Actor:
    a = actor()
    if a is None:
        st.warning("Please log in.")
        st.stop()
    return a


def may(action: str) -> bool:
    a = actor()
    return a is not None and can(a, action)


@contextmanager
def service_call(success: str | None = None):
    """Run one service call; show a domain error as a message instead of a traceback."""
    try:
        yield
    except PermissionDenied as exc:
        st.error(f"Not allowed: {plain_markdown(str(exc))}")
    except DomainError as exc:
        st.error(plain_markdown(str(exc)))
    else:
        if success:
            st.success(plain_markdown(success))


def fmt_time(dt) -> str:
    if dt is None:
        return "—"
    return dt.strftime("%Y-%m-%d %H:%M")


def pick_from_query(label: str, options: list[str], *, key: str, param: str) -> str:
    """A selectbox that follows `?param=` when the URL changes (links from other pages) and writes the
    choice back to the URL, so a page can be bookmarked and shared."""
    seen_key = f"_{key}_qp"
    wanted = st.query_params.get(param)
    if wanted in options and st.session_state.get(seen_key) != wanted:
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    choice = st.selectbox(label, options, key=key)
    st.query_params[param] = choice
    st.session_state[seen_key] = choice
    return choice


def pick_id_from_query(label: str, labels: dict[int, str], *, key: str, param: str, default: int | None = None) -> int:
    """pick_from_query for entities chosen by integer id and shown by label (`?param=<id>`): the URL wins
    when it changes, then the current choice, then `default`, then the first option."""
    seen_key = f"_{key}_qp"
    raw = st.query_params.get(param)
    wanted = int(raw) if raw and raw.isdigit() else None
    if wanted in labels and st.session_state.get(seen_key) != raw:
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in labels:
        st.session_state[key] = default if default in labels else next(iter(labels))
    choice = st.selectbox(label, list(labels), format_func=lambda i: labels.get(i, str(i)), key=key)
    st.query_params[param] = str(choice)
    st.session_state[seen_key] = str(choice)
    return choice
