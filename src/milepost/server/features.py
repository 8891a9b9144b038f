"""The online feature server: ``milepost features serve``.

``POST /v1/features/online`` with ``{"features": [...], "entities": [{...}, ...]}``
answers ``{"features": [...], "values": {...}, "statuses": {...}}`` — the same call as
``FeatureStore.get_online_features``, with the same definitions loaded once at start.
A view version the online store does not hold (applied, not materialized yet) is
answered 409 (``code: conflict``) naming it, never as values that are all "missing".
``GET /health`` answers ``{"status": "ok"}``.

With the ``feature_server_auth`` setting, online reads need an API token of the platform
(``Authorization: Bearer <token>``, any role: viewer or more), checked before the body is
read: 401 without one or with a wrong, expired or revoked one. A checked token's answer is
reused for ``auth_cache_seconds`` (5 s), so reads do not each hit the metadata store and a
revoked token stops working within that bound. Without the setting, reads are open.

Like the model server it is a plain ASGI app with no framework on the request path: an
online read takes tens of microseconds, and a framework's routing and validation cost
several times that. A malformed body gets 422, a known error its status from
``milepost.errors.HTTP_STATUS``, both with ``{code, message, hint}``.

A serving process keeps the request path free of work that is not the request's. At
start-up (the ASGI lifespan, with ``create_app``'s default, which ``milepost features
serve`` uses) it collects garbage once and moves every object left (the interpreter, the
libraries, the loaded definitions) into the permanent generation with ``gc.freeze()``,
as long-lived servers do (Instagram's Django servers, for one), so that a full collection,
should one come during a request, does not walk those hundreds of thousands of objects.
And every half second a background task reads the registered versions and what the
online store holds again (:meth:`FeatureStore.refresh`), so that no read finds them
expired and pays the two metadata round trips itself (measured: 1.5-2.3 ms, once a
second, on one request).

Every online store call runs off the event loop, in a bounded pool of threads, so
``/health`` and other requests are answered while one call hangs on a slow or dead
backend; a call that takes longer than the ``feature_server_timeout`` setting is answered
504 (``code: timeout``). Its thread stays busy until the store's own timeout ends it
(Redis: 5 s; SQLite: the busy timeout); while every thread is busy, new requests wait for
one and get the same 504 in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson

from milepost.errors import MilepostError, PermissionDenied, Unauthenticated, http_status, mask_uri
from milepost.serving.app import MAX_BODY, _read_body

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from milepost.features.api import FeatureStore
    from milepost.governance.tokens import CachedAuthenticator

__all__ = ["REPO_ENV", "FeatureServer", "app_from_env", "create_app"]

log = logging.getLogger("milepost.features")

#: Where ``milepost features serve --workers N`` tells its worker processes the repo.
REPO_ENV = "MILEPOST_FEATURE_SERVER_REPO"

MAX_FEATURES = 1000
MAX_ENTITIES = 10_000
#: Online store calls in flight at once per server process (the rest wait for a thread).
THREADS = 8
#: Seconds between two background reads of the registered versions and holdings (reads
#: cache them for one second: see ``FeatureService.records``).
REFRESH_SECONDS = 0.5


class _Malformed(Exception):
    """The body is not the request's shape (answered 422)."""


