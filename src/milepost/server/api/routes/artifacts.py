"""``/api/v1`` routes: a run's artifact files, uploaded and downloaded as streams.

An upload (``PUT /runs/{run_id}/artifacts/{path}``) is read chunk by chunk into a
temporary file beside the server's stores, never whole into memory, and refused with 413
once it passes the ``server_max_upload_mb`` setting (nothing is stored); then the file
goes into the artifact store like any logged file. A download streams the stored blob in
chunks, verified against its digest as it is read. Artifact paths are checked by
:func:`milepost.stores.paths.safe_relpath`: ``..``, absolute paths, backslashes and
control characters are refused with 400.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from milepost.errors import BackendUnavailable, PayloadTooLarge
from milepost.server.api.routes.tracking import scope_run
from milepost.stores.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

    from milepost.tracking.service import TrackingService

__all__ = ["max_upload_bytes", "router"]

router = APIRouter(tags=["artifacts"])

_CHUNK = 1 << 20


def _tracking(request: Request) -> TrackingService:
    return request.app.state.rt.tracking  # type: ignore[no-any-return]


def max_upload_bytes(request: Request) -> int:
    """The largest upload the server takes, in bytes (setting ``server_max_upload_mb``)."""
    return int(request.app.state.rt.settings.server_max_upload_mb) * (1 << 20)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the server's limit of {limit:,} bytes; nothing was stored.",
        hint="Raise the server's server_max_upload_mb setting, or store the file elsewhere "
        "and log a reference to it.",
        details={"limit_bytes": limit},
    )


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(request: Request, run_id: str, path: str = "") -> dict[str, Any]:
    """A run's artifact files under ``path`` (all by default)."""
    scope_run(request, run_id)
    return {"items": [a.to_dict() for a in _tracking(request).list_artifacts(run_id, path)]}


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_artifact(request: Request, run_id: str, path: str) -> dict[str, Any]:
    """Store the request body as the artifact file ``path`` of the run (streamed)."""
    rel = safe_relpath(path)
    tracking = _tracking(request)
    await run_in_threadpool(scope_run, request, run_id)
    await run_in_threadpool(tracking.get_run, run_id)  # 404 before reading a large body
    limit = max_upload_bytes(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    spool = _spool_dir(request)
    fd, name = tempfile.mkstemp(dir=spool, prefix="upload-")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if chunk:
                    await run_in_threadpool(out.write, chunk)
        info = await run_in_threadpool(tracking.log_file, run_id, Path(name), rel)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    return info.to_dict()


def _spool_dir(request: Request) -> Path:
    """Where uploads are spooled: beside the server's stores (not a RAM-backed /tmp)."""
    home = Path(request.app.state.rt.settings.home)
    spool = home / "tmp" / "uploads"
    try:
        spool.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendUnavailable(
            f"Cannot create the upload directory {spool}: {exc.strerror}.",
            hint="Check the permissions of the server's home directory (setting home).",
        ) from exc
    return spool


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(request: Request, run_id: str, path: str) -> StreamingResponse:
    """The bytes of one artifact file, streamed (``X-Milepost-Digest``: its SHA-256)."""
    scope_run(request, run_id)
    info, reader = _tracking(request).open_artifact(run_id, path)
    return StreamingResponse(
        _chunks(reader),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(info.size),
            "X-Milepost-Digest": info.digest,
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(info.path)}",
        },
    )


def _chunks(reader: IO[bytes]) -> Iterator[bytes]:
    with reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


def _quoted(path: str) -> str:
    from urllib.parse import quote

    return quote(path.rsplit("/", 1)[-1], safe="")
