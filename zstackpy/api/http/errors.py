"""HTTP statuses for error codes (the one mapping), the error body, and the middleware that
gives aiohttp's own 404/405/413 answers, and any failure a handler did not expect, the same
``{"error": {...}}`` shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from zstackpy.core.errors import ErrorInfo, KernelErr, SysErr
from zstackpy.services.identity.errors import IdentityErr

# ZStack answers every failed API with 503; we keep that default and give the errors a
# client can act on a status of their own.
_STATUS_BY_CODE: dict[str, int] = {
    SysErr.INVALID_ARGUMENT: 400,
    SysErr.RESOURCE_NOT_FOUND: 404,
    IdentityErr.INVALID_SESSION: 401,
    IdentityErr.MISSING_SESSION: 401,
    IdentityErr.PERMISSION_DENIED: 403,
    IdentityErr.TOO_MANY_FAILED_LOGINS: 429,
    SysErr.TIMEOUT: 504,
    SysErr.CREATE_RESOURCE: 409,
    KernelErr.CONFIG_INVALID_VALUE: 400,
    KernelErr.CONFIG_NOT_FOUND: 404,
    KernelErr.QUEUE_FULL: 429,
    IdentityErr.BAD_CREDENTIALS: 401,
    IdentityErr.ACCOUNT_NAME_TAKEN: 409,
}
DEFAULT_ERROR_STATUS = 503


def register_error_status(code: str, status: int) -> None:
    """Give a domain's error code its HTTP status (plugins call this through
    ``PluginRegistry.add_error_status``); codes not registered answer 503 like ZStack."""
    if not 400 <= status < 600:
        raise ValueError(f"{status} is not an error status")
    known = _STATUS_BY_CODE.get(code)
    if known is not None and known != status:
        raise ValueError(f"error code {code} already answers {known}")
    _STATUS_BY_CODE[code] = status


def error_statuses() -> set[int]:
    """Every status an API error can answer with (for the OpenAPI document)."""
    return {*_STATUS_BY_CODE.values(), DEFAULT_ERROR_STATUS}


def status_for(code: str) -> int:
    """The HTTP status of a failed API whose error has ``code``."""
    return _STATUS_BY_CODE.get(code, DEFAULT_ERROR_STATUS)


def error_body(info: ErrorInfo) -> dict[str, object]:
    return {"error": info.model_dump(mode="json", exclude_none=True)}


def error_response(info: ErrorInfo, status: int | None = None) -> web.Response:
    return web.json_response(error_body(info), status=status or status_for(info.code))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)


def _http_error(exc: web.HTTPException, request: web.Request) -> ErrorInfo:
    if exc.status == 404:
        return ErrorInfo(
            code=SysErr.NO_ROUTE,
            description=f"no API mapping to {request.path}",
            details={"path": request.path},
        )
    if exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()))
        return ErrorInfo(
            code=SysErr.INVALID_ARGUMENT,
            description=f"{request.method} is not allowed on {request.path}",
            details={"method": request.method, "allowed": allowed},
        )
    if exc.status == 413:
        return ErrorInfo(
            code=SysErr.INVALID_ARGUMENT,
            description=f"the request body exceeds {request.client_max_size} bytes",
            details={"maxBytes": request.client_max_size},
        )
    return ErrorInfo(code=SysErr.HTTP, description=exc.reason, details={"status": exc.status})


@web.middleware
async def error_shape_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's routing and body-size errors in our error shape (only under /zstack)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/zstack"):
            raise
        response = error_response(_http_error(exc, request), status=exc.status)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    except Exception as exc:
        # A client must always get a code to act on, never aiohttp's bare 500 page.
        if not request.path.startswith("/zstack"):
            raise
        info = _unexpected(exc)
        if info.code == SysErr.NOT_READY:
            log.warning("%s %s: %s", request.method, request.path, info.description)
        else:
            log.exception("%s %s failed unexpectedly", request.method, request.path)
        return error_response(info)


def _unexpected(exc: Exception) -> ErrorInfo:
    if isinstance(exc, DBAPIError | PoolTimeoutError | ConnectionError):
        # The database is down or unreachable: nothing was done that a retry could repeat
        # (a transaction that failed is rolled back), so the client may try again later.
        return ErrorInfo(
            code=SysErr.NOT_READY,
            description="the database is unreachable; try again later",
            details={"cause": type(exc).__name__},
        )
    return ErrorInfo(
        code=SysErr.INTERNAL,
        description="the request failed unexpectedly",
        details={"cause": type(exc).__name__},
    )
