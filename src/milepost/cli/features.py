"""`milepost features ...`"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._params import PortOpt
from milepost.cli._runtime import runtime
from milepost.errors import BackendUnavailable, InvalidInput

if TYPE_CHECKING:
    from rich.progress import TaskID

    from milepost.features.api import FeatureStore
    from milepost.features.repo import PlanItem

app = typer.Typer(help="Define, materialize and serve features.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo",
        help="Definitions file or module (default: the feature_repo setting, features.py).",
    ),
]
CHANGE_STYLE = {
    "new": "green",
    "new_version": "yellow",
    "reactivated": "cyan",
    "not_in_definitions": "dim",
    "unchanged": "",
}


def _time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"{what} {text!r} is not an ISO time such as 2026-11-27T00:00:00Z."
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _store(repo: str | None) -> FeatureStore:
    """The feature store for ``repo`` (imported here: ``--help`` loads no service)."""
    from milepost.features.api import FeatureStore

    return FeatureStore(repo)


def _version(number: int | None) -> str:
    return "-" if number is None else f"v{number}"


def _changes(items: list[PlanItem], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([i.to_dict() for i in items])
        return
    rows = []
    for i in items:
        style = CHANGE_STYLE.get(i.change, "")
        rows.append(
            [
                i.view,
                f"[{style}]{i.change}[/]" if style else i.change,
                _version(i.current_version),
                _version(i.next_version),
            ]
        )
    table, _ = fit_table(
        ["view", "change", "version now", "version after"],
        rows,
        title=title,
        title_justify="left",
    )
    console.print(table)
    steps = [step for i in items for step in i.next_steps]
    if steps:
        console.print("Next:", markup=False, highlight=False)
        for step in steps:
            console.print(f"  - {step}", markup=False, highlight=False)


@app.command()
def plan(repo: RepoOpt = None, as_json: JsonOpt = False) -> None:
    """Show what `apply` would change (new views, new versions, views no longer defined)."""
    _changes(_store(repo).plan(), as_json, "plan")


@app.command()
def apply(repo: RepoOpt = None, as_json: JsonOpt = False) -> None:
    """Register the definitions; changed ones become new versions (all or nothing).

    Then says what to run next: materialize versions the online store does not hold yet
    (online reads of them are refused until then); models that keep reading an older
    version they pin.
    """
    _changes(_store(repo).apply(), as_json, "applied")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include retired versions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List registered feature views, their versions, and what the online store holds."""
    service = runtime().features
    records = service.registry.versions(include_retired=all_)
    try:
        coverage = {c.view: c for c in service.online_status(records)}
        unreachable = None
    except BackendUnavailable as exc:  # still list the definitions
        coverage, unreachable = {}, exc.message
    if as_json:
        out = []
        for r in records:
            item = r.to_dict()
            found = coverage.get(f"{r.name}:v{r.version}")
            item["online"] = found.to_dict() if found else {"state": f"unknown: {unreachable}"}
            # what the current online store holds, not what any store once did
            item["materialized_until"] = found.through_ms if found else None
            out.append(item)
        emit_json(out)
        return
    first = next(iter(coverage.values()), None)
    rows = []
    for r in records:
        d = r.definition
        feats = ", ".join(n for n, _ in d.get("schema", []))
        found = coverage.get(f"{r.name}:v{r.version}")
        rows.append(
            [
                r.name,
                f"v{r.version}",
                r.status,
                escape(found.describe() if found else f"unknown: {unreachable}"),
                feats,
                r.kind,
                fmt_time(r.created_at),
            ]
        )
    console.print(
        f"online store: {first.store_uri if first else unreachable or '-'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table, _ = fit_table(
        [
            Col("view", wrap=True),
            "version",
            "status",
            Col("online", wrap=True),
            Col("features", wrap=True),
            "kind",
            "created (UTC)",
        ],
        rows,
        optional=2,
    )
    console.print(table)


