"""The two HTTP routes the UI server adds next to Streamlit's own (hub_server.py mounts them).

Streamlit talks to the browser over a websocket, which cannot set a cookie; these plain same-origin requests
can. `POST /_hub/session` trades the one-time code the login form produced for the httpOnly session cookie;
`POST /_hub/logout` revokes the session the cookie names and deletes the cookie. See
mlops_core/services/ui_sessions.py and docs/SECURITY.md ("UI sessions").
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_core.db import get_database
from mlops_core.errors import AuthenticationFailed
from mlops_core.services import ui_sessions

SESSION_PATH, LOGOUT_PATH = "/_hub/session", "/_hub/logout"


def _same_origin(request: Request) -> bool:
    """Browsers send Origin on a cross-site POST: refuse one that names another host."""
    origin = request.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


async def _form_code(request: Request) -> str:
    form = await request.form()
    code = form.get("code")
    return code if isinstance(code, str) and len(code) <= 100 else ""


async def start_session(request: Request) -> Response:
    if not _same_origin(request):
        return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
    code = await _form_code(request)
    try:
        cookie = await asyncio.to_thread(ui_sessions.redeem, get_database(), code=code)
    except AuthenticationFailed as exc:
        return JSONResponse({"error": str(exc)}, status_code=403)
    resp = Response(status_code=204, headers={"Cache-Control": "no-store"})
    resp.set_cookie(
        ui_sessions.COOKIE_NAME,
        cookie,
        max_age=ui_sessions.max_age_seconds(),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return resp


async def end_session(request: Request) -> Response:
    if not _same_origin(request):
        return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
    cookie = request.cookies.get(ui_sessions.COOKIE_NAME)
    if cookie:
        await asyncio.to_thread(ui_sessions.end, get_database(), actor=None, cookie=cookie)
    resp = Response(status_code=204, headers={"Cache-Control": "no-store"})
    resp.delete_cookie(ui_sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return resp


routes = [
    Route(SESSION_PATH, start_session, methods=["POST"]),
    Route(LOGOUT_PATH, end_session, methods=["POST"]),
]
