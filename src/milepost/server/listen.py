"""Open the listening socket of a server, or say in one line why it cannot be opened.

Both servers (`milepost endpoints serve`'s supervisor and `milepost features serve`) bind through
:func:`listen` before they print that they are serving, so a port in use is a clear
:class:`~milepost.errors.MilepostError` (one line, exit 1 in the CLI) instead of a
traceback after a line that claimed success.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import TYPE_CHECKING, Any

from milepost.errors import BackendUnavailable, Conflict, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["listen", "run_uvicorn"]

_PORT_HINT = "Pick another one with --port (--port 0 picks a free one)."


def listen(host: str, port: int, *, backlog: int = 4096) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, inheritable by child processes.

    Args:
        host: the address to bind (``127.0.0.1``, ``0.0.0.0``, ``::1``, a host name).
        port: the port; 0 lets the system pick a free one (read it from
            ``sock.getsockname()[1]``).
        backlog: the listen queue length.

    Raises:
        Conflict: another process listens on the port.
        PermissionDenied: the port needs privileges this process does not have.
        InvalidInput: the host is not an address of this machine or cannot be resolved.
        BackendUnavailable: any other reason the system gave.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise InvalidInput(
            f"Cannot listen on {host!r}: {exc.strerror or exc}.",
            hint="Use an address of this machine, e.g. 127.0.0.1 (local only) or 0.0.0.0.",
        ) from exc
    sock = socket.socket(family, kind, proto)
    try:
        # a restarted server can reuse a port whose old connections are in TIME_WAIT;
        # a port another process listens on still fails (EADDRINUSE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(host, port, exc) from exc
    sock.set_inheritable(True)
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> Exception:
    if exc.errno == errno.EADDRINUSE:
        return Conflict(
            f"Port {port} on {host} is in use: another process is listening there.",
            hint=f"Stop that process or {_PORT_HINT[0].lower()}{_PORT_HINT[1:]}",
        )
    if exc.errno == errno.EACCES:
        return PermissionDenied(
            f"Not allowed to listen on port {port} on {host}"
            + (": ports below 1024 need extra privileges." if 0 < port < 1024 else "."),
            hint=_PORT_HINT,
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return InvalidInput(
            f"Cannot listen on {host}: it is not an address of this machine.",
            hint="Use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).",
        )
    return BackendUnavailable(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.")


def run_uvicorn(
    sock: socket.socket,
    app: Any,
    *,
    workers: int = 1,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Serve ``app`` with uvicorn on the already listening ``sock`` until stopped.

    ``uvicorn.run`` binds by itself (and exits the process with a log line when the port
    is taken); serving on a socket :func:`listen` opened keeps that error ours.

    Args:
        sock: from :func:`listen`.
        app: the ASGI app, or an import string (required for ``workers > 1``: each
            worker process builds its own).
        workers: worker processes sharing the socket (uvicorn's supervisor).
        options: more :class:`uvicorn.Config` options (``http``, ``log_level``, ...).

    Raises:
        BackendUnavailable: the server did not start (its log says why).
    """
    import inspect

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **(options or {}))
    server = uvicorn.Server(config)
    if workers > 1:
        # older uvicorn takes each worker's target; newer versions build it themselves
        extra = (
            {"target": server.run} if "target" in inspect.signature(Multiprocess).parameters else {}
        )
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock], **extra).run()
        return
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise BackendUnavailable(f"The server on {host}:{port} did not start; see the log above.")
