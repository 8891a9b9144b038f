"""`/api/v1` routes: features."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["features"])
