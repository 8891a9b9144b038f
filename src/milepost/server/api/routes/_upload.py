"""Reading a large request body: spooled to a file beside the server's stores, never
whole into memory, and refused with 413 past the ``server_max_upload_mb`` setting.

Shared by the artifact, dataset and model upload routes (not a route module itself).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from milepost.errors import BackendUnavailable, PayloadTooLarge

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import Request

__all__ = ["checked_limit", "max_upload_bytes", "spool_dir", "spooled_body", "too_large"]


def max_upload_bytes(request: Request) -> int:
    """The largest upload the server takes, in bytes (setting ``server_max_upload_mb``)."""
    return int(request.app.state.rt.settings.server_max_upload_mb) * (1 << 20)


def too_large(limit: int, hint: str) -> PayloadTooLarge:
    """The refusal of an upload past ``limit`` bytes; ``hint`` says what to do instead."""
    return PayloadTooLarge(
        f"The upload is larger than the server's limit of {limit:,} bytes; nothing was stored.",
        hint=f"Raise the server's server_max_upload_mb setting, or {hint}",
        details={"limit_bytes": limit},
    )


def checked_limit(request: Request, hint: str) -> int:
    """The upload limit, refusing at once a body whose declared length passes it."""
    limit = max_upload_bytes(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, hint)
    return limit


def spool_dir(request: Request) -> Path:
    """Where uploads are spooled: beside the server's stores (not a RAM-backed /tmp)."""
    spool = Path(request.app.state.rt.settings.home) / "tmp" / "uploads"
    try:
        spool.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendUnavailable(
            f"Cannot create the upload directory {spool}: {exc.strerror}.",
            hint="Check the permissions of the server's home directory (setting home).",
        ) from exc
    return spool


@contextlib.asynccontextmanager
async def spooled_body(
    request: Request, hint: str, *, prefix: str, suffix: str = ""
) -> AsyncIterator[tuple[Path, int]]:
    """The request body in a temporary file, and its size; the file is removed on exit.

    Raises:
        PayloadTooLarge: the body passes the limit (declared, or as it is read).
    """
    limit = checked_limit(request, hint)
    fd, name = tempfile.mkstemp(dir=spool_dir(request), prefix=prefix, suffix=suffix)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit, hint)
                if chunk:
                    await run_in_threadpool(out.write, chunk)
        yield Path(name), size
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
