"""`milepost endpoints ...`: create, list, show, update, advance, rollback, serve, prune-logs.

The strategy commands of wave 1 (`deploy blue-green|canary|shadow|rolling|switch|promote|
scale` and top-level `serve`) are defined here too and registered, hidden, by
:mod:`milepost.cli.deploy` for one release; `endpoints update --strategy` replaces them.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._params import (
    MAX_INT64,
    EndpointArg,
    PortOpt,
    ReasonOpt,
    ReplicasArg,
    VersionArg,
)
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.serving.spec import CanaryPolicy, EndpointSpec

app = typer.Typer(
    help="Model endpoints: create, list, show; update one with a strategy (canary, "
    "blue-green, shadow, rolling), advance or roll back its rollout; serve it.",
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
    from milepost.serving.service import describe

    marked = ", consequential" if spec.consequential else ""
    console.print(f"{what} ({spec.kind}{marked}): {describe(spec)}")
    ro = spec.rollout
    if ro is not None and ro.request_id is not None:
        req = runtime().promotion.get_request(ro.request_id)
        console.print(
            f"  carries promotion request {req.request_id[:12]} ({req.model} v{req.version} "
            f"-> {req.target_stage}): {req.status}"
        )


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
    consequential: Annotated[
        bool,
        typer.Option(
            "--consequential",
            help="Its answers are decisions about people: each is logged with its "
            "explanation (`milepost decisions show`); the version must be explainable.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an endpoint that tracks Production of a model, or one pinned to a version
    (checks that the version loads, predicts its example, and that its pinned features are
    materialized)."""
    spec = runtime().serving.create(
        endpoint,
        model,
        version=version,
        stage=stage,
        replicas=replicas,
        log_predictions=not no_log,
        consequential=consequential,
    )
    _done(spec, f"Created endpoint {endpoint}", as_json)


def list_(as_json: JsonOpt = False) -> None:
    """List endpoints: what each tracks (or that it is pinned) and what it serves."""
    from milepost.serving.service import describe

    serving = runtime().serving
    rows = [(name, *serving.get(name)) for name in serving.list_endpoints()]
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


