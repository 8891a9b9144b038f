"""One table from error code to HTTP status, and the handler that uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse

from milepost.errors import MilepostError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["HTTP_STATUS", "install_error_handler"]

HTTP_STATUS = {
    "not_found": 404,
    "already_exists": 409,
    "invalid_input": 400,
    "invalid_filter": 400,
    "conflict": 409,
    "permission_denied": 403,
    "backend_unavailable": 503,
    "gate_failed": 422,
    "validation_failed": 422,
    "config_error": 500,
    "integrity_violation": 500,
    "internal": 500,
}


def install_error_handler(app: FastAPI) -> None:
    """Answer every MilepostError with ``{code, message, hint, details}`` and its status."""

    @app.exception_handler(MilepostError)
    async def _handle(_request: Request, exc: MilepostError) -> JSONResponse:
        body = exc.to_dict()
        body.pop("details", None) if exc.code in ("config_error", "internal") else None
        return JSONResponse(body, status_code=HTTP_STATUS.get(exc.code, 500))
