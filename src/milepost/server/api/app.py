"""The app factory: routers, authentication, one error mapping, the OpenAPI schema."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI

from milepost.server.api.auth import AuthConfig, AuthMiddleware, authorize
from milepost.server.api.errors import install_error_handlers

if TYPE_CHECKING:
    from milepost._context import Runtime

__all__ = ["API_PREFIX", "ROUTE_MODULES", "create_app"]

API_PREFIX = "/api/v1"

#: One module per capability, each with a ``router`` (an APIRouter, paths relative to
#: ``/api/v1``). Every route is authorised by :func:`~milepost.server.api.auth.authorize`:
#: reads need viewer, writes member, unless the route declares more with ``needs(...)``.
ROUTE_MODULES = (
    "system",
    "tokens",
    "tracking",
    "artifacts",
    "data",
    "features",
    "registry",
    "promotions",
    "deployments",
    "monitoring",
    "pipelines",
    "lineage",
    "audit",
)


def create_app(rt: Runtime, *, auth: AuthConfig | None = None, ui: bool = True) -> FastAPI:
    """The platform server's app over ``rt``.

    Args:
        rt: the runtime whose services answer every request.
        auth: how callers are authenticated; default: tokens required.
        ui: also serve the web UI (``/``).
    """
    auth = auth or AuthConfig()
    app = FastAPI(
        title="Milepost",
        version=_version(),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the UI works offline
        redoc_url=None,
    )
    app.state.rt = rt
    app.state.auth = auth
    install_error_handlers(app)

    @app.get(f"{API_PREFIX}/health", tags=["system"])
    def health() -> dict[str, str]:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)])
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"milepost.server.api.routes.{name}")
        api.include_router(module.router)
    app.include_router(api)
    if ui:
        try:
            from milepost.server.ui import mount_ui  # type: ignore[import-not-found,unused-ignore]
        except ImportError:  # pragma: no cover - the UI package is part of Milepost
            pass
        else:
            mount_ui(app)
    app.add_middleware(AuthMiddleware)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("milepost")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
