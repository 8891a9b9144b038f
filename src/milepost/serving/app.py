"""The model server's ASGI app: no framework on the request path.

Routes (JSON in and out):

- ``POST /v1/endpoints/{name}/predict`` — ``{"rows": [...], "key": "...", "explain": false}``;
  the header ``X-Milepost-Variant: NAME`` pins a variant. Any variant that takes traffic
  (the primary, a canary with a weight) can be pinned; a variant that takes none (a
  blue/green preview on standby, a shadow, a canary at 0%) only with the server's token.
- ``POST /v1/endpoints/{name}/explain`` — the same, with SHAP contributions. On a
  consequential endpoint every answer carries ``"decision_record": true``: it was logged
  with its explanation (see :mod:`milepost.serving.decisions`)
- ``POST /v1/endpoints/{name}/feedback`` — ``{"request_id": ..., "labels": [...]}`` (or
  ``"label"``; ``"offset"`` for a slice): ground truth for a logged request, at most
  1,000 labels and 1 MiB per call, never overwriting a label (see
  :mod:`milepost.serving.feedback`). It runs in a small pool of worker threads, so
  predictions never wait for it; beyond 16 calls in progress per replica the answer is
  503 with ``Retry-After``.
- ``GET /v1/endpoints/{name}`` — the routing state this replica uses
- ``GET /health`` (alive), ``GET /ready`` (503 while draining), ``GET /metrics`` (Prometheus)

Credentials: the same API tokens and roles as ``milepost server`` (``milepost tokens
create``; ``Authorization: Bearer <token>``), with the member role or more, and, for one
more release, the older shared secret ``serving_token`` (``MILEPOST_SERVING_TOKEN``,
compared in constant time). Feedback needs a credential when ``serving_token`` or
``serving_auth`` is set (401 without one or with a wrong one, 403 for a viewer's token);
otherwise it is open. Pinning a variant that takes no traffic always needs one (403
without, 401 with a wrong one). A checked API token's answer is reused for
``auth_cache_seconds`` (5 s): a revoked token stops working within that bound, and the
metadata store is not read on every request. A request without an ``Authorization``
header pays nothing for any of this.

Errors answer ``{code, message, hint}`` with the status from ``milepost.errors.HTTP_STATUS``:
bad requests are 4xx, never 500; a model that fails on a request that passed its signature
is 500 ``model_error`` (the variant's error, which canary analysis counts). A value of a
header Milepost reads (``Authorization``, ``X-Milepost-Variant``) that is not UTF-8 is a
400 on any route; a method a route does not take is a 405 with ``Allow``; bodies are
limited to 10 MiB (1 MiB for feedback), 413 beyond.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

from milepost.errors import (
    BackendUnavailable,
    InvalidInput,
    MilepostError,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    http_status,
)
from milepost.serving import feedback as _feedback

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from milepost.serving.engine import EndpointEngine, Reply
    from milepost.serving.spec import Variant

__all__ = ["FEEDBACK_IN_PROGRESS", "FEEDBACK_WORKERS", "MAX_BODY", "Authenticator", "ServingApp"]

log = logging.getLogger("milepost.serving")

MAX_BODY = 10 * 1024 * 1024
FEEDBACK_WORKERS = 2
FEEDBACK_IN_PROGRESS = 16
_JSON = b"application/json"
_POST = ("POST",)
_GET = ("GET", "HEAD")
_ENDPOINT_ROUTES: dict[str, tuple[str, ...]] = {
    "/predict": _POST,
    "/explain": _POST,
    "/feedback": _POST,
    "": _GET,
}
_OPERATIONS = ("/health", "/ready", "/metrics")
_GONE = b"\x00gone"  # _read_body's answer when the client went away (a distinct object)


class Authenticator(Protocol):
    """Checks API tokens for the model server (the platform's
    :class:`~milepost.governance.tokens.CachedAuthenticator`, wired in by the replica)."""

    def accepts(self, secret: str) -> bool:
        """Whether ``secret`` has the shape of an API token (no lookup)."""
        ...

    def cached(self, secret: str) -> Any:
        """A kept principal, None, or raises the kept refusal (no lookup)."""
        ...

    def authenticate(self, secret: str) -> Any:
        """The principal (``user``, ``role``, ``allows(role)``); may read the store."""
        ...


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _Request(NamedTuple):
    action: str  # "/predict", "/explain", "/feedback", "" (the endpoint), "/health"...
    limit: int  # bytes of body accepted
    pinned: str | None  # X-Milepost-Variant, checked
    api_token: str | None = None  # an API token still to check (member), before the body
    what: str = ""  # what the token is for, in a refusal


class _Refused(Exception):
    """A request refused before its body is read (unknown route, wrong method)."""

    def __init__(self, answer: _Answer) -> None:
        self.answer = answer


def _json(code: str, message: str, hint: str | None = None) -> bytes:
    return orjson.dumps({"code": code, "message": message, "hint": hint})


def _error(exc: MilepostError) -> _Answer:
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if isinstance(exc, Unauthenticated):
        headers = ((b"www-authenticate", b'Bearer realm="milepost"'),)
    elif isinstance(exc, BackendUnavailable):
        headers = ((b"retry-after", b"1"),)
    return _Answer(http_status(exc), _json(exc.code, exc.message, exc.hint), headers=headers)


def _too_large(limit: int, *, close: bool = False) -> _Answer:
    exc = PayloadTooLarge(
        f"The request body is larger than {limit // (1024 * 1024)} MiB.",
        hint="Send fewer rows (or labels) per request.",
    )
    answer = _error(exc)
    if close:  # the body is not read: the connection cannot carry another request
        answer.headers = (*answer.headers, (b"connection", b"close"))
    return answer


_READ = (b"authorization", b"x-milepost-variant", b"content-length")


def _headers(scope: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The headers Milepost reads (``Authorization``, ``X-Milepost-Variant``,
    ``Content-Length``; the first of each), decoded, in one pass; a value that is not
    UTF-8 is a 400."""
    found: list[bytes | None] = [None, None, None]
    for key, value in scope["headers"]:
        if key in _READ:
            i = _READ.index(key)
            if found[i] is None:
                found[i] = value
    out: list[str | None] = [None, None, None]
    for i, value in enumerate(found):
        if value is not None:
            try:
                out[i] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"The {_READ[i].decode()} header is not UTF-8 text: {value[:64]!r}.",
                    hint="Send header values as UTF-8 (or ASCII) text.",
                ) from None
    return out[0], out[1], out[2]


