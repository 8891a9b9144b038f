"""UI pages (registry)."""

from __future__ import annotations

from milepost.server.ui._render import page_router

__all__ = ["router"]

router = page_router()
