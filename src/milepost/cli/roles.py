"""`milepost roles ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._runtime import runtime

app = typer.Typer(
    help="Who may approve promotions (approver) and manage roles (admin).", no_args_is_help=True
)


UserArg = Annotated[str, typer.Argument(help="The user, as Milepost records them (MILEPOST_USER).")]
RoleArg = Annotated[str, typer.Argument(help="approver or admin.")]


@app.command()
def grant(user: UserArg, role: RoleArg) -> None:
    """Give USER a ROLE (needs admin; the very first grant also makes its granter admin)."""
    rt = runtime()
    for actor, granted in rt.roles.grant(user, role):
        if (actor, granted) == (user, role):
            console.print(f"{user} now holds {role}.")
        else:
            console.print(f"{actor} now holds {granted} (the first grant makes its granter admin).")


@app.command()
def revoke(user: UserArg, role: RoleArg) -> None:
    """Take ROLE away from USER (needs admin; the last admin cannot be revoked)."""
    runtime().roles.revoke(user, role)
    console.print(f"{user} no longer holds {role}.")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List every grant."""
    grants = runtime().roles.list()
    if as_json:
        emit_json(
            [{"user": a, "role": r, "granted_by": g, "granted_at": t} for a, r, g, t in grants]
        )
        return
    rows = [[a, r, g, fmt_time(t)] for a, r, g, t in grants]
    console.print(fit_table(["user", "role", "granted by", Col("when (UTC)", wrap=True)], rows)[0])
