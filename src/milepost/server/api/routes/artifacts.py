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

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from milepost.server.api.routes._upload import spooled_body
from milepost.server.api.routes.tracking import scope_run
from milepost.stores.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

    from milepost.tracking.service import TrackingService

__all__ = ["router"]

router = APIRouter(tags=["artifacts"])

_CHUNK = 1 << 20


def _tracking(request: Request) -> TrackingService:
    return request.app.state.rt.tracking  # type: ignore[no-any-return]


_TOO_LARGE = "store the file elsewhere and log a reference to it."


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
    async with spooled_body(request, _TOO_LARGE, prefix="upload-") as (spooled, _):
        info = await run_in_threadpool(tracking.log_file, run_id, spooled, rel)
    return info.to_dict()


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
