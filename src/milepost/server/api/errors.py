"""One place where errors become HTTP answers: ``{code, message, hint, details}``.

A :class:`~milepost.errors.MilepostError` gets its status from
:data:`milepost.errors.HTTP_STATUS`; a request FastAPI cannot parse is a 400
(``invalid_input``) naming the fields; anything else is a 500 (``internal``) that says
where to look, never a traceback or a secret.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from milepost._records import jsonable
from milepost.errors import MilepostError, http_status

__all__ = ["ERROR_RESPONSES", "ErrorBody", "error_response", "install_error_handlers"]

log = logging.getLogger("milepost.server")

_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


class ErrorBody(BaseModel):
    """Every error answer's body."""

    code: str = Field(description="Stable error code (not_found, invalid_input, ...).")
    message: str = Field(description="What was wrong.")
    hint: str | None = Field(default=None, description="What to do about it.")
    details: Any = Field(default=None, description="Structured details, when there are any.")


#: The error answers every ``/api/v1`` route may give, as published in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request (invalid_input)."},
    401: {"model": ErrorBody, "description": "No valid API token (unauthenticated)."},
    403: {"model": ErrorBody, "description": "The token's role is too small (permission_denied)."},
    404: {"model": ErrorBody, "description": "No such object (not_found)."},
    409: {"model": ErrorBody, "description": "Conflicts with the current state (conflict)."},
}


def error_response(
    status: int, code: str, message: str, *, hint: str | None = None, details: Any = None
) -> JSONResponse:
    """The one JSON shape every error is answered with."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"code": code, "message": message, "hint": hint, "details": jsonable(details)},
        status_code=status,
        headers=headers,
    )


async def _milepost_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MilepostError)
    return error_response(
        http_status(exc), exc.code, exc.message, hint=exc.hint, details=exc.details
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "where": ".".join(str(p) for p in err.get("loc", ())),
            "problem": str(err.get("msg", "")),
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"where": "request", "problem": "invalid"}
    return error_response(
        400,
        "invalid_input",
        f"Invalid request: {first['where']}: {first['problem']}.",
        hint=f"See {request.app.openapi_url} for the request's shape.",
        details=problems,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal",
        f"Internal error (reference {ref}).",
        hint="The server's log has the details under that reference.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to ``{code, message, hint, details}`` with its status."""
    app.add_exception_handler(MilepostError, _milepost_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
