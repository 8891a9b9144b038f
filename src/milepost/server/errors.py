"""One table from error code to HTTP status, and the handler that uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse

from milepost.errors import HTTP_STATUS, MilepostError, http_status

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["HTTP_STATUS", "install_error_handler"]


def install_error_handler(app: FastAPI) -> None:
    """Answer every MilepostError with ``{code, message, hint, details}`` and its status."""

    @app.exception_handler(MilepostError)
    async def _handle(_request: Request, exc: MilepostError) -> JSONResponse:
        body = exc.to_dict()
        body.pop("details", None) if exc.code in ("config_error", "internal") else None
        return JSONResponse(body, status_code=http_status(exc))
