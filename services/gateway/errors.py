"""One JSON error shape for every 4xx and 5xx the gateway sends.

``{"error": {"code": "...", "message": "...", "details": [...]}}``: FastAPI's and Starlette's own
``{"detail": ...}`` replies are replaced by handlers installed on the app.

Every error is a non-2xx status with this JSON body (``application/json``) and never an
``x-relay-error`` header, which is what Supabase's clients need to report it as a
``FunctionsHttpError`` carrying it: supabase-js keeps the Response as ``error.context``
(``await error.context.json()`` is this body), supabase-py puts the ``error`` object in
``exc.message`` and the status in ``exc.status``.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_runtime.logs import reason
from services.gateway.replies import allowed_methods
from services.gateway.requests import (
    IdempotencyConflict,
    NotCancellable,
    NotRegenerable,
    NotWaiting,
    QuotaExceeded,
    RegenerationInProgress,
    Unavailable,
)

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorCode",
    "ErrorDetail",
    "ErrorInfo",
    "InternalErrors",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

ErrorCode = Literal[
    "unauthorized",
    "invalid_request",
    "not_found",
    "idempotency_conflict",
    "not_cancellable",
    "regeneration_in_progress",
    "not_regenerable",
    "not_waiting",
    "quota_exceeded",
    "unavailable",
    "internal",
]

# Clients may retry a 503 after this long; JetStream or Postgres is usually back by then.
RETRY_AFTER_SECONDS = 5


class ErrorDetail(BaseModel):
    """One problem with the request, e.g. one failed field of the body."""

    model_config = ConfigDict(frozen=True)

    loc: list[str | int]
    message: str
    type: str


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    details: list[ErrorDetail] = []


class ErrorBody(BaseModel):
    """The body of every error reply."""

    model_config = ConfigDict(frozen=True)

    error: ErrorInfo


class ApiError(Exception):
    """Raised by routes and dependencies to answer with an error; rendered by ``install_error_handlers``."""

    def __init__(
        self,
        status_code: int,
        code: ErrorCode,
        message: str,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code: ErrorCode = code
        self.message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})


def error_response(
    status_code: int,
    code: ErrorCode,
    message: str,
    *,
    details: Iterable[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=list(details)))
    return Response(body.model_dump_json(), status_code, headers=headers, media_type="application/json")


class InternalErrors:
    """ASGI middleware: an exception no handler took becomes our 500 reply, right here.

    Starlette renders such an exception in its outermost middleware, outside every middleware
    the app adds, so that 500 carries no CORS headers and a browser reports a network failure
    (supabase-js: ``FunctionsFetchError``) instead of our error. Installed inside CORS, this
    answers first. The exception is logged here, with its traceback, since it goes no further;
    one raised after the reply started is re-raised (there is no reply left to give).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, watched_send)
        except ClientDisconnect:
            # The client left (or was cut off as too slow) before its body arrived: no reply to give.
            log.info("%s %s: the client disconnected before its body arrived", scope["method"], scope["path"])
        except Exception as exc:
            if started:
                raise
            log.exception("%s %s failed", scope["method"], scope["path"])
            # The request's span (when tracing is on) shows the exception, not only the 500.
            trace.get_current_span().record_exception(exc)
            await error_response(500, "internal", "Internal error.")(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through ``error_response``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return error_response(exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        details = [_detail(error) for error in exc.errors()]
        return error_response(422, "invalid_request", "The request is invalid.", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own 404 (no such route) and 405, and any HTTPException a library raises.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; the path may serve more.
            allow = ", ".join(allowed_methods(request.scope, request.app.router.routes))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            headers["Allow"] = allow
        return error_response(exc.status_code, _code_for(exc.status_code), str(exc.detail), headers=headers)

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> Response:
        return error_response(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request body; use a new key.",
        )

    @app.exception_handler(NotCancellable)
    async def _not_cancellable(_: Request, exc: NotCancellable) -> Response:
        return error_response(409, "not_cancellable", f"The request already ended {exc.status}; nothing to cancel.")

    @app.exception_handler(RegenerationInProgress)
    async def _regenerating(_: Request, exc: RegenerationInProgress) -> Response:
        return error_response(
            409,
            "regeneration_in_progress",
            f"A week of this plan is already being written again (request {exc.request_id}); wait for it to end.",
        )

    @app.exception_handler(NotWaiting)
    async def _not_waiting(_: Request, exc: NotWaiting) -> Response:
        return error_response(
            409,
            "not_waiting",
            f"The request is not waiting for a decision on its skeleton (status {exc.status}, stage {exc.stage}).",
        )

    @app.exception_handler(NotRegenerable)
    async def _not_regenerable(_: Request, exc: NotRegenerable) -> Response:
        return error_response(409, "not_regenerable", f"This plan's weeks cannot be written again: {exc}.")

    @app.exception_handler(QuotaExceeded)
    async def _quota(_: Request, exc: QuotaExceeded) -> Response:
        return error_response(429, "quota_exceeded", exc.message, headers={"Retry-After": str(exc.retry_after_seconds)})

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, reason(exc), exc_info=exc)
        return error_response(
            503,
            "unavailable",
            "The service is temporarily unavailable; nothing was changed. Try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        # Only for what ``InternalErrors`` cannot see (a failure in middleware outside it).
        # Starlette re-raises the exception after this reply, so the server still logs it.
        return error_response(500, "internal", "Internal error.")


def _code_for(status_code: int) -> ErrorCode:
    if status_code == 401:
        return "unauthorized"
    if status_code == 404:
        return "not_found"
    if status_code == 429:
        return "quota_exceeded"
    if status_code == 503:
        return "unavailable"
    if status_code >= 500:
        return "internal"
    return "invalid_request"


def _detail(error: Mapping[str, Any]) -> ErrorDetail:
    # Never echo the offending input back: it can be a whole user profile.
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    return ErrorDetail(loc=loc, message=str(error.get("msg", "")), type=str(error.get("type", "")))
