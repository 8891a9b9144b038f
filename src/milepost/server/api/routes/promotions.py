"""`/api/v1` routes: promotions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["promotions"])
