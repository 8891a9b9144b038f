"""`milepost server`: the platform server (REST API under /api/v1 and the web UI)."""

from __future__ import annotations

from typing import Annotated

import typer

from milepost.cli._output import console, err_console

#: Loopback names: the only binds ``--no-auth`` is allowed on.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def server(
    host: Annotated[
        str,
        typer.Option(
            help="Bind address: 127.0.0.1 (this machine only) or 0.0.0.0 (every "
            "interface; put TLS in front)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = 8080,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No tokens: every caller acts as you, with the admin role. Allowed only on "
            "a loopback address.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes sharing the port.")
    ] = 1,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web UI over
    this project's stores. Every request needs an API token (`milepost tokens create`)."""
    from milepost.errors import ConfigError, InvalidInput
    from milepost.server.api.app import NO_AUTH_ENV, build_app
    from milepost.server.connections import ConnectionLimits, protocol
    from milepost.server.listen import listen, run_uvicorn

    if no_auth and not is_loopback(host):
        raise InvalidInput(
            f"--no-auth is refused on {host}: anyone who can reach it would act as you, "
            "with the admin role.",
            hint="Bind to 127.0.0.1 for a token-less local server, or drop --no-auth and "
            "give callers tokens (`milepost tokens create --name NAME --role ROLE`).",
        )
    from milepost._context import get_runtime

    rt = get_runtime()
    if rt.settings.url:
        raise ConfigError(
            f"MILEPOST_URL is set ({rt.settings.url}): this process is a client of another "
            "server, and `milepost server` serves the local stores.",
            hint="Unset MILEPOST_URL (and MILEPOST_TOKEN) where the server runs.",
        )
    tokens_exist = bool(rt.tokens.list()) if not no_auth else True
    limits = ConnectionLimits.from_settings(rt.settings)
    sock = listen(host, port)  # a port in use fails here, before the lines below
    port = sock.getsockname()[1]
    base = f"http://{_url_host(host)}:{port}"
    console.print(
        f"Milepost server on {base} (API {base}/api/v1, OpenAPI {base}/api/v1/openapi.json)"
    )
    console.print(f"Web UI: {base}/")
    if no_auth:
        err_console.print(
            f"Authentication is off (--no-auth): every caller acts as {rt.settings.actor()}, "
            "as admin. Local use only."
        )
    elif not tokens_exist:
        err_console.print(
            "No API tokens yet: every request will be refused until you create one, e.g. "
            "`milepost tokens create --name admin --role admin` (the first token makes you admin)."
        )
    options: dict[str, object] = {
        "http": protocol(limits),  # header/body deadlines, a connection limit (http_* settings)
        "ws": "none",
        "log_level": "info",
        "access_log": True,  # method, path and status: tokens travel in headers, never URLs
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    try:
        if workers > 1:  # each worker process builds the app (import string + factory)
            import os

            # always set, so a value inherited from the caller's environment cannot turn
            # authentication off in the workers of a server the CLI checked
            os.environ[NO_AUTH_ENV] = "1" if no_auth else "0"
            options["factory"] = True
            run_uvicorn(
                sock, "milepost.server.api.app:app_from_env", workers=workers, options=options
            )
        else:
            run_uvicorn(sock, build_app(rt, no_auth=no_auth), options=options)
    finally:
        sock.close()
        rt.close()
