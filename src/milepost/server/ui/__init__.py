"""The web UI, served by ``milepost server`` next to the REST API.

Server-side rendered pages (Jinja2 templates, inline SVG charts drawn here, the
project's own CSS and a few lines of its own JavaScript: nothing from a CDN) over the
same services the API calls, read in-process as the logged-in user:

- ``/login``, ``/logout``: a token exchanged for an HttpOnly session cookie
  (:mod:`._session`); every form carries a CSRF token bound to the session.
- ``/experiments``, ``/experiments/{id}``, ``/runs/{id}``, ``/compare`` (:mod:`.tracking`)
- ``/models``, ``/models/{name}``, ``/approvals``, ``/promotions/{id}`` (:mod:`.registry`)
- ``/deployments``, ``/monitoring`` (:mod:`.operations`)
- ``/data``, ``/features``, ``/lineage``, ``/audit`` (:mod:`.catalog`)

None of these routes is in the API's OpenAPI schema.
"""

from __future__ import annotations

import importlib
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["PAGE_MODULES", "mount_ui"]

#: The modules whose ``router`` the UI mounts, in this order.
PAGE_MODULES = ("_session", "_static", "tracking", "registry", "operations", "catalog")


def mount_ui(app: FastAPI) -> None:
    """Add the UI's pages to ``app`` (built by :func:`milepost.server.api.create_app`)."""
    # Signs the CSRF tokens of this process's forms (a restart asks for a reload).
    app.state.ui_secret = secrets.token_bytes(32)
    for name in PAGE_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        app.include_router(module.router)
