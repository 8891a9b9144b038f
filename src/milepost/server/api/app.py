"""The app factory: routers, authentication, one error mapping, the OpenAPI schema."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI

from milepost.server.api.auth import AuthConfig, AuthMiddleware, authorize
from milepost.server.api.errors import install_error_handlers

if TYPE_CHECKING:
    from milepost._context import Runtime

__all__ = ["API_PREFIX", "NO_AUTH_ENV", "ROUTE_MODULES", "app_from_env", "build_app", "create_app"]

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
        from milepost.server.ui import mount_ui

        mount_ui(app)
    app.add_middleware(AuthMiddleware)
    return app


#: Set by ``milepost server --no-auth --workers N`` (loopback only) for its worker processes.
NO_AUTH_ENV = "_MILEPOST_SERVER_NO_AUTH"


def build_app(rt: Runtime, *, no_auth: bool = False) -> FastAPI:
    """The app ``milepost server`` serves: tokens required unless ``no_auth`` (the CLI
    allows that only on a loopback address)."""
    return create_app(rt, auth=AuthConfig(required=not no_auth))


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process (``milepost server --workers N``)."""
    import os

    from milepost._context import get_runtime

    return build_app(get_runtime(), no_auth=os.environ.get(NO_AUTH_ENV) == "1")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("milepost")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
