"""The model server's ASGI app: no framework on the request path.

Routes (JSON in and out):

- ``POST /v1/endpoints/{name}/predict`` — ``{"rows": [...], "key": "...", "explain": false}``;
  the header ``X-Milepost-Variant`` pins a variant (smoke tests of a blue/green preview)
- ``POST /v1/endpoints/{name}/explain`` — the same, with SHAP contributions
- ``POST /v1/endpoints/{name}/feedback`` — ``{"request_id": ..., "label": ...}``
- ``GET /v1/endpoints/{name}`` — the routing state this replica uses
- ``GET /health`` (alive), ``GET /ready`` (503 while draining), ``GET /metrics`` (Prometheus)

Errors answer ``{code, message, hint}`` with the status from ``milepost.errors.HTTP_STATUS``:
bad requests are 4xx, never 500; a model that fails on a request that passed its signature
is 500 ``model_error`` (the variant's error, which canary analysis counts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from milepost.errors import InvalidInput, MilepostError, http_status

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from milepost.serving.engine import EndpointEngine, Reply

__all__ = ["MAX_BODY", "ServingApp"]

log = logging.getLogger("milepost.serving")

MAX_BODY = 10 * 1024 * 1024
_JSON = (b"content-type", b"application/json")


def _error(exc: MilepostError) -> tuple[int, bytes]:
    return http_status(exc), orjson.dumps(
        {"code": exc.code, "message": exc.message, "hint": exc.hint}
    )


async def _lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes | None:
    """The whole body, or None when it is larger than MAX_BODY (read to the end anyway)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return None if size > MAX_BODY else b"".join(chunks)


class ServingApp:
    """An ASGI 3 application over one endpoint's engine."""

    def __init__(self, engine: EndpointEngine) -> None:
        self.engine = engine
        self.prefix = f"/v1/endpoints/{engine.endpoint}"

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        content_type = _JSON[1]
        try:
            if body is None:
                raise InvalidInput(
                    f"The request body is larger than {MAX_BODY // (1024 * 1024)} MiB.",
                    hint="Send fewer rows per request.",
                )
            status, payload, content_type = self._route(scope, body)
        except MilepostError as exc:
            status, payload = _error(exc)
            if body is None:
                status = 413
        except Exception:  # a bug or a model crash: answer, log, keep serving
            log.exception("Request failed")
            status = 500
            payload = orjson.dumps(
                {
                    "code": "internal",
                    "message": "The model server failed on this request; see its log.",
                    "hint": None,
                }
            )
        headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
        if self.engine.draining:
            headers.append((b"connection", b"close"))  # the client reconnects to another replica
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _route(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes, bytes]:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(self.prefix):
            found = self._endpoint_route(method, path[len(self.prefix) :], scope, body)
            if found is not None:
                return found
        if method == "GET" and path in ("/health", "/ready", "/metrics"):
            return self._operations(path)
        if path.startswith("/v1/endpoints/"):
            other = path[len("/v1/endpoints/") :].split("/", maxsplit=1)[0]
            return (
                404,
                orjson.dumps(
                    {
                        "code": "not_found",
                        "message": f"This server serves endpoint "
                        f"{self.engine.endpoint!r}, not {other!r}.",
                        "hint": None,
                    }
                ),
                _JSON[1],
            )
        return (
            404,
            orjson.dumps(
                {
                    "code": "not_found",
                    "message": f"No route {method} {path}.",
                    "hint": f"POST {self.prefix}/predict",
                }
            ),
            _JSON[1],
        )

    def _endpoint_route(
        self, method: str, action: str, scope: dict[str, Any], body: bytes
    ) -> tuple[int, bytes, bytes] | None:
        engine = self.engine
        if method == "POST" and action in ("/predict", "/explain"):
            variant = next(
                (v.decode() for n, v in scope["headers"] if n == b"x-milepost-variant"), None
            )
            reply: Reply = engine.predict(body, variant, explain=action == "/explain")
            return reply.status, reply.body, _JSON[1]
        if method == "POST" and action == "/feedback":
            reply = engine.feedback(body)
            return reply.status, reply.body, _JSON[1]
        if method == "GET" and action in ("", "/"):
            state = engine.state
            return (
                200,
                orjson.dumps(
                    {
                        "endpoint": engine.endpoint,
                        "revision": state.revision,
                        "generation": engine.generation,
                        **state.spec.summary(),
                    }
                ),
                _JSON[1],
            )
        return None

    def _operations(self, path: str) -> tuple[int, bytes, bytes]:
        if path == "/health":
            return 200, b'{"status":"ok"}', _JSON[1]
        if path == "/ready":
            ready = not self.engine.draining
            body = orjson.dumps({"ready": ready, "revision": self.engine.state.revision})
            return (200 if ready else 503), body, _JSON[1]
        from milepost.serving.metrics import exposition

        return 200, exposition(), b"text/plain; version=0.0.4"
