"""`/api/v1` routes: lineage."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["lineage"])
