"""`milepost info` and `milepost db ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table
from milepost.cli._runtime import runtime
from milepost.errors import mask_uri

NO_AUTHENTICATION = (
    "none. Embedded mode has no authentication: anyone who can write the metadata "
    "database or set MILEPOST_USER can act as anyone (the audit trail records the user "
    "Milepost was told; the server will add tokens)."
)

#: What is in force when a setting has no value.
UNSET = {
    "s3_endpoint_url": "(none: the AWS endpoint of the region)",
    "serving_token": "(none: the model server asks for no token)",
    "trusted_types": "(none: the built-in allow-list only)",
}

db_app = typer.Typer(help="The metadata database's schema.", no_args_is_help=True)


def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the resolved settings, where each came from, and the backends in use."""
    import milepost
    from milepost.config import ENV_PREFIX, load_settings

    resolved = load_settings()
    s = resolved.settings
    rt = runtime()
    if getattr(type(rt), "remote", False):
        _remote_info(rt, resolved, as_json=as_json)
        return
    settings: dict[str, Any] = {}
    for key in type(s).model_fields:  # on the class: pydantic 2.11 deprecates the instance
        value = getattr(s, key)
        settings[key] = {
            "value": None if value is None else str(value),
            "source": resolved.sources.get(key, "default"),
        }
    # the value in force, also where a default derived from another setting applies
    settings["metadata_uri"]["value"] = mask_uri(s.resolved_metadata_uri())
    settings["artifact_uri"]["value"] = s.resolved_artifact_uri()
    settings["online_uri"]["value"] = mask_uri(s.resolved_online_uri())
    settings["offline_uri"]["value"] = s.resolved_offline_uri()
    settings["user"]["value"] = s.actor()
    backends: dict[str, dict[str, Any]] = {
        "metadata": {
            "dialect": rt.db.dialect,
            "uri": mask_uri(rt.db.uri),
            "schema_revision": rt.db.current_revision(),
        },
        "artifacts": {"type": type(rt.blobs).__name__, "uri": rt.blobs.uri},
    }
    data = {
        "version": milepost.__version__,
        "project_file": str(resolved.project_file) if resolved.project_file else None,
        "actor": s.actor(),
        "authentication": NO_AUTHENTICATION,
        "settings": settings,
        "backends": backends,
    }
    if as_json:
        emit_json(data)
        return
    console.print(
        f"[bold]Milepost {data['version']}[/] · actor {data['actor']} · project file "
        f"{data['project_file'] or '(none: defaults and environment only)'}"
    )
    rows = []
    for key, item in settings.items():
        origin = {"env": f"env {ENV_PREFIX}{key.upper()}", "file": "milepost.toml"}.get(
            item["source"], item["source"]
        )
        shown = item["value"] if item["value"] not in (None, "") else UNSET.get(key, "(none)")
        if key == "user" and item["source"] == "default":
            shown += " (the OS user)"
        rows.append([key, escape(shown), origin])
    table, _ = fit_table(
        ["setting", Col("value", wrap=True), Col("from", wrap=True)],
        rows,
        title="settings (precedence: env > milepost.toml > default)",
        title_justify="left",
    )
    console.print(table)
    b = backends
    console.print(
        f"metadata  {b['metadata']['dialect']} {b['metadata']['uri']} "
        f"(schema {b['metadata']['schema_revision']})"
    )
    console.print(f"artifacts {b['artifacts']['type']} {b['artifacts']['uri']}")
    console.print(f"[yellow]authentication {NO_AUTHENTICATION}[/]", highlight=False)


def _remote_info(rt: Any, resolved: Any, *, as_json: bool) -> None:
    """``milepost info`` in remote mode: the server, who it takes us for, the settings."""
    import milepost
    from milepost.config import ENV_PREFIX
    from milepost.errors import MilepostError

    s = resolved.settings
    url = rt.transport.url
    try:
        who: dict[str, Any] = rt.whoami()
    except MilepostError as exc:
        who = {"error": exc.message}
    settings = {
        key: {
            "value": None if getattr(s, key) is None else str(getattr(s, key)),
            "source": resolved.sources.get(key, "default"),
        }
        for key in ("url", "token", "experiment", "metric_flush_interval", "metric_flush_timeout")
    }
    data = {
        "version": milepost.__version__,
        "mode": "remote",
        "server": {"url": url, **who},
        "project_file": str(resolved.project_file) if resolved.project_file else None,
        "settings": settings,
    }
    if as_json:
        emit_json(data)
        return
    console.print(f"[bold]Milepost {data['version']}[/] · remote mode: server {escape(url)}")
    if "error" in who:
        console.print(f"[red]server: {escape(str(who['error']))}[/]", highlight=False)
    else:
        project = f" · project {who['project']}" if who.get("project") else ""
        console.print(f"acting as {who.get('user')} (role {who.get('role')}){project}")
    rows = []
    for key, item in settings.items():
        origin = {"env": f"env {ENV_PREFIX}{key.upper()}", "file": "milepost.toml"}.get(
            item["source"], item["source"]
        )
        rows.append([key, escape(item["value"] or "(none)"), origin])
    table, _ = fit_table(["setting", Col("value", wrap=True), Col("from", wrap=True)], rows)
    console.print(table)
    console.print("Stores are the server's; unset MILEPOST_URL to use local ones.")


@db_app.command()
def upgrade() -> None:
    """Apply schema migrations (also done automatically on first use)."""
    db = runtime().db
    db.upgrade()
    console.print(f"Schema at revision {db.current_revision()} ({mask_uri(db.uri)}).")


@db_app.command()
def current() -> None:
    """Print the schema revision of the database and the newest one this version knows."""
    db = runtime().db
    console.print(f"database {db.current_revision()} · newest {db.head_revision()}")
