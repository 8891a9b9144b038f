"""``milepost demo --ui``: after the demo, its home served by the platform server.

The demo's user gets an admin API token (the first token of the home, so it makes them
admin); the terminal shows the web UI's address, the token to paste on its login page,
and the two variables that point the Python API and the CLI at the same server. The
server itself is started by the CLI (``milepost.cli._demo_ui``), which sits above both
the demo and the server.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from milepost._context import Runtime

__all__ = ["TOKEN_DAYS", "TOKEN_NAME", "announce", "grant_access"]

#: The demo token's name and lifetime (days): long enough to explore, not forever.
TOKEN_NAME, TOKEN_DAYS = "demo-ui", 7


def grant_access(rt: Runtime) -> str:
    """A new admin token for the demo's user (shown once; only its hash is stored)."""
    _, secret = rt.tokens.create(
        TOKEN_NAME, "admin", user=rt.settings.actor(), expires_in_days=TOKEN_DAYS
    )
    return str(secret)


def announce(console: Console, url: str, token: str) -> None:
    """Where the web UI is, the token to log in with, and how to reach the API."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Web UI", f"{url}/")
    grid.add_row("Token", token)
    grid.add_row("", f"admin, expires in {TOKEN_DAYS} days; paste it on the login page")
    console.print(
        Panel(
            grid,
            title="Everything the demo made, in the browser",
            subtitle="Ctrl-C stops the server; the home stays",
            expand=False,
        )
    )
    console.print("  The CLI and the Python API use this server after:")
    for line in (f"export MILEPOST_URL={shlex.quote(url)}", f"export MILEPOST_TOKEN={token}"):
        console.print(f"    {line}", soft_wrap=True, markup=False)  # whole, to copy
