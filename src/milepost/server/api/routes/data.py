"""`/api/v1` routes: data."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["data"])
