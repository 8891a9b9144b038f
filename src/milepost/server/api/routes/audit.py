"""``/api/v1`` routes: the audit trail.

Reading the trail (events, head, verify) is for viewers: what changed, who did it and
whether the chain is intact is what every member of a team may check. Exporting the
whole trail (``GET /audit/export``, JSON lines) is for admins: it is the complete record
of every change, copied out of the server. Checking an export someone uploads
(``POST /audit/verify-export``) touches no store and needs only a viewer.

``GET /audit/events`` pages newest first: ``next_page_token`` (the last event's ``seq``)
asks for the next page.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from milepost.errors import InvalidInput, PayloadTooLarge
from milepost.server.api.auth import needs

if TYPE_CHECKING:
    from milepost.governance.audit import AuditService

router = APIRouter(tags=["audit"])

#: The most events one page of ``GET /audit/events`` holds.
MAX_PAGE = 10_000
#: The largest export ``POST /audit/verify-export`` reads.
MAX_UPLOAD = 1 << 30
_CHUNK = 1 << 16
#: The response header carrying an export's summary (events, seq range, head).
SUMMARY_HEADER = "X-Milepost-Export-Summary"


def _audit(request: Request) -> AuditService:
    audit: AuditService = request.app.state.rt.audit
    return audit


def _page_token(token: str | None) -> int | None:
    if token is None:
        return None
    if not (token.isascii() and token.isdigit()) or int(token) < 1:
        raise InvalidInput(
            f"page_token {token[:40]!r} is not one this server gave.",
            hint="Pass the next_page_token of the previous page unchanged.",
        )
    return int(token)


@router.get("/audit/events")
def list_events(
    request: Request,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = Query(default=100, ge=1, le=MAX_PAGE),
    page_token: str | None = None,
) -> dict[str, Any]:
    """Events newest first, filtered (``action`` takes ``*``: ``run.*``), paged."""
    found = _audit(request).list(
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        action=action,
        since_ms=since_ms,
        until_ms=until_ms,
        limit=limit + 1,
        before_seq=_page_token(page_token),
    )
    page = found[:limit]
    more = len(found) > limit
    return {
        "items": [e.to_dict() for e in page],
        "next_page_token": str(page[-1].seq) if more else None,
    }


@router.get("/audit/head")
def head(request: Request) -> dict[str, Any]:
    """The chain's head: keep ``anchor`` (``SEQ:HASH``) outside the store."""
    seq, digest = _audit(request).head()
    return {"seq": seq, "hash": digest, "anchor": f"{seq}:{digest}"}


@router.get("/audit/verify")
def verify(
    request: Request, expect_head: str | None = None, anchor: str | None = None
) -> dict[str, Any]:
    """Walk the whole chain and cross-check the current state against it."""
    return _audit(request).verify(expect_head=expect_head, anchor=anchor).to_dict()


@router.get(
    "/audit/export",
    openapi_extra=needs("admin"),
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export(
    request: Request,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> StreamingResponse:
    """The matching events as JSON lines, oldest first, with their hashes (admin).

    The summary (events, seq range, the head when read) is in the
    ``X-Milepost-Export-Summary`` header (JSON).
    """
    spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
    try:
        summary = _audit(request).export(
            spool,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            action=action,
            since_ms=since_ms,
            until_ms=until_ms,
        )
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _chunks(spool),
        media_type="application/x-ndjson",
        headers={SUMMARY_HEADER: json.dumps(summary.to_dict(), separators=(",", ":"))},
    )


def _chunks(spool: IO[str]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(_CHUNK):
            yield chunk.encode("utf-8")


@router.post(
    "/audit/verify-export",
    openapi_extra={
        **needs("viewer"),
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
    },
)
async def verify_export(
    request: Request, partial: bool = False, expect_head: str | None = None
) -> dict[str, Any]:
    """Check an uploaded export (the body, JSON lines) without the store: hashes,
    links and, unless ``partial``, gaps; ``expect_head`` must be in it."""
    from milepost.governance.audit import AuditService

    spool = tempfile.SpooledTemporaryFile(max_size=_CHUNK * 16)  # noqa: SIM115
    with spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise PayloadTooLarge(
                    f"The export is larger than {MAX_UPLOAD >> 20} MiB.",
                    hint="Verify it locally: `milepost audit verify-export FILE`.",
                )
            spool.write(chunk)
        spool.seek(0)
        text = io.TextIOWrapper(spool, encoding="utf-8", errors="strict")

        def check() -> dict[str, Any]:
            try:
                found = AuditService.verify_export(text, partial=partial, expect_head=expect_head)
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"The export is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                    hint="Upload the file `milepost audit export` wrote, unchanged.",
                ) from None
            return found.to_dict()

        try:
            return await anyio.to_thread.run_sync(check)
        finally:
            text.detach()
