"""Database handle, the logged-in actor, and error display for pages."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import streamlit as st

from mlops_core.config import get_settings
from mlops_core.db import Database, check_schema, get_database
from mlops_core.errors import AuthenticationFailed, DomainError, PermissionDenied
from mlops_core.services import ui_sessions, users
from mlops_core.services.auth import Actor, can
from mlops_core.textsafety import plain_markdown

# Session keys: the logged-in Actor, when this session last interacted (time.time(); tests shift it to
# simulate an idle session), and a message for the login form after a forced log-out.
ACTOR, LAST_SEEN, LOGIN_NOTICE = "actor", "_last_seen", "_login_notice"
# The browser session behind the cookie (docs/SECURITY.md, "UI sessions"): its row id, a hand-off code the
# browser still has to trade for the cookie, a request to delete the cookie, whether this Streamlit session
# already looked at the cookie, and when it last moved the row's last-seen time.
UI_SESSION, HANDOFF, CLEAR_COOKIE, COOKIE_TRIED, LAST_TOUCH = (
    "_ui_session_id",
    "_ui_handoff",
    "_ui_clear_cookie",
    "_ui_cookie_tried",
    "_ui_last_touch",
)
TOUCH_SECONDS = 60


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
    """Forget everything about this session and revoke its browser session (the cookie stops working at
    once); the login form shows `notice` and asks the browser to delete the cookie."""
    session_id, who = st.session_state.get(UI_SESSION), st.session_state.get(ACTOR)
    if session_id is not None:
        try:
            ui_sessions.end(db(), actor=who, session_id=session_id)
        except DomainError:
            pass  # a database hiccup must not keep anyone logged in here; the row also expires on its own
    st.session_state.clear()
    st.session_state[CLEAR_COOKIE] = True
    st.session_state[COOKIE_TRIED] = True  # the old cookie names a revoked session: do not read it again
    if notice:
        st.session_state[LOGIN_NOTICE] = notice
    user = getattr(st, "user", None)
    if user is not None and getattr(user, "is_logged_in", False):
        st.logout()  # single sign-on: otherwise the login page would sign the same identity in again


def logged_in(a: Actor) -> None:
    """The login page's success: remember the actor and open a browser session; the next render asks the
    browser to trade the one-time code for the httpOnly cookie (see cookie_scripts)."""
    st.session_state[ACTOR] = a
    st.session_state[LAST_SEEN] = time.time()
    st.session_state[COOKIE_TRIED] = True
    try:
        code = ui_sessions.begin(db(), actor=a, client=client_address())
        st.session_state[UI_SESSION] = ui_sessions.session_id_for_code(db(), code=code)
        st.session_state[HANDOFF] = code
    except DomainError:
        pass  # logged in for this tab only, as before sessions survived a refresh


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(ui_sessions.COOKIE_NAME)
    except Exception:  # noqa: BLE001 - no script run context, or AppTest's mock context
        return None
    return value if isinstance(value, str) and value else None


def _resume_from_cookie() -> Actor | None:
    """A new Streamlit session (a refresh, a new tab, a link): log in from the session cookie if it is valid."""
    if st.session_state.get(COOKIE_TRIED):
        return None
    st.session_state[COOKIE_TRIED] = True
    cookie = _cookie()
    if cookie is None:
        return None
    try:
        resumed = ui_sessions.resume(db(), cookie=cookie)
    except AuthenticationFailed as exc:
        st.session_state[CLEAR_COOKIE] = True
        if not str(exc).startswith("you logged out"):
            st.session_state[LOGIN_NOTICE] = str(exc)
        return None
    except DomainError:
        return None
    st.session_state[ACTOR] = resumed.actor
    st.session_state[UI_SESSION] = resumed.session_id
    st.session_state[LAST_TOUCH] = time.time()
    return resumed.actor


def _touch(now: float) -> None:
    session_id = st.session_state.get(UI_SESSION)
    if session_id is None or now - float(st.session_state.get(LAST_TOUCH) or 0) < TOUCH_SECONDS:
        return
    st.session_state[LAST_TOUCH] = now
    try:
        ui_sessions.touch(db(), session_id=session_id)
    except DomainError:
        pass


def cookie_scripts() -> None:
    """Once after a login or a log-out: a same-origin request that sets or deletes the httpOnly cookie
    (hub_ui/session_routes.py). Invisible; JavaScript cannot read the cookie, only this server can."""
    code = st.session_state.pop(HANDOFF, None)
    clear = st.session_state.pop(CLEAR_COOKIE, None)
    if code:
        body = "code=" + code  # token_urlsafe: no character needs escaping
        url = "/_hub/session"
    elif clear:
        body, url = "", "/_hub/logout"
    else:
        return
    st.html(
        "<script>fetch(" + json.dumps(url) + ", {method: 'POST', credentials: 'same-origin', "
        "headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: " + json.dumps(body) + "});</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def refresh_actor() -> Actor | None:
    """Once per rerun (app.py): end an idle session, and replace the session's Actor with its role and
    active flag as stored now (one primary-key read), so that a demotion or a deactivation reaches a tab
    that is already open. The services re-check on every write as well (services/auth.py)."""
    now = time.time()
    last = st.session_state.get(LAST_SEEN)
    st.session_state[LAST_SEEN] = now
    a = st.session_state.get(ACTOR)
    if a is None:
        a = _resume_from_cookie()
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
    _touch(now)
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
