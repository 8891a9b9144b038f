"""Slow and excess clients: per-connection deadlines and a connection limit for uvicorn.

uvicorn bounds how long a keep-alive connection may sit idle, but not how long a client
may take to send a request: one that sends a byte a second holds its connection (a file
descriptor, a parser, a slot) for as long as it likes, and a few hundred of them exhaust
a server. :class:`GuardedProtocol`, a subclass of uvicorn's httptools protocol, adds:

- a header deadline: a request's headers must be complete within ``header_timeout``
  seconds of the connection opening (the first request) or of the request's first byte
  (a later request on a keep-alive connection, whose idle time before it uvicorn's
  keep-alive timeout bounds);
- a body deadline: the body must be complete within ``body_timeout`` seconds of the end
  of the headers;
- a connection limit: a connection opened while ``max_connections`` others are open gets
  503 (with ``Retry-After``) for its request and is closed; the connections already open
  keep being served.

A request that misses a deadline is answered 408 and its connection closed (closed only,
when nothing of a request arrived or its answer has begun). Timers are armed only when a
request does not arrive in one read, so a request that does pays nothing.

``milepost endpoints serve`` replicas and ``milepost features serve`` workers both use it: pass
``http=protocol(ConnectionLimits.from_settings(settings))`` to uvicorn.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from milepost.config import Settings

__all__ = ["ConnectionLimits", "GuardedProtocol", "protocol"]

log = logging.getLogger("milepost.server")


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines (seconds) and the connection limit of one server process."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits the settings give (``http_header_timeout`` ...)."""
        return cls(
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            max_connections=settings.http_max_connections,
        )


def protocol(limits: ConnectionLimits) -> Any:
    """uvicorn's ``http`` argument for these limits (picklable, for worker processes)."""
    return functools.partial(GuardedProtocol, limits=limits)


def _raw_response(status: bytes, body: bytes, *extra: bytes) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\n",
            *(h + b"\r\n" for h in extra),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a connection limit."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._phase = "idle"  # idle | headers | body: what the client owes us
        self._deadline: asyncio.TimerHandle | None = None
        self._excess = False

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._excess = len(self.connections) > self.limits.max_connections
        self._arm(self.limits.header_timeout)  # the first request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            self._deadline is None
            and self._phase != "idle"
            and self.parser is not None
            and not self.transport.is_closing()
        ):
            self._arm(
                self.limits.header_timeout if self._phase == "headers" else self.limits.body_timeout
            )

    # -- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        self._disarm()
        self._phase = "body"
        if not self._excess:
            super().on_headers_complete()
            return
        app, self.app = self.app, self._busy
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._phase = "idle"

    # -- deadlines ----------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._phase == "headers":
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False  # a pipelined request: close after this answer
                return
            self._timeout_response("headers", self.limits.header_timeout)
        elif self._phase == "body" and cycle is not None:
            if cycle.response_started:
                if not cycle.response_complete:
                    cycle.keep_alive = False
                    return
            else:
                self._timeout_response("body", self.limits.body_timeout)
                cycle.disconnected = True  # the application's receive() answers disconnect
                cycle.message_event.set()
        self.transport.close()

    def _timeout_response(self, part: str, seconds: float) -> None:
        log.info("Closing a connection from %s: request %s too slow", self.client, part)
        body = orjson.dumps(
            {
                "code": "request_timeout",
                "message": f"The request's {part} did not arrive within {seconds:g} s.",
                "hint": "Send the whole request at once.",
            }
        )
        self.transport.write(_raw_response(b"408 Request Timeout", body))

    # -- over the connection limit ------------------------------------------------------

    async def _busy(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        body = orjson.dumps(
            {
                "code": "backend_unavailable",
                "message": f"This server process has {self.limits.max_connections} open "
                "connections, its limit.",
                "hint": "Retry in a second (reuse a keep-alive connection), or raise "
                "http_max_connections.",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
