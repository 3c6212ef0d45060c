"""Hub API errors: each domain error becomes JSON `{"detail": "<sentence saying how to fix>", "error": "<kind>"}`
with its status, so a bad input is never a 500 (DESIGN.md, "Hub API")."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import (
    AuthenticationFailed,
    Conflict,
    DatabaseUnavailable,
    DomainError,
    NotFound,
    PermissionDenied,
    SchemaOutOfDate,
    ValidationError,
)


class TooLarge(DomainError):
    """A body or an upload over its limit (413)."""


# Order matters: the first class the error is an instance of decides.
STATUS: list[tuple[type[Exception], int, str]] = [
    (AuthenticationFailed, 401, "unauthenticated"),
    (PermissionDenied, 403, "permission_denied"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too_large"),
    (ValidationError, 400, "invalid"),
    (DatabaseUnavailable, 503, "unavailable"),
    (SchemaOutOfDate, 503, "unavailable"),
    (DomainError, 400, "invalid"),
]

API_PREFIX = "/api/v1"

# Other route families answer their errors in their own format (the MLflow routes: MLflow's error JSON):
# a path prefix -> async handler(request, exc) -> Response, consulted before ours.
PREFIX_HANDLERS: dict[str, object] = {}


def _delegate(request: Request):
    path = request.url.path
    for prefix, handler in PREFIX_HANDLERS.items():
        if path.startswith(prefix):
            return handler
    return None


HTTP_KINDS = {
    400: "invalid",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def api_error(status: int, detail: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": kind}, status_code=status, headers=headers)


def status_of(exc: Exception) -> tuple[int, str]:
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal"


async def domain_error(request: Request, exc: DomainError):
    other = _delegate(request)
    if other is not None:
        return await other(request, exc)
    status, kind = status_of(exc)
    # A 401 names the scheme, as RFC 9110 asks, so generic HTTP clients know to send a token.
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return api_error(status, str(exc), kind, headers)


def _where(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "the request"


async def request_invalid(request: Request, exc: RequestValidationError):
    """FastAPI's 422 for a malformed body or parameter becomes our 400 with one readable sentence."""
    other = _delegate(request)
    if other is not None:
        return await other(request, exc)
    if not request.url.path.startswith(API_PREFIX):
        return await request_validation_exception_handler(request, exc)
    problems = []
    for e in exc.errors()[:10]:
        problems.append(f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}")
    return api_error(
        400, "the request is not valid: " + "; ".join(problems) + "; see /docs for the expected shape", "invalid"
    )


async def http_error(request: Request, exc: StarletteHTTPException):
    other = _delegate(request)
    if other is not None:
        return await other(request, exc)
    if not request.url.path.startswith(API_PREFIX):  # the scoring routes keep FastAPI's {"detail": ...}
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route; see /docs for the Hub API's routes"
    elif exc.status_code == 405:
        detail = "this route does not take that HTTP method; see /docs"
    return api_error(exc.status_code, detail, HTTP_KINDS.get(exc.status_code, "error"), getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    """Register the handlers on the app (serving/app.py calls this once)."""
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
