"""The UI's own stylesheet and script (``/ui/static/...``), read once from the package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import Response

from milepost.errors import NotFound
from milepost.server.ui._render import page_router

__all__ = ["router"]

router = page_router()

_TYPES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


@cache
def _read(name: str) -> bytes:
    return files("milepost.server.ui").joinpath("static", name).read_bytes()


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    """A static file of the UI (no login needed: nothing in it is private)."""
    kind = _TYPES.get(name)
    if kind is None:
        raise NotFound(f"The UI has no static file {name!r}.")
    return Response(_read(name), media_type=kind, headers={"Cache-Control": "public, max-age=3600"})