def _parse(body: bytes) -> tuple[list[str], list[dict[str, Any]], bool]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Malformed(f"The request body is not JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise _Malformed("The request body must be a JSON object.")
    features, entities = payload.get("features"), payload.get("entities")
    if (
        not isinstance(features, list)
        or not 1 <= len(features) <= MAX_FEATURES
        or not all(isinstance(f, str) for f in features)
    ):
        raise _Malformed(f"'features' must be a list of 1 to {MAX_FEATURES} feature refs.")
    if (
        not isinstance(entities, list)
        or not 1 <= len(entities) <= MAX_ENTITIES
        or not all(isinstance(e, dict) for e in entities)
    ):
        raise _Malformed(f"'entities' must be a list of 1 to {MAX_ENTITIES} objects.")
    full = payload.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise _Malformed("'full_feature_names' must be true or false.")
    return features, entities, full


def _error(status: int, code: str, message: str, hint: str | None = None) -> tuple[int, bytes]:
    return status, orjson.dumps({"code": code, "message": message, "hint": hint})


#: Each route and the methods it takes (another method is a 405 with ``Allow``).
_ROUTES: dict[str, tuple[str, ...]] = {
    "/health": ("GET", "HEAD"),
    "/v1/features/online": ("POST",),
}


class FeatureServer:
    """An ASGI 3 application over a loaded FeatureStore.

    Args:
        store: the loaded feature store.
        timeout: seconds an online read may take before the answer is 504.
        online_uri: the online store, as the 504 names it (password masked).
        threads: online reads in flight at once.
        authenticator: when given, online reads need an API token (viewer or more).
        freeze_gc: at start-up, collect once and ``gc.freeze()`` what is left (a serving
            process does; an app embedded in a process that does more, such as a test
            run, may not want its objects frozen).
    """

    def __init__(
        self,
        store: FeatureStore,
        *,
        timeout: float,
        online_uri: str = "",
        threads: int = THREADS,
        authenticator: CachedAuthenticator | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.store = store
        self.freeze_gc = freeze_gc
        self.timeout = timeout
        self.online_uri = online_uri
        self.authenticator = authenticator
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="milepost-online")

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        extra: list[tuple[bytes, bytes]] = []
        refusal = None
        if self.authenticator is not None and path == "/v1/features/online":
            refusal = await self._refuse(scope)  # before the body is read
        body = None if refusal is not None else await _read_body(receive)
        if refusal is not None:
            status, payload = refusal
            if status == 401:
                extra.append((b"www-authenticate", b'Bearer realm="milepost"'))
        elif path == "/v1/features/online" and method == "POST" and body is not None:
            status, payload = await self._online(body)
        elif path in _ROUTES and method not in _ROUTES[path]:
            allowed = _ROUTES[path]
            status, payload = _error(
                405,
                "method_not_allowed",
                f"{path} takes {' or '.join(allowed)}, not {method}.",
                f"Send {allowed[0]} {path}.",
            )
            extra.append((b"allow", ", ".join(allowed).encode()))
        else:
            status, payload = self._answer(method, path, body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(
        self,
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        """Start-up: freeze what is loaded, start the refresher; shutdown: stop both."""
        refresher: asyncio.Task[None] | None = None
        try:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if self.freeze_gc:
                        gc.collect()
                        gc.freeze()
                    refresher = asyncio.create_task(self._refresh_forever())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        finally:
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _refresh_forever(self) -> None:
        """Read the registered versions and holdings again every REFRESH_SECONDS, in a pool
        thread (one at a time: a hung metadata store holds one thread, not more)."""
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await loop.run_in_executor(self._pool, self.store.refresh)
            except Exception:  # the reads refresh by themselves meanwhile; say it once
                if not failing:
                    log.exception("Reading the registered feature views again failed")
                failing = True
            else:
                failing = False

    async def _refuse(self, scope: dict[str, Any]) -> tuple[int, bytes] | None:
        """The answer refusing a caller without a valid API token; None: let it in."""
        authenticator = self.authenticator
        assert authenticator is not None
        value = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        scheme, _, secret = (value or b"").decode("latin-1").strip().partition(" ")
        secret = secret.strip()
        try:
            if value is None or scheme.lower() != "bearer" or not authenticator.accepts(secret):
                raise Unauthenticated(
                    "Online reads need an API token"
                    + (", and the request has none." if value is None else "; this is not one."),
                    hint="Send 'Authorization: Bearer <token>' with a token from `milepost "
                    "tokens create` (any role).",
                )
            principal = authenticator.cached(secret)
            if principal is None:
                loop = asyncio.get_running_loop()
                principal = await loop.run_in_executor(None, authenticator.authenticate, secret)
            if not principal.allows("viewer"):  # pragma: no cover - every role can read
                raise PermissionDenied("Online reads need the viewer role.")
        except MilepostError as exc:
            return http_status(exc), orjson.dumps(
                {"code": exc.code, "message": exc.message, "hint": exc.hint}
            )
        return None

    def _answer(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """Everything but an online read, answered on the event loop."""
        if path == "/health":
            return 200, b'{"status":"ok"}'
        if path != "/v1/features/online":
            return _error(
                404, "not_found", f"No route {method} {path}.", "POST /v1/features/online"
            )
        return _error(
            413,
            "invalid_input",
            f"The request body is larger than {MAX_BODY // (1024 * 1024)} MiB.",
            "Ask for fewer entities per request.",
        )

    async def _online(self, body: bytes) -> tuple[int, bytes]:
        """An online read in a pool thread, answered 504 when it takes too long."""
        try:
            features, entities, full = _parse(body)
        except _Malformed as exc:
            return _error(422, "invalid_input", str(exc))
        call = asyncio.get_running_loop().run_in_executor(
            self._pool, self._read, features, entities, full
        )
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            return _error(
                504,
                "timeout",
                f"The online store {self.online_uri} did not answer within {self.timeout:g} s.",
                "Check the online store; the limit is the feature_server_timeout setting "
                "(MILEPOST_FEATURE_SERVER_TIMEOUT).",
            )

    def _read(
        self, features: list[str], entities: list[dict[str, Any]], full: bool
    ) -> tuple[int, bytes]:
        try:
            response = self.store.get_online_features(features, entities, full_feature_names=full)
        except MilepostError as exc:
            return http_status(exc), orjson.dumps(
                {"code": exc.code, "message": exc.message, "hint": exc.hint}
            )
        except Exception:  # a bug or a store outage: answer, log, keep serving
            log.exception("Online feature request failed")
            return _error(500, "internal", "The feature server failed; see its log.")
        return 200, orjson.dumps(
            {
                "features": response.features,
                "values": response.values,
                "statuses": response.statuses,
            }
        )


def create_app(
    store: FeatureStore,
    *,
    timeout: float | None = None,
    auth: bool | None = None,
    freeze_gc: bool = True,
) -> FeatureServer:
    """The ASGI app of a serving process over a loaded FeatureStore (``timeout``: the
    feature_server_timeout setting unless given; ``auth``: online reads need an API token,
    the feature_server_auth setting unless given; ``freeze_gc``: see
    :class:`FeatureServer`)."""
    from milepost._context import get_runtime

    rt = get_runtime()
    settings = rt.settings
    authenticator = None
    if settings.feature_server_auth if auth is None else auth:
        from milepost.governance.tokens import CachedAuthenticator

        authenticator = CachedAuthenticator(rt.tokens, ttl=settings.auth_cache_seconds)
    return FeatureServer(
        store,
        timeout=settings.feature_server_timeout if timeout is None else timeout,
        online_uri=mask_uri(settings.resolved_online_uri()),
        authenticator=authenticator,
        freeze_gc=freeze_gc,
    )


def app_from_env() -> FeatureServer:
    """The app for one uvicorn worker process (``--workers N``)."""
    import os

    from milepost.features.api import FeatureStore

    return create_app(FeatureStore(os.environ.get(REPO_ENV) or None))
