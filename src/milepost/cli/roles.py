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
    for made in rt.roles.grant(user, role):
        if (made.actor, made.role) == (user, role):
            console.print(f"{user} now holds {role}.")
        else:
            console.print(
                f"{made.actor} now holds {made.role} (the first grant makes its granter admin)."
            )


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
            [
                {
                    "user": g.actor,
                    "role": g.role,
                    "granted_by": g.granted_by,
                    "granted_at": g.granted_at,
                }
                for g in grants
            ]
        )
        return
    rows = [[g.actor, g.role, g.granted_by, fmt_time(g.granted_at)] for g in grants]
    console.print(fit_table(["user", "role", "granted by", Col("when (UTC)", wrap=True)], rows)[0])
