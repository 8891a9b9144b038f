"""One replica: an uvicorn server on the supervisor's listening socket, drained gently.

The replica loads every variant before it serves (so it takes no traffic before it is
ready), then tells the supervisor it is ready through a pipe. On SIGTERM it drains:
it stops accepting (the other replicas on the shared socket take new connections),
answers in-flight requests and each open connection's next request with
``Connection: close``, waits for its connections to close (idle ones get a short
grace), flushes its prediction log and exits. uvicorn's own shutdown would close idle
keep-alive connections at once and lose a request on each.

Slow clients are cut off by :mod:`milepost.server.connections` (header and body
deadlines, a connection limit per replica: the ``http_*`` settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from milepost.server.connections import ConnectionLimits, protocol
from milepost.serving.app import ServingApp

if TYPE_CHECKING:
    import socket
    from types import FrameType

    from milepost import Runtime
    from milepost.serving.engine import EndpointEngine
    from milepost.serving.logger import PredictionLogger

__all__ = ["run_replica"]

log = logging.getLogger("milepost.serving")

DRAIN_GRACE_SECONDS = 3.0


class _DrainingServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, engine: EndpointEngine, ready_fd: int | None
    ) -> None:
        super().__init__(config)
        self.engine = engine
        self.ready_fd = ready_fd
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None:  # a second signal: stop now
            self.should_exit = True
            return
        self.engine.draining = True
        self.drain_deadline = time.monotonic() + DRAIN_GRACE_SECONDS
        for server in getattr(self, "servers", []):
            server.close()  # stop accepting; the listening socket stays open for the others

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.ready_fd is not None and self.started:
            os.write(self.ready_fd, b"1")
            os.close(self.ready_fd)
            self.ready_fd = None

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None:
            idle = not self.server_state.connections and not self.server_state.tasks
            if idle or time.monotonic() >= self.drain_deadline:
                self.should_exit = True
        return await super().on_tick(counter)


def _config(app: Any, limits: ConnectionLimits) -> uvicorn.Config:
    loop = "uvloop" if _has("uvloop") else "asyncio"
    return uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        loop=loop,
        http=protocol(limits),  # httptools, with header/body deadlines and a connection limit
        ws="none",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        server_header=False,
        date_header=False,
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def prediction_logger(rt: Runtime, endpoint: str) -> PredictionLogger:
    """A replica's prediction log: segments go to the artifact store (readable from any
    host), at most ``prediction_log_max_pending`` rows held in memory."""
    from milepost.serving.logger import PredictionLogger

    return PredictionLogger(
        endpoint,
        rt.settings.home / "predictions",
        rt.serving.store,
        blobs=rt.blobs,
        max_pending=rt.settings.prediction_log_max_pending,
    )


def run_replica(
    sock: socket.socket,
    endpoint: str,
    *,
    generation: int,
    ready_fd: int | None,
    overrides: dict[str, Any],
) -> int:
    """Serve ``endpoint`` on ``sock`` until drained; returns the exit code."""
    import milepost
    from milepost.governance.tokens import CachedAuthenticator
    from milepost.serving.engine import EndpointEngine

    rt = milepost.configure(**overrides)
    logger = prediction_logger(rt, endpoint)
    engine = EndpointEngine(
        endpoint,
        store=rt.serving.store,
        models=rt.models,
        features=rt.features,
        generation=generation,
        logger=logger,
    )
    settings = rt.settings
    token = settings.serving_token
    if token is not None:
        log.warning(
            "serving_token is deprecated and goes in the next release: give callers API "
            "tokens instead (`milepost tokens create --name NAME --role member`), and set "
            "serving_auth to require one for feedback."
        )
    app = ServingApp(
        engine,
        token=None if token is None else token.get_secret_value(),
        # the platform's API tokens and roles (member or more), answers kept briefly
        authenticator=CachedAuthenticator(rt.tokens, ttl=settings.auth_cache_seconds),
        feedback_auth=settings.serving_auth,
    )
    limits = ConnectionLimits.from_settings(rt.settings)
    server = _DrainingServer(_config(app, limits), engine, ready_fd)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        with contextlib.suppress(Exception):
            app.close()
            engine.close()
            logger.close()
    return 0
