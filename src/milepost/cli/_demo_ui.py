"""Serve the demo's home after ``milepost demo --ui`` until Ctrl-C.

The CLI starts the server here because it sits above both the demo and the server
(the demo package never imports the server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

    from rich.console import Console

__all__ = ["DEFAULT_PORT", "bind", "serve_demo"]

#: The port ``--ui`` tries first; when it is taken (and none was given), a free one.
DEFAULT_PORT = 8080


def bind(port: int | None) -> socket.socket:
    """The server's socket on 127.0.0.1, bound before the demo runs."""
    from milepost.errors import Conflict
    from milepost.server.listen import listen

    if port is not None:
        return listen("127.0.0.1", port)
    try:
        return listen("127.0.0.1", DEFAULT_PORT)
    except Conflict:
        return listen("127.0.0.1", 0)


def serve_demo(console: Console, sock: socket.socket) -> None:
    """Serve the configured (demo) home on ``sock`` with a new admin token until Ctrl-C."""
    import milepost
    from milepost.demo.ui import announce, grant_access
    from milepost.server.api.app import build_app
    from milepost.server.listen import run_uvicorn

    rt = milepost.get_runtime()
    token = grant_access(rt)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    announce(console, url, token)
    options = {"log_level": "warning", "access_log": False, "server_header": False}
    run_uvicorn(sock, build_app(rt), options=options)