def show(
    endpoint: EndpointArg,
    window: Annotated[
        float, typer.Option(min=1, help="Seconds of traffic to count (at most).")
    ] = 300,
    as_json: JsonOpt = False,
) -> None:
    """What the endpoint tracks (and whether the registry agrees), variants, the rollout in
    progress, per-variant traffic, errors and latency over a stated window, events."""
    from milepost.serving.analysis import fmt_ms

    data = runtime().serving.status(endpoint, window_seconds=window)
    if as_json:
        emit_json(data)
        return
    ro = data["rollout"]
    console.print(
        f"[bold]{endpoint}[/] · {data['kind']} · revision {data['revision']} · "
        f"{data['replicas']} replica(s)"
        + (" · consequential: decisions recorded" if data.get("consequential") else "")
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


def blue_green(
    endpoint: EndpointArg, version: VersionArg, model: ModelOpt = None, as_json: JsonOpt = False
) -> None:
    """Load VERSION beside the primary with no traffic (then `switch`, `rollback`, `finalize`).

    On an endpoint that tracks Production, VERSION's promotion to Production runs first
    (or its approved one is used), and `switch` makes it Production in the registry."""
    _done(runtime().serving.blue_green(endpoint, version, model=model), "Preview", as_json)


def switch(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Blue/green: move all traffic to the new version at once (the old one stays warm)."""
    _done(runtime().serving.switch(endpoint, reason=reason), "Switched", as_json)


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
    """Start a canary; `milepost endpoints serve` advances, holds or rolls it back automatically.

    On an endpoint that tracks Production, VERSION's promotion to Production runs first
    (its gates; an approval must land before any traffic), and the canary's last step
    makes it Production in the registry and primary here, together."""
    policy = _policy(
        steps=steps,
        min_seconds=min_seconds,
        min_requests=min_requests,
        max_error_rate_increase=max_error_rate_increase,
        max_p99_ratio=max_p99_ratio,
        min_p99_increase_ms=min_p99_increase_ms,
        max_prediction_psi=max_prediction_psi,
    )
    _done(
        runtime().serving.canary(endpoint, version, model=model, policy=policy),
        "Canary",
        as_json,
    )


def _policy(*, steps: str | None, **given: Any) -> CanaryPolicy:
    """A canary policy from the options given (the others keep their defaults)."""
    from pydantic import ValidationError

    from milepost.serving.spec import CanaryPolicy

    if steps is not None:
        try:
            given["steps"] = [float(s) for s in steps.split(",")]
        except ValueError as exc:
            raise InvalidInput(
                f"--steps {steps!r} is not a list of numbers like 5,25,50,100."
            ) from exc
    try:
        return CanaryPolicy(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:  # a value out of range: name it as the option it came from
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-")
        raise InvalidInput(
            f"{option} {first.get('input')!r}: {first['msg'][0].lower()}{first['msg'][1:]}."
        ) from exc


def shadow(
    endpoint: EndpointArg,
    version: VersionArg,
    model: ModelOpt = None,
    share: Annotated[float, typer.Option(help="Fraction of requests mirrored.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Mirror a share of requests to VERSION; its answers are logged, never returned."""
    _done(runtime().serving.shadow(endpoint, version, model=model, share=share), "Shadow", as_json)


def rolling(
    endpoint: EndpointArg, version: VersionArg, model: ModelOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace replicas one at a time with VERSION (each host's `milepost endpoints serve` does it).

    On an endpoint that tracks Production, VERSION's promotion to Production runs first,
    and the update's end makes it Production in the registry."""
    _done(runtime().serving.rolling(endpoint, version, model=model), "Rolling update", as_json)


def promote(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Canary: next step now (at the last, make it primary). Shadow: turn it into a canary."""
    _done(runtime().serving.promote(endpoint, reason=reason), "Promoted", as_json)


def rollback(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Back to the previous version, instantly (on an endpoint that tracks Production, the
    registry's Production goes back with it, and the promotion request is rolled_back)."""
    _done(runtime().serving.rollback(endpoint, reason=reason), "Rolled back", as_json)


def finalize(endpoint: EndpointArg, as_json: JsonOpt = False) -> None:
    """Retire the previous version kept for rollback."""
    _done(runtime().serving.finalize(endpoint), "Finalized", as_json)


class Strategy(enum.StrEnum):
    """How `endpoints update` brings a version in."""

    canary = "canary"
    blue_green = "blue-green"
    shadow = "shadow"
    rolling = "rolling"


def update(
    endpoint: EndpointArg,
    version: Annotated[
        int | None,
        typer.Argument(min=1, max=MAX_INT64, help="The model version to bring in."),
    ] = None,
    strategy: Annotated[
        Strategy,
        typer.Option(
            metavar="STRATEGY",
            help="canary: a growing share of traffic, judged at each step; blue-green: "
            "loaded beside the primary with no traffic until `advance`; shadow: mirrored "
            "requests, answers only logged; rolling: replicas replaced one at a time.",
        ),
    ] = Strategy.canary,
    model: ModelOpt = None,
    replicas: Annotated[
        int | None, typer.Option(min=1, max=256, help="Set the replicas per host.")
    ] = None,
    steps: Annotated[
        str | None, typer.Option(help="Canary: traffic percent per step (default 5,25,50,100).")
    ] = None,
    min_seconds: Annotated[
        float | None, typer.Option(help="Canary: minimum duration of a step (default 30).")
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_INT64, help="Canary: minimum requests per step (default 100)."),
    ] = None,
    max_error_rate_increase: Annotated[
        float | None,
        typer.Option(help="Canary: allowed error-rate increase (default 0.01)."),
    ] = None,
    max_p99_ratio: Annotated[
        float | None, typer.Option(help="Canary: allowed canary/primary p99 ratio (default 1.5).")
    ] = None,
    min_p99_increase_ms: Annotated[
        float | None,
        typer.Option(
            help="Canary: a slower p99 is tolerated unless also this much slower (default 5).",
        ),
    ] = None,
    max_prediction_psi: Annotated[
        float | None, typer.Option(help="Canary: allowed prediction PSI (default: none).")
    ] = None,
    share: Annotated[
        float | None, typer.Option(help="Shadow: fraction of requests mirrored (default 1.0).")
    ] = None,
    consequential: Annotated[
        bool | None,
        typer.Option(
            "--consequential/--not-consequential",
            help="Mark the endpoint as making decisions about people (each answer is then "
            "logged with its explanation; its variants must be explainable), or unmark it.",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring VERSION in with a strategy (default canary), and/or set --replicas, and/or
    mark the endpoint --consequential (or --not-consequential).

    `milepost endpoints serve` carries the rollout out: a canary advances, holds or rolls
    back automatically; `advance` and `rollback` move it by hand. On an endpoint that
    tracks Production, VERSION's promotion to Production runs first (its gates; an
    approval must land before any traffic), and the rollout's end makes it Production in
    the registry and primary here, together."""
    canary_options = {
        "--steps": steps,
        "--min-seconds": min_seconds,
        "--min-requests": min_requests,
        "--max-error-rate-increase": max_error_rate_increase,
        "--max-p99-ratio": max_p99_ratio,
        "--min-p99-increase-ms": min_p99_increase_ms,
        "--max-prediction-psi": max_prediction_psi,
    }
    given = [k for k, v in canary_options.items() if v is not None]
    if version is None and (given or share is not None):
        raise InvalidInput(f"{(given or ['--share'])[0]} needs a VERSION to bring in.")
    if version is None and replicas is None and consequential is None:
        raise InvalidInput(
            "Nothing to update.",
            hint=f"Give a VERSION to bring in (`milepost endpoints update {endpoint} 2`), "
            "--replicas N, --consequential, or several.",
        )
    if given and strategy is not Strategy.canary:
        raise InvalidInput(f"{given[0]} applies to --strategy canary, not {strategy.value}.")
    if share is not None and strategy is not Strategy.shadow:
        raise InvalidInput(f"--share applies to --strategy shadow, not {strategy.value}.")
    policy = _policy(  # checked before anything changes
        steps=steps,
        min_seconds=min_seconds,
        min_requests=min_requests,
        max_error_rate_increase=max_error_rate_increase,
        max_p99_ratio=max_p99_ratio,
        min_p99_increase_ms=min_p99_increase_ms,
        max_prediction_psi=max_prediction_psi,
    )
    serving = runtime().serving
    if consequential is not None:
        spec = serving.set_consequential(endpoint, consequential, reason=reason)
        if (version is None and replicas is None) or not as_json:
            _done(spec, "Marked consequential" if consequential else "Unmarked", as_json)
    if replicas is not None:
        spec = serving.set_replicas(endpoint, replicas)
        if version is None or not as_json:
            _done(spec, "Scaled", as_json)
    if version is not None:
        _roll_out(serving, endpoint, version, strategy, model, policy, share, as_json)


def _roll_out(
    serving: Any,
    endpoint: str,
    version: int,
    strategy: Strategy,
    model: str | None,
    policy: CanaryPolicy,
    share: float | None,
    as_json: bool,
) -> None:
    """Start the rollout `update` asked for."""
    if strategy is Strategy.canary:
        _done(serving.canary(endpoint, version, model=model, policy=policy), "Canary", as_json)
    elif strategy is Strategy.blue_green:
        _done(serving.blue_green(endpoint, version, model=model), "Preview", as_json)
    elif strategy is Strategy.shadow:
        shadowed = serving.shadow(
            endpoint, version, model=model, share=1.0 if share is None else share
        )
        _done(shadowed, "Shadow", as_json)
    else:
        _done(serving.rolling(endpoint, version, model=model), "Rolling update", as_json)


def advance(endpoint: EndpointArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Move the rollout on by hand: a canary to its next step (at the last, primary); a
    shadow becomes a canary; a blue/green preview takes all traffic (the old version
    stays warm for `rollback` until `finalize`)."""
    serving = runtime().serving
    spec, _ = serving.get(endpoint)
    ro = spec.rollout
    if ro is not None and ro.kind == "blue_green" and ro.status == "preview":
        _done(serving.switch(endpoint, reason=reason), "Switched", as_json)
    else:
        _done(serving.promote(endpoint, reason=reason), "Advanced", as_json)


def scale(endpoint: EndpointArg, replicas: ReplicasArg, as_json: JsonOpt = False) -> None:
    """Set the replica count per host."""
    _done(runtime().serving.set_replicas(endpoint, replicas), "Scaled", as_json)


def prune_logs(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be deleted.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete prediction-log segments past their retention, with the feedback of their
    requests: the settings prediction_log_retention_days and decision_retention_days (for
    segments holding decision records); unset keeps them forever. Audited per endpoint.
    `milepost scheduler` runs this hourly."""
    report = runtime().serving.prune_prediction_logs(dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    cutoffs = report.before_ms
    if cutoffs.get("prediction_log") is None and cutoffs.get("decisions") is None:
        console.print(
            "No retention is set (prediction_log_retention_days, decision_retention_days): "
            "prediction logs and decision records are kept forever."
        )
        return
    verb = "Would delete" if report.dry_run else "Deleted"
    console.print(
        f"{verb} {report.segments} segment(s): {report.rows:,} logged row(s), "
        f"{report.decision_segments} segment(s) with decision records, "
        f"{report.feedback} label(s)."
    )
    for name, label in (("prediction_log", "prediction logs"), ("decisions", "decisions")):
        cutoff = cutoffs.get(name)
        kept = "kept forever" if cutoff is None else f"kept from {fmt_time(cutoff)} UTC on"
        console.print(f"  {label}: {kept}")
    for name, count in sorted(report.endpoints.items()):
        console.print(f"  {name}: {count} segment(s)")


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


app.command()(create)
app.command("list")(list_)
app.command()(show)
app.command()(update)
app.command()(advance)
app.command()(rollback)
app.command()(finalize)
app.command()(serve)
app.command("prune-logs")(prune_logs)