def _bearer(authorization: str) -> str | None:
    """The token of ``Bearer <token>``; None for any other scheme."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _takes_traffic(variant: Variant) -> bool:
    return variant.role == "primary" or (variant.role == "canary" and variant.weight > 0)


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


async def _read_body(
    receive: Callable[[], Awaitable[dict[str, Any]]], limit: int = MAX_BODY
) -> bytes | None:
    """The whole body; None when it is larger than ``limit`` (read to the end anyway);
    ``_GONE`` when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return None if size > limit else b"".join(chunks)


class ServingApp:
    """An ASGI 3 application over one endpoint's engine.

    Args:
        engine: the endpoint's routing state and request handling.
        token: the shared secret (``serving_token``) that feedback and pinning a variant
            with no traffic accept (``Authorization: Bearer <token>``).
        authenticator: checks API tokens (member or more accepted); None: only
            ``token`` is a credential.
        feedback_auth: feedback needs a credential even without ``token``
            (``serving_auth``). Without either, feedback is open.
    """

    def __init__(
        self,
        engine: EndpointEngine,
        *,
        token: str | None = None,
        authenticator: Authenticator | None = None,
        feedback_auth: bool = False,
    ) -> None:
        self.engine = engine
        self.prefix = f"/v1/endpoints/{engine.endpoint}"
        self._token = None if token is None else token.encode()
        self._authenticator = authenticator
        self._feedback_auth = feedback_auth or token is not None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=FEEDBACK_WORKERS, thread_name_prefix="milepost-feedback"
        )
        self._feedback_calls = 0
        self._routes: dict[tuple[str, str], str] = {}  # (method, path) -> action, when served

    def close(self) -> None:
        """Wait for feedback calls in progress."""
        self._pool.shutdown(wait=True)

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
        request: _Request | None = None
        try:
            request = self._before_body(scope)
        except _Refused as refused:
            answer = refused.answer
        except MilepostError as exc:
            answer = _error(exc)
        if request is not None and request.api_token is not None:
            try:
                await self._check_api_token(request.api_token, request.what)
            except MilepostError as exc:  # refused before its body is read
                answer, request = _error(exc), None
        if request is not None:
            body = await _read_body(receive, request.limit)
            if body is _GONE:
                return  # nobody to answer (the client left, or sent its body too slowly)
            answer = await self._answer(request, body)
        headers = [
            (b"content-type", answer.content_type),
            (b"content-length", str(len(answer.body)).encode()),
            *answer.headers,
        ]
        if self.engine.draining and (b"connection", b"close") not in answer.headers:
            headers.append((b"connection", b"close"))  # the client reconnects to another replica
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _resolve(self, method: str, path: str) -> str:
        """The route's action (``/predict``, ``""`` for the endpoint, ``/health``...)."""
        if path in _OPERATIONS:
            if method not in _GET:
                raise _Refused(_not_allowed(method, path, _GET))
            return path
        if path.startswith("/v1/endpoints/"):
            name, _, rest = path[len("/v1/endpoints/") :].partition("/")
            if name != self.engine.endpoint:
                raise _Refused(
                    _Answer(
                        404,
                        _json(
                            "not_found",
                            f"This server serves endpoint {self.engine.endpoint!r}; there "
                            f"is no endpoint {name!r} here.",
                            f"POST {self.prefix}/predict",
                        ),
                    )
                )
            action = "/" + rest.strip("/") if rest.strip("/") else ""
            allowed = _ENDPOINT_ROUTES.get(action)
            if allowed is None:
                raise _Refused(
                    _Answer(
                        404,
                        _json(
                            "not_found",
                            f"Endpoint {self.engine.endpoint!r} has no route {action!r}.",
                            "Routes: "
                            + ", ".join(
                                f"{methods[0]} {self.prefix}{a}"
                                for a, methods in _ENDPOINT_ROUTES.items()
                            )
                            + ".",
                        ),
                    )
                )
            if method not in allowed:
                raise _Refused(_not_allowed(method, path, allowed))
            return action
        raise _Refused(
            _Answer(
                404,
                _json("not_found", f"No route {method} {path}.", f"POST {self.prefix}/predict"),
            )
        )

    def _before_body(self, scope: dict[str, Any]) -> _Request:
        """The checks that need no body: route, method, headers, declared size, credential.

        Raises:
            _Refused: no such route, or not this method (404, 405).
            MilepostError: a bad header, a body declared too large, no credential.
        """
        route = (scope["method"], scope["path"])
        action = self._routes.get(route)
        if action is None:
            action = self._resolve(*route)
            if len(self._routes) < 64:  # the routes served (a handful); refusals raise
                self._routes[route] = action
        # read (and checked) on every request, used or not: the answer to a bad value does
        # not depend on the route
        authorization, pinned, declared = _headers(scope)
        limit = _feedback.MAX_BODY if action == "/feedback" else MAX_BODY
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refused(_too_large(limit, close=True))  # not worth reading
        if action == "/feedback" and self._feedback_auth:
            return _Request(action, limit, pinned, self._credential(authorization), "Feedback")
        if pinned is not None and action in ("/predict", "/explain"):
            what = self._may_pin(pinned)
            if what:
                return _Request(
                    action, limit, pinned, self._pin_credential(authorization, what), what
                )
        return _Request(action, limit, pinned)

    async def _answer(self, request: _Request, body: bytes | None) -> _Answer:
        action = request.action
        try:
            if body is None:
                return _too_large(request.limit)
            if action in ("/predict", "/explain"):
                reply: Reply = self.engine.predict(
                    body, request.pinned, explain=action == "/explain"
                )
                return _Answer(reply.status, reply.body)
            if action == "/feedback":
                return await self._feedback(body)
            if action == "":
                return self._endpoint_state()
            return self._operations(action)
        except MilepostError as exc:
            return _error(exc)
        except Exception:  # a bug or a model crash: answer, log, keep serving
            log.exception("Request failed")
            return _Answer(
                500,
                _json("internal", "The model server failed on this request; see its log."),
            )

    # -- credentials --------------------------------------------------------------------

    def _serving_token(self, secret: str) -> bool:
        return self._token is not None and hmac.compare_digest(secret.encode(), self._token)

    def _api_token(self, secret: str) -> bool:
        return self._authenticator is not None and self._authenticator.accepts(secret)

    def _credential(self, authorization: str | None) -> str | None:
        """Feedback's credential: None when it is the serving token, the API token to
        check otherwise.

        Raises:
            Unauthenticated: no Authorization header, or one with neither.
        """
        what = (
            "Feedback needs a credential (an API token with the member role, or the serving token)"
        )
        hint = (
            "Send 'Authorization: Bearer <token>' with an API token (`milepost tokens "
            "create --role member`) or the server's serving_token (MILEPOST_SERVING_TOKEN)."
        )
        if authorization is None:
            raise Unauthenticated(
                f"{what}, and the request has no Authorization header.", hint=hint
            )
        secret = _bearer(authorization)
        if secret and self._serving_token(secret):
            return None
        if secret and self._api_token(secret):
            return secret
        raise Unauthenticated(f"{what}, and the Authorization header does not carry it.", hint=hint)

    def _may_pin(self, name: str) -> str:
        """What pinning variant ``name`` is, for a refusal; empty when anyone may pin it
        (it takes traffic, or there is no such variant: the engine answers 404 naming the
        variants)."""
        variant = self.engine.state.spec.variant(name)
        if variant is None or _takes_traffic(variant):
            return ""
        return f"Pinning variant {name!r} ({variant.role}, no traffic)"

    def _pin_credential(self, authorization: str | None, what: str) -> str | None:
        """Pinning's credential: None when it is the serving token, the API token to
        check otherwise.

        Raises:
            PermissionDenied: no credential (or, on a server without a serving token, one
                that is not an API token).
            Unauthenticated: a wrong serving token.
        """
        hint = (
            "Send 'Authorization: Bearer <token>' with an API token (`milepost tokens "
            "create --role member`) or the server's serving_token (MILEPOST_SERVING_TOKEN); "
            "variants that take traffic need none."
        )
        secret = None if authorization is None else _bearer(authorization)
        if secret and self._serving_token(secret):
            return None
        if secret and self._api_token(secret):
            return secret
        if self._token is None:
            accepted = "an API token with the member role, or " if self._authenticator else ""
            raise PermissionDenied(
                f"{what} needs a credential: {accepted}the serving token (this server has "
                "none configured).",
                hint=hint,
            )
        if authorization is None:
            raise PermissionDenied(
                f"{what} needs the serving token"
                + (" or an API token with the member role." if self._authenticator else "."),
                hint=hint,
            )
        raise Unauthenticated(f"{what}: the Authorization header does not carry it.", hint=hint)

    async def _check_api_token(self, secret: str, what: str) -> Any:
        """The API token's principal, if it may do ``what`` (member or more): a kept
        answer, or one looked up off the event loop."""
        authenticator = self._authenticator
        assert authenticator is not None  # only API tokens reach here
        principal = authenticator.cached(secret)
        if principal is None:
            loop = asyncio.get_running_loop()
            principal = await loop.run_in_executor(None, authenticator.authenticate, secret)
        if not principal.allows("member"):
            raise PermissionDenied(
                f"{what} needs the member role; the token of {principal.user!r} has "
                f"{principal.role}.",
                hint="Ask an admin for a token with the member role.",
            )
        return principal

    # -- routes -------------------------------------------------------------------------

    async def _feedback(self, body: bytes) -> _Answer:
        if self._feedback_calls >= FEEDBACK_IN_PROGRESS:
            raise BackendUnavailable(
                f"This replica has {self._feedback_calls} feedback calls in progress "
                f"(the limit is {FEEDBACK_IN_PROGRESS}).",
                hint="Retry in a second, or send more labels per call.",
            )
        self._feedback_calls += 1
        try:
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(self._pool, self.engine.feedback, body)
        finally:
            self._feedback_calls -= 1
        return _Answer(reply.status, reply.body)

    def _endpoint_state(self) -> _Answer:
        engine = self.engine
        state = engine.state
        return _Answer(
            200,
            orjson.dumps(
                {
                    "endpoint": engine.endpoint,
                    "revision": state.revision,
                    "generation": engine.generation,
                    **state.spec.summary(),
                }
            ),
        )

    def _operations(self, path: str) -> _Answer:
        if path == "/health":
            return _Answer(200, b'{"status":"ok"}')
        if path == "/ready":
            ready = not self.engine.draining
            body = orjson.dumps({"ready": ready, "revision": self.engine.state.revision})
            return _Answer(200 if ready else 503, body)
        from milepost.serving.metrics import exposition

        return _Answer(200, exposition(), b"text/plain; version=0.0.4")


def _not_allowed(method: str, path: str, allowed: tuple[str, ...]) -> _Answer:
    return _Answer(
        405,
        _json(
            "method_not_allowed",
            f"{path} takes {' or '.join(allowed)}, not {method}.",
            f"Send {allowed[0]} {path}.",
        ),
        headers=((b"allow", ", ".join(allowed).encode()),),
    )
