"""How the gateway refuses: every error (typed, validation, FastAPI's own 400/404/405/413, a bug)
answers the typed error body with the status its code maps to (scf.gateway.errors), a 405 with the
`Allow` of every method its path serves, and never an echo of the input."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from scf.gateway.allow import allow_header
from scf.gateway.errors import http_status, refusal_body, retry_after_header
from scf.gateway.messages import describe
from scf.gateway.strict_json import BodyRefusedHTTPError
from scf.schemas.control import FailedReply
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, ErrorInfo, PermanentError

log = structlog.get_logger(__name__)


def failure(error: ErrorInfo, body: Any | None = None) -> JSONResponse:
    content = body if body is not None else FailedReply(error=error).model_dump(mode="json")
    headers = retry_after_header(error)
    if error.code == ErrorCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(content, status_code=http_status(error), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure answers the typed error body, with the status its code maps to."""

    @app.exception_handler(ConnectorError)
    async def typed_error(request: Request, exc: ConnectorError) -> JSONResponse:
        return _refuse(request, exc)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("gateway_internal_error", error=repr(exc))
        return failure(PermanentError("internal gateway error", code=ErrorCode.INTERNAL).to_info())

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo input values: a rejected body may carry a password.
        problems = exc.errors()
        if problems and problems[0].get("type") == "json_invalid":
            error = PermanentError(describe(problems, exc.body), code=ErrorCode.INVALID_JSON)
            return _refuse(request, error, status=400)
        return _refuse(request, PermanentError(describe(problems), code=ErrorCode.INVALID_REQUEST))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyRefusedHTTPError):  # a strict-JSON refusal, typed where it was raised
            return _refuse(request, exc.error, status=exc.status_code)
        # FastAPI's own refusals (unreadable JSON, unknown path, wrong method) get the typed body too.
        code, category = _HTTP_REFUSALS.get(exc.status_code, (ErrorCode.INVALID_REQUEST, PermanentError))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path supports, not only the first route's
            headers.update(allow_header(request.app.router.routes, request.scope))
        refused = _refuse(request, category(str(exc.detail), code=code), status=exc.status_code)
        refused.headers.update(headers)
        return refused


_HTTP_REFUSALS: dict[int, tuple[ErrorCode, type[ConnectorError]]] = {
    400: (ErrorCode.INVALID_JSON, PermanentError),
    404: (ErrorCode.NOT_FOUND, ConfigurationError),
    405: (ErrorCode.INVALID_REQUEST, PermanentError),
    413: (ErrorCode.REQUEST_TOO_LARGE, PermanentError),
}


def _refuse(request: Request, error: ConnectorError, status: int | None = None) -> JSONResponse:
    """Refuse a request: execute answers an OperationResult failure (as over AMQP), the rest FailedReply."""
    info = error.to_info()
    response = failure(info, refusal_body(request.method, request.url.path, info))
    if status is not None:
        response.status_code = status
    return response