@app.command()
def materialize(
    repo: RepoOpt = None,
    start: Annotated[
        str | None, typer.Option(help="ISO start (inclusive); omit with --incremental.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="ISO end (exclusive); default now.")] = None,
    incremental: Annotated[bool, typer.Option(help="From each view's watermark.")] = False,
    view: Annotated[
        list[str] | None,
        typer.Option(
            "--view",
            help="Only these views (VIEW, or VIEW:vN for an older version a model still pins).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load the newest feature rows into the online store, with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    store = _store(repo)
    end_at = _time(end, "--end") or datetime.now(UTC)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(view_key: str, rows: int) -> None:
            if view_key not in tasks:
                tasks[view_key] = bar.add_task(view_key, total=None)
            bar.update(tasks[view_key], completed=rows)

        if incremental:
            written = store.materialize_incremental(end_at, views=view, progress=progress)
        else:
            written = store.materialize(
                _time(start, "--start"), end_at, views=view, progress=progress
            )
    if as_json:
        emit_json(written.to_dict())
        return
    console.print(
        f"online store {written.store_uri} (epoch {written.store_id[:8]})",
        markup=False,
        highlight=False,
    )
    for key, detail in written.details.items():
        console.print(
            f"{key}: {detail.rows:,} rows written to the online store: {detail.reason}",
            style=None if detail.recorded else "red",
            markup=False,
            highlight=False,
        )
    if not all(d.recorded for d in written.details.values()):
        raise typer.Exit(1)


@app.command()
def retire(ref: Annotated[str, typer.Argument(help="VIEW:vN")]) -> None:
    """Retire a view version (refused while a Staging or Production model pins it)."""
    name, _, version = ref.partition(":")
    if not version.startswith("v") or not version[1:].isdigit():
        raise InvalidInput(f"{ref!r} is not VIEW:vN.")
    runtime().features.retire(name, int(version[1:]))
    console.print(f"{ref} retired.")


@app.command("check-consistency")
def check_consistency(
    view: Annotated[str, typer.Argument(help="VIEW or VIEW:vN")],
    repo: RepoOpt = None,
    sample: Annotated[int, typer.Option(min=1, help="Entities to compare.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Compare online values with offline point-in-time values; exit 1 on mismatches.

    The same check as `milepost check consistency --store VIEW`, on entities sampled
    from the online store (an on-demand view needs request data: use that command).
    """
    from milepost.cli.check import print_consistency

    report = _store(repo).check_consistency(view, sample=sample)
    if as_json:
        emit_json(report.to_dict())
    else:
        print_consistency(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def get(
    features: Annotated[list[str], typer.Argument(help="view:feature refs")],
    entity: Annotated[list[str], typer.Option("--entity", "-e", help="key=value (repeat per key)")],
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read online features for one entity."""
    row: dict[str, object] = {}
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--entity {item!r} is not key=value.")
        row[key] = int(value) if value.lstrip("-").isdigit() else value
    response = _store(repo).get_online_features(features, [row])
    if as_json:
        emit_json({"values": response.values, "statuses": response.statuses})
        return
    table, _ = fit_table(
        ["feature", Col("value", wrap=True), "status"],
        [
            [f, escape(str(response.values[f][0])), response.statuses[f][0]]
            for f in response.features
        ],
    )
    console.print(table)


@app.command()
def serve(
    repo: RepoOpt = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: PortOpt = 6566,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve online features over HTTP (POST /v1/features/online)."""
    import os

    from milepost.server.connections import ConnectionLimits, protocol
    from milepost.server.features import REPO_ENV, create_app
    from milepost.server.listen import listen, run_uvicorn

    store = _store(repo)  # fails here, once, on bad definitions
    # header/body deadlines and a connection limit per worker (the http_* settings)
    guarded = protocol(ConnectionLimits.from_settings(runtime().settings))
    sock = listen(host, port)  # a port in use fails here, before the line below
    port = sock.getsockname()[1]
    console.print(f"Feature server on http://{host}:{port} ({len(store.definitions.views)} views)")
    options: dict[str, object] = {
        "interface": "asgi3",
        "http": guarded,
        "ws": "none",
        "log_level": "warning",
        "access_log": False,
    }
    try:
        if workers > 1:  # uvicorn's worker processes build the app from an import string
            if repo is not None:  # else each worker resolves the settings' feature_repo
                os.environ[REPO_ENV] = str(repo)
            options["factory"] = True
            run_uvicorn(
                sock, "milepost.server.features:app_from_env", workers=workers, options=options
            )
        else:
            run_uvicorn(sock, create_app(store), options=options)
    finally:
        sock.close()
