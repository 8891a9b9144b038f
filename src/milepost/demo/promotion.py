"""The demo's promotion: a policy, gated and approved promotions, a refusal.

Once the endpoint that tracks Production of churn exists, a promotion to Production whose
gates all pass waits for its rollout there (``awaiting_rollout``): the canary is what
moves Production (see :mod:`milepost.demo.serving`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

import milepost
from milepost.demo.data import LABEL
from milepost.demo.home import STORE_SETTINGS
from milepost.errors import GateFailed
from milepost.promotion.gates import GateResult

if TYPE_CHECKING:
    from rich.console import Console

    from milepost.data import DatasetVersion
    from milepost.promotion import PromotionRequest

__all__ = [
    "APPROVER",
    "MODEL",
    "approve",
    "awaiting_rollout",
    "promote",
    "refuse",
    "set_up",
    "show_gates",
]

MODEL = "churn"
APPROVER = "ana"


def _policy(test: DatasetVersion) -> dict[str, Any]:
    return {
        "staging": [{"kind": "data_validation", "suite": "customers"}],
        "production": [
            {
                "kind": "metric_vs_baseline",
                "name": "better than Production",
                "dataset": test.ref,
                "target": LABEL,
                "primary": "roc_auc",
                "min_delta": 0.005,
                "guards": {"log_loss": 0.02},
                "threshold": 0.6,
            },
            {"kind": "data_validation", "suite": "customers"},
            {"kind": "approval", "role": "approver"},
        ],
    }


def _gates(console: Console, gates: list[Any]) -> None:
    table = Table("gate", "status", "detail")
    colours = {
        "passed": "green",
        "failed": "red",
        "error": "red",
        "pending": "yellow",
        "skipped": "dim",
    }
    for g in gates:
        table.add_row(g.name, f"[{colours.get(g.status, '')}]{g.status}[/]", g.message)
    console.print(table)


def set_up(console: Console, test: DatasetVersion) -> None:
    """The promotion policy and the roles it needs."""
    rt = milepost.get_runtime()
    requester = rt.settings.actor()
    milepost.Client().set_promotion_policy(MODEL, _policy(test))
    if not rt.roles.has(APPROVER, "approver"):
        if not rt.roles.holders("admin"):
            rt.roles.grant(requester, "admin")  # bootstrap: the first admin (audited)
        rt.roles.grant(APPROVER, "approver")
    console.print(
        f"  policy for {MODEL!r}: Staging needs validated training data; Production needs a "
        f"better ROC AUC than Production on {test.ref}, validated data and an approver "
        f"({APPROVER}); stages are a path, so no version skips Staging's check"
    )


def promote(console: Console, version: int, *, reason: str) -> bool:
    """Staging, then Production through the gates and the approver. True when it got there,
    or, with an endpoint tracking Production, when it is approved and waits for the
    rollout there."""
    rt = milepost.get_runtime()
    requester = rt.settings.actor()
    client = milepost.Client()
    production = client.get_model(MODEL).production_version
    try:
        if client.get_model_version(MODEL, version).stage != "Staging":
            client.promote(MODEL, version, "Staging", reason=reason)
        request = client.promote(MODEL, version, "Production", reason=reason)
    except GateFailed as exc:  # e.g. a re-run whose models are no better than Production
        _gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → v{version} refused; Production stays v{production}")
        return False
    _gates(console, request.gates)
    if request.status == "pending_approval":
        console.print(
            f"  {requester} asked; request {request.request_id[:12]} waits for "
            f"{APPROVER}, who approves it:"
        )
        request = approve(request.request_id)
    if request.status == "awaiting_rollout":
        console.print(
            f"  → approved (request {request.request_id[:12]}). Endpoint {request.endpoint!r} "
            f"tracks Production of {MODEL}, so v{version} enters Production when it is rolled "
            f"out there; Production is v{production} until then"
        )
        return True
    console.print(
        f"  → {MODEL} v{version} is in Production"
        + (f" (v{production} archived)" if production else "")
    )
    return True


def approve(request_id: str) -> PromotionRequest:
    """The approver (``ana``) approves a request; the demo then goes on as its requester."""
    rt = milepost.get_runtime()
    requester = rt.settings.actor()
    # every store setting in force, so that switching the actor cannot switch a store
    # (configure() re-reads the environment and milepost.toml for what it is not given)
    where: dict[str, Any] = {"home": rt.settings.home} | {
        key: getattr(rt.settings, key) for key in STORE_SETTINGS
    }
    try:
        approver = milepost.configure(**where, user=APPROVER)
        return milepost.Client(approver).approve(request_id, reason="metrics and data OK")
    finally:
        milepost.configure(**where, user=requester)


def show_gates(console: Console, gates: list[Any]) -> None:
    """A request's gates as a table (status coloured)."""
    _gates(console, gates)


def awaiting_rollout(version: int) -> bool:
    """True when ``version`` has an approved promotion to Production waiting for a rollout."""
    return any(
        r.version == version and r.target_stage == "Production"
        for r in milepost.Client().list_promotion_requests(status="awaiting_rollout", model=MODEL)
    )


def refuse(console: Console, version: int) -> str | None:
    """A worse version asks for Production and is refused; the registry's recent history."""
    client = milepost.Client()
    console.print(f"  the weaker model (v{version}) asks for Production again:")
    if client.get_model_version(f"models:/{MODEL}/{version}").stage == "Archived":
        client.promote(MODEL, version, "Staging", reason="re-review")  # archived: re-reviewed
    refused = None
    try:
        client.promote(MODEL, version, "Production", reason="another try")
    except GateFailed as exc:
        refused = exc.details["request_id"]
        _gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → refused, registry unchanged (request {refused[:12]})")
    history = client.get_model_history(MODEL)
    table = Table("when (UTC)", "version", "from", "to", "by", "reason")
    for e in history[-5:]:
        table.add_row(
            datetime.fromtimestamp(e.at / 1000, tz=UTC).strftime("%H:%M:%S"),
            str(e.version),
            e.from_stage,
            e.to_stage,
            e.actor,
            e.reason or "",
        )
    console.print(table)
    return refused
