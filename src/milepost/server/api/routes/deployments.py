"""`/api/v1` routes: deployments."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["deployments"])
