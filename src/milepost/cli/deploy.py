"""`milepost deploy ...` and `milepost serve`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from milepost._context import get_runtime
from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._params import (
    MAX_INT64,
    EndpointArg,
    PortOpt,
    ReasonOpt,
    ReplicasArg,
    VersionArg,
)
from milepost.errors import InvalidInput
from milepost.serving.analysis import fmt_ms
from milepost.serving.service import describe
from milepost.serving.spec import CanaryPolicy, EndpointSpec

app = typer.Typer(
    help="Endpoints and deployment strategies (blue/green, canary, shadow, rolling).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Registered model (default: the endpoint's).")
]


def _done(spec: EndpointSpec, what: str, as_json: bool) -> None:
    if as_json:
        emit_json(spec.summary())
        return
    console.print(f"{what} ({spec.kind}): {describe(spec)}")
    ro = spec.rollout
    if ro is not None and ro.request_id is not None:
        req = get_runtime().promotion.get_request(ro.request_id)
        console.print(
            f"  carries promotion request {req.request_id[:12]} ({req.model} v{req.version} "
            f"-> {req.target_stage}): {req.status}"
        )


@app.command()
def create(
    endpoint: EndpointArg,
    model: Annotated[str, typer.Option("--model", help="Registered model to serve.")],
    version: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_INT64,
            help="Pin this version (no stage binding; rollouts leave the registry alone).",
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            help="Track this stage of the model (Production, the default without --version): "
            "the endpoint serves the registry's Production version, and a rollout there is "
            "what moves Production.",
        ),
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, max=256, help="Replicas per host.")] = 1,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an endpoint that tracks Production of a model, or one pinned to a version
    (checks that the version loads, predicts its example, and that its pinned features are
    materialized)."""
    spec = get_runtime().serving.create(
        endpoint,
        model,
        version=version,
        stage=stage,
        replicas=replicas,
        log_predictions=not no_log,
    )
    _done(spec, f"Created endpoint {endpoint}", as_json)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List endpoints: what each tracks (or that it is pinned) and what it serves."""
    serving = get_runtime().serving
    rows = [(name, *serving.get(name)) for name in serving.endpoints()]
    if as_json:
        emit_json([{"endpoint": n, "revision": r, **s.summary()} for n, s, r in rows])
        return
    table, _ = fit_table(
        ["endpoint", Col("kind", wrap=True), Col("serving", wrap=True), "replicas", "revision"],
        [
            [name, spec.kind, describe(spec), str(spec.replicas), str(revision)]
            for name, spec, revision in rows
        ],
        optional=2,
    )
    console.print(table)


@app.command()
def status(
    endpoint: EndpointArg,
    window: Annotated[
        float, typer.Option(min=1, help="Seconds of traffic to count (at most).")
    ] = 300,
    as_json: JsonOpt = False,
) -> None:
    """What the endpoint tracks (and whether the registry agrees), variants, the rollout in
    progress, per-variant traffic, errors and latency over a stated window, events."""
    data = get_runtime().serving.status(endpoint, window_seconds=window)
    if as_json:
        emit_json(data)
        return
    ro = data["rollout"]
    console.print(
        f"[bold]{endpoint}[/] · {data['kind']} · revision {data['revision']} · "
        f"{data['replicas']} replica(s)"
        + (f" · {ro['kind']} {ro['status']}: {ro['detail']}" if ro else "")
    )
    registry = data.get("registry")
    if registry is not None:
        production = registry["production_version"]
        console.print(
            f"registry: Production is v{production}, the primary here"
            if registry["agrees"]
            else f"[red]registry: Production is v{production or '-'}, but the primary here "
            "is not it[/] (run `milepost audit verify`)"
        )
    request = data.get("request")
    if request is not None:
        console.print(
            f"rollout carries promotion request {request['request_id'][:12]} "
            f"(v{request['version']} -> Production): {request['status']}"
        )
    since, until = data["window"]["since"], data["window"]["until"]
    rows = []
    current = {v["name"] for v in data["variants"]}
    gone = [
        {"name": name, "role": "(removed)", "weight": 0, "share": 0}
        for name in sorted(data["stats"])
        if name not in current
    ]
    for v in [*data["variants"], *gone]:
        s = data["stats"].get(v["name"], {})
        split = (
            f"{v['weight']:g}%"
            if v["role"] == "canary"
            else f"{v['share']:.0%}"
            if v["role"] == "shadow"
            else ""
        )
        rows.append(
            [
                v["name"],
                v["role"],
                split or "-",
                f"{s.get('requests', 0):,}",
                f"{s.get('errors', 0):,}",
                fmt_ms(s.get("p50_ms")),
                fmt_ms(s.get("p99_ms")),
                f"{s['agreement']:.1%}" if s.get("agreement") is not None else "-",
            ]
        )
    table, _ = fit_table(
        [
            "variant",
            "role",
            Col("traffic", justify="right"),
            Col("requests", justify="right"),
            Col("errors", justify="right"),
            Col("p50", justify="right"),
            Col("p99", justify="right"),
            Col("agreement", justify="right"),
        ],
        rows,
        optional=1,
        title=f"traffic {fmt_time(since)} to {fmt_time(until)} UTC "
        f"({(until - since) / 1000:.0f} s)",
        title_justify="left",
    )
    console.print(table)
    events, _ = fit_table(
        ["when (UTC)", "event", "by", Col("reason", wrap=True)],
        [
            [fmt_time(e["at"]), e["kind"], e["actor"], escape(e["reason"] or "")]
            for e in data["events"]
        ],
        title="history",
        title_justify="left",
    )
    console.print(events)


@app.command("blue-green")
def blue_green(
    endpoint: EndpointArg, version: VersionArg, model: ModelOpt = None, as_json: JsonOpt = False
) -> None:
    """Load VERSION beside the primary with no traffic (then `switch`, `rollback`, `finalize`).

    On an endpoint that tracks Production, VERSION's promotion to Production runs first
    (or its approved one is used), and `switch` makes it Production in the registry."""
    _done(get_runtime().serving.blue_green(endpoint, version, model=model), "Preview", as_json)


@app.command()
def switch(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Blue/green: move all traffic to the new version at once (the old one stays warm)."""
    _done(get_runtime().serving.switch(endpoint, reason=reason), "Switched", as_json)


