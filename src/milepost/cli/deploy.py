"""`milepost deploy ...` and top-level `milepost serve`: hidden aliases of wave 1's names.

Kept for one release so scripts keep working; `milepost endpoints ...` is the vocabulary
(`status` is `show`, `promote` is `advance`, the strategies and `scale` are `update`).
"""

from __future__ import annotations

import typer

from milepost.cli import endpoints

app = typer.Typer(
    help="Old name of `milepost endpoints` (kept for one release).",
    no_args_is_help=True,
    hidden=True,
)
app.command()(endpoints.create)
app.command("list")(endpoints.list_)
app.command("status")(endpoints.show)
app.command("blue-green")(endpoints.blue_green)
app.command()(endpoints.switch)
app.command()(endpoints.canary)
app.command()(endpoints.shadow)
app.command()(endpoints.rolling)
app.command()(endpoints.promote)
app.command()(endpoints.rollback)
app.command()(endpoints.finalize)
app.command()(endpoints.scale)

#: `milepost serve ENDPOINT`, now `milepost endpoints serve ENDPOINT`.
serve = endpoints.serve
