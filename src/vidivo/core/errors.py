"""One error type tree, rendered in the seed's shape by one set of handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    code = "internal_error"
    status = 500
    message = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details or []
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApiError):
    code, status, message = "validation_error", 400, "The request is not valid."

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(message, details=[{"field": field, "message": message}])


class Unauthorized(ApiError):
    code, status, message = "unauthorized", 401, "A valid bearer token is required."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class InvalidCredentials(ApiError):
    code, status, message = (
        "invalid_credentials",
        401,
        "Email or password is incorrect.",
    )


class Forbidden(ApiError):
    code, status, message = "forbidden", 403, "You are not allowed to do this."


class NotFound(ApiError):
    code, status, message = "not_found", 404, "Not found."


class Conflict(ApiError):
    code, status, message = (
        "conflict",
        409,
        "The request conflicts with the current state.",
    )


class IdempotencyConflict(ApiError):
    code, status = "idempotency_conflict", 409
    message = "This Idempotency-Key was already used with a different request."


class PayloadTooLarge(ApiError):
    code, status, message = "payload_too_large", 413, "The request body is too large."


class UnsupportedMediaType(ApiError):
    code, status, message = (
        "unsupported_media_type",
        415,
        "Send JSON (application/json).",
    )


class RateLimited(ApiError):
    code, status, message = "rate_limited", 429, "Too many requests; try again later."

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})


class ServiceUnavailable(ApiError):
    code, status, message = (
        "service_unavailable",
        503,
        "The service is temporarily unavailable.",
    )


_HTTP_STATUS_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    details = []
    for err in errors:
        message = str(err.get("msg", "Invalid value."))
        # Pydantic prefixes custom errors with "Value error, "; users need only the reason.
        message = message.removeprefix("Value error, ")
        details.append({"field": _field_path(err.get("loc", ())), "message": message})
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        return error_response(ValidationFailed(details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    async def _outage(_: Request, exc: Exception) -> JSONResponse:
        return error_response(unexpected_error(exc))

    # Handled here rather than by the catch-all below, which Starlette re-raises to the server.
    for outage in (DBAPIError, ConnectionError, TimeoutError, RedisConnectionError, RedisTimeout):
        app.add_exception_handler(outage, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(unexpected_error(exc))


def is_database_outage(exc: BaseException) -> bool:
    """The database (or Redis, when configured) cannot be reached: down, restarting, dropped.

    The driver's own error may sit under SQLAlchemy's wrapper (`orig`) or as its cause: a
    connection attempt while PostgreSQL shuts down surfaces as a plain `DBAPIError` whose
    root is asyncpg's `CannotConnectNowError`."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_outage_itself(current):
            return True
        pending += [e for e in (getattr(current, "orig", None), current.__cause__) if e]
    return False


# SQLSTATE classes: 08 connection exception; 57 operator intervention (shutdown, crash,
# "cannot connect now" while starting or stopping).
_OUTAGE_SQLSTATE_CLASSES = ("08", "57")


def _is_outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
        return True
    return type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__


def unexpected_error(exc: BaseException) -> ApiError:
    """What the client is told about an exception no handler expected."""
    if is_database_outage(exc):
        log.warning("database unavailable: %s", exc)
        return ServiceUnavailable(
            "A service Vidivo needs is not reachable; try again shortly.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, StaleDataError):
        # A versioned row changed between this request's read and its write, and nothing of
        # the request was kept: asking again works on the new state. The paths a double
        # click can race retry this themselves; this answers any that does not.
        log.warning("lost a race on a versioned row: %s", exc)
        return Conflict("This changed while your request was handled; try again.")
    log.exception("unhandled error", exc_info=exc)
    return ApiError()
