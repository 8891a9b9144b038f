"""``/api/v1`` routes: health and who the caller is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from milepost.server.api.auth import authorize

router = APIRouter(tags=["system"])


@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    """The caller: user, role, token and project scope."""
    return authorize(request).to_dict()
