"""`milepost tokens ...`: API tokens for `milepost server` and the model and feature
servers (hashed, with a role, expiry and revocation)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._runtime import runtime

app = typer.Typer(
    help="API tokens: who may call `milepost server` (and the model and feature servers), "
    "with which role.",
    no_args_is_help=True,
)

#: What ``create`` prints under the secret (it is not stored anywhere readable).
SHOWN_ONCE = "This is the only time the secret is shown: store it now (e.g. in MILEPOST_TOKEN)."


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="What the token is for (ci, alice-laptop).")],
    role: Annotated[
        str, typer.Option("--role", help="viewer, member, approver or admin.")
    ] = "member",
    user: Annotated[
        str | None,
        typer.Option("--user", help="Whose token it is (the actor of what it does); default you."),
    ] = None,
    expires_in_days: Annotated[
        float | None,
        typer.Option("--expires-in-days", help="Lifetime in days (default 90)."),
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="A token that never expires.")
    ] = False,
    project: Annotated[
        str | None, typer.Option("--project", help="Scope the token to one project.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a token and print its secret, once (needs admin; the very first token on a
    fresh store makes its creator admin)."""
    from milepost.errors import InvalidInput
    from milepost.governance.tokens import DEFAULT_EXPIRY_DAYS

    if no_expiry and expires_in_days is not None:
        raise InvalidInput(
            "--expires-in-days and --no-expiry contradict each other.", hint="Pass one of them."
        )
    lifetime = None if no_expiry else expires_in_days
    if lifetime is None and not no_expiry:
        lifetime = DEFAULT_EXPIRY_DAYS
    token, secret = runtime().tokens.create(
        name, role, user=user, expires_in_days=lifetime, project=project
    )
    if as_json:
        emit_json({"token": token.to_dict(), "secret": secret})
        return
    expiry = (
        "never expires" if token.expires_at is None else f"expires {fmt_time(token.expires_at)}"
    )
    scope = f", project {escape(token.project)}" if token.project else ""
    console.print(
        f"Token {token.token_id} ({escape(token.name)}) for {escape(token.user)} as "
        f"{token.role}{scope}; {expiry}."
    )
    console.print(secret, soft_wrap=True, highlight=False, markup=False)
    console.print(SHOWN_ONCE)


@app.command("list")
def list_(
    include_revoked: Annotated[bool, typer.Option("--all", help="Also revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List tokens, newest first (never their secrets)."""
    tokens = runtime().tokens.list(include_revoked=include_revoked)
    if as_json:
        emit_json([t.to_dict() for t in tokens])
        return
    if not tokens:
        console.print(
            "No tokens. Create one with `milepost tokens create --name NAME --role ROLE`."
        )
        return
    rows = [
        [
            t.token_id,
            t.name,
            t.user,
            t.role,
            t.project or "",
            t.state(),
            "never" if t.expires_at is None else fmt_time(t.expires_at),
            fmt_time(t.last_used_at) if t.last_used_at else "",
        ]
        for t in tokens
    ]
    cols: list[Col | str] = [
        "id", Col("name", wrap=True), "user", "role", "project", "state",
        Col("expires (UTC)", wrap=True), Col("last used (UTC)", wrap=True),
    ]  # fmt: skip
    console.print(fit_table(cols, rows)[0])


@app.command()
def revoke(
    ref: Annotated[str, typer.Argument(help="The token's id or name.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Recorded in the audit trail.")
    ] = None,
) -> None:
    """Revoke a token: requests with it are refused from the next one on (the model and
    feature servers: within a few seconds)."""
    token = runtime().tokens.revoke(ref, reason=reason)
    console.print(
        f"Token {token.token_id} ({escape(token.name)}) of {escape(token.user)} is revoked."
    )
