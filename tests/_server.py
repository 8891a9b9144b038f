"""A real ``milepost server`` app on 127.0.0.1 in a background thread, for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from milepost.server.api import create_app
from milepost.server.api.auth import AuthConfig
from milepost.server.listen import listen
from tests._wait import wait_until


@contextlib.contextmanager
def platform_server(rt: Any, *, auth: bool = True, **app_options: Any) -> Iterator[str]:
    """Serve ``create_app(rt)`` on a free loopback port; yields the base URL."""
    with serve_app(create_app(rt, auth=AuthConfig(required=auth), **app_options)) as url:
        yield url


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread; yields its URL."""
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
