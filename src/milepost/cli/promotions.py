"""`milepost promotions ...`: the promotion requests `milepost models promote` opens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._params import ReasonOpt, RequestArg
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput, did_you_mean

if TYPE_CHECKING:
    from milepost.promotion.gates import GateResult
    from milepost.promotion.service import PromotionRequest

app = typer.Typer(
    help="Promotion requests: list them, show one, approve or reject (`milepost models "
    "promote` opens one).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
STATUSES = (
    "pending_approval",
    "awaiting_rollout",
    "rolling_out",
    "completed",
    "rolled_back",
    "refused",
    "rejected",
    "stale",
)
GATE_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "red",
    "pending": "yellow",
    "skipped": "dim",
}


def gates_table(gates: list[GateResult]) -> Table:
    rows = [
        [
            escape(g.name),
            f"[{GATE_STYLE.get(g.status, '')}]{g.status}[/]",
            escape(g.message),
            g.kind,
        ]
        for g in gates
    ]
    table, _ = fit_table(
        [Col("gate", wrap=True), "status", Col("detail", wrap=True), "kind"], rows, optional=1
    )
    return table


def print_request(req: PromotionRequest) -> None:
    if req.gates:
        console.print(gates_table(req.gates))
    if req.status == "completed":
        console.print(
            f"[green]{req.model} v{req.version} is now in {req.target_stage}[/] "
            f"(request {req.request_id[:12]})."
        )
    elif req.status == "pending_approval":
        console.print(
            f"[yellow]Waiting for approval[/]: request {req.request_id[:12]} "
            f"({req.model} v{req.version} -> {req.target_stage}). An approver runs "
            f"`milepost promotions approve {req.request_id[:12]}`."
        )
    elif req.status == "awaiting_rollout":
        console.print(
            f"[cyan]Approved[/]: every gate passed (request {req.request_id[:12]}). Endpoint "
            f"{req.endpoint} tracks {req.target_stage} of {req.model}, so v{req.version} "
            f"enters {req.target_stage} when it is rolled out there: `milepost endpoints update "
            f"{req.endpoint} {req.version}` (a canary; or --strategy blue-green or rolling)."
        )
    elif req.status == "rolling_out":
        console.print(
            f"Request {req.request_id[:12]} is being rolled out on {req.endpoint}: "
            f"`milepost endpoints show {req.endpoint}`."
        )
    else:
        console.print(
            f"Request {req.request_id[:12]} is {req.status}"
            + (f" by {req.decided_by}" if req.decided_by else "")
            + "."
        )


@app.command("list")
def list_(
    status: Annotated[
        str,
        typer.Option(
            help="open (pending_approval, awaiting_rollout, rolling_out), one of "
            + ", ".join(STATUSES)
            + ", or all."
        ),
    ] = "open",
    model: Annotated[str | None, typer.Option(help="Only this model's requests.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List promotion requests (by default the open ones: waiting for an approver or for
    a rollout)."""
    if status not in (*STATUSES, "open", "all"):
        raise InvalidInput(
            f"--status {status!r} is not a request status.{did_you_mean(status, STATUSES)}",
            hint="Use open, all, or one of " + ", ".join(STATUSES) + ".",
        )
    from milepost.promotion.service import OPEN_STATUSES

    wanted: str | tuple[str, ...] | None = (
        OPEN_STATUSES if status == "open" else None if status == "all" else status
    )
    reqs = runtime().promotion.list_requests(status=wanted, model=model)
    if as_json:
        emit_json([r.to_dict() for r in reqs])
        return
    rows = [
        [
            r.request_id[:12],
            f"{r.model}/{r.version}",
            r.target_stage,
            r.status,  # kept whole: "pending_a…" could be read as anything
            r.requested_by,
            fmt_time(r.created_at),
            escape(r.reason or ""),
            r.endpoint or "-",
        ]
        for r in reqs
    ]
    table, _ = fit_table(
        [
            "request",
            "version",
            "to",
            "status",
            "requested by",
            "when (UTC)",
            Col("reason", wrap=True),
            "endpoint",
        ],
        rows,
        optional=3,
    )
    console.print(table)


@app.command()
def show(request: RequestArg, as_json: JsonOpt = False) -> None:
    """One promotion request: its version, target, status, gates and decisions."""
    req = runtime().promotion.get_request(request)
    if as_json:
        emit_json(req.to_dict())
        return
    console.print(
        f"request {req.request_id}: {req.model} v{req.version} -> {req.target_stage}, "
        f"requested by {req.requested_by} at {fmt_time(req.created_at)} UTC"
        + (f": {escape(req.reason)}" if req.reason else "")
    )
    print_request(req)


@app.command()
def approve(request: RequestArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a promotion request (needs the approval gate's role)."""
    req = runtime().promotion.approve(request, reason=reason)
    emit_json(req.to_dict()) if as_json else print_request(req)


@app.command()
def reject(request: RequestArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Reject a promotion request."""
    req = runtime().promotion.reject(request, reason=reason)
    emit_json(req.to_dict()) if as_json else print_request(req)