@app.command()
def canary(
    endpoint: EndpointArg,
    version: VersionArg,
    model: ModelOpt = None,
    steps: Annotated[str, typer.Option(help="Traffic percent per step.")] = "5,25,50,100",
    min_seconds: Annotated[float, typer.Option(help="Minimum duration of a step.")] = 30.0,
    min_requests: Annotated[
        int, typer.Option(min=1, help="Minimum canary requests per step.")
    ] = 100,
    max_error_rate_increase: Annotated[
        float, typer.Option(help="Allowed error-rate increase.")
    ] = 0.01,
    max_p99_ratio: Annotated[float, typer.Option(help="Allowed canary/primary p99 ratio.")] = 1.5,
    min_p99_increase_ms: Annotated[
        float, typer.Option(help="A slower p99 is tolerated unless it is also this much slower.")
    ] = 5.0,
    max_prediction_psi: Annotated[
        float | None, typer.Option(help="Allowed prediction PSI.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a canary; `milepost serve` advances, holds or rolls it back automatically.

    On an endpoint that tracks Production, VERSION's promotion to Production runs first
    (its gates; an approval must land before any traffic), and the canary's last step
    makes it Production in the registry and primary here, together."""
    try:
        step_values = [float(s) for s in steps.split(",")]
    except ValueError as exc:
        raise InvalidInput(f"--steps {steps!r} is not a list of numbers like 5,25,50,100.") from exc
    policy = CanaryPolicy(
        steps=step_values,
        min_seconds=min_seconds,
        min_requests=min_requests,
        max_error_rate_increase=max_error_rate_increase,
        max_p99_ratio=max_p99_ratio,
        min_p99_increase_ms=min_p99_increase_ms,
        max_prediction_psi=max_prediction_psi,
    )
    _done(
        get_runtime().serving.canary(endpoint, version, model=model, policy=policy),
        "Canary",
        as_json,
    )


@app.command()
def shadow(
    endpoint: EndpointArg,
    version: VersionArg,
    model: ModelOpt = None,
    share: Annotated[float, typer.Option(help="Fraction of requests mirrored.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Mirror a share of requests to VERSION; its answers are logged, never returned."""
    _done(
        get_runtime().serving.shadow(endpoint, version, model=model, share=share), "Shadow", as_json
    )


@app.command()
def rolling(
    endpoint: EndpointArg, version: VersionArg, model: ModelOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace replicas one at a time with VERSION (each host's `milepost serve` does it).

    On an endpoint that tracks Production, VERSION's promotion to Production runs first,
    and the update's end makes it Production in the registry."""
    _done(get_runtime().serving.rolling(endpoint, version, model=model), "Rolling update", as_json)


@app.command()
def promote(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Canary: next step now (at the last, make it primary). Shadow: turn it into a canary."""
    _done(get_runtime().serving.promote(endpoint, reason=reason), "Promoted", as_json)


@app.command()
def rollback(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Back to the previous version, instantly (on an endpoint that tracks Production, the
    registry's Production goes back with it, and the promotion request is rolled_back)."""
    _done(get_runtime().serving.rollback(endpoint, reason=reason), "Rolled back", as_json)


@app.command()
def finalize(endpoint: EndpointArg, as_json: JsonOpt = False) -> None:
    """Retire the previous version kept for rollback."""
    _done(get_runtime().serving.finalize(endpoint), "Finalized", as_json)


@app.command()
def scale(endpoint: EndpointArg, replicas: ReplicasArg, as_json: JsonOpt = False) -> None:
    """Set the replica count per host."""
    _done(get_runtime().serving.set_replicas(endpoint, replicas), "Scaled", as_json)


def serve(
    endpoint: EndpointArg,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: PortOpt = 8080,
    replicas: Annotated[
        int | None, typer.Option(min=1, max=256, help="Replicas (default: the endpoint's).")
    ] = None,
) -> None:
    """Serve an endpoint: replicas on one socket, rollouts and the canary controller."""
    from milepost.server.supervisor import Supervisor

    def ready(sup: Any) -> None:
        console.print(
            f"Serving {endpoint} on http://{sup.host}:{sup.port} with "
            f"{len(sup.children)} replica(s); POST /v1/endpoints/{endpoint}/predict"
        )

    Supervisor(endpoint, host=host, port=port, replicas=replicas).serve(on_ready=ready)
