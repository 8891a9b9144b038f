"""The app factory: routers, authentication, one error mapping, the OpenAPI schema."""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI

from milepost.server.api.auth import (
    ROLE_KEY,
    AuthConfig,
    AuthMiddleware,
    authorize,
    required_role,
)
from milepost.server.api.errors import ERROR_RESPONSES, install_error_handlers

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from milepost._context import Runtime

__all__ = [
    "API_PREFIX",
    "NO_AUTH_ENV",
    "ROUTE_MODULES",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "app_from_env",
    "build_app",
    "create_app",
]

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

    @app.get(f"{API_PREFIX}/health", tags=["system"], openapi_extra={"security": []})
    def health() -> dict[str, str]:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)], responses=ERROR_RESPONSES)
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"milepost.server.api.routes.{name}")
        api.include_router(module.router)
    app.include_router(api)
    if ui:
        from milepost.server.ui import mount_ui

        mount_ui(app)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(SecurityHeaders)
    _publish_schema(app)
    return app


#: Sent with every answer: no framing (the UI's approve and rollback buttons cannot be
#: overlaid by another site), no content-type sniffing, no referrer beyond this origin.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP answer (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def _publish_schema(app: FastAPI) -> None:
    """The OpenAPI schema as the API behaves: bearer tokens, each route's role
    (``x-milepost-role``), and 400 (not FastAPI's 422) for a request it cannot parse."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (`milepost tokens create`).",
        }
        schema["security"] = [{"bearer": []}]
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                responses.pop("422", None)
                for status in ERROR_RESPONSES:  # JSON, whatever the route's own answers are
                    if str(status) in responses:
                        responses[str(status)]["content"] = _ERROR_CONTENT
                if path.startswith(f"{API_PREFIX}/") and operation.get("security") != []:
                    operation[ROLE_KEY] = required_role(method, operation)
        schemas = components.get("schemas", {})
        if "/HTTPValidationError" not in json.dumps(schema["paths"]):
            schemas.pop("HTTPValidationError", None)
            if "/ValidationError" not in json.dumps(schemas):
                schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
