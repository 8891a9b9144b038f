"""The demo's last loop: the drift alert fires a trigger, the built-in retraining pipeline
runs on the new data, and the retrained model is canaried into Production.

The monitoring step adds the trigger (:func:`add_trigger`) as soon as its monitor exists,
so the alert its second run raises is new to the trigger. Then, in :func:`retrain_step`:
outcomes arrive for customers who joined at the new prices (after the price change,
those paying over 60 a month without a discount leave more: a concept change that the
Production model, trained before it, cannot know); the policy now lets a retrained
version deploy itself (a canary behind the metric gate); one scheduler tick, launching
inline, fires the trigger and runs :mod:`milepost.retraining`'s pipeline; the demo then
follows the canary under live traffic until the registry and the endpoint agree.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.table import Table

import milepost
from milepost.demo import promotion, serving
from milepost.demo.data import LABEL, generate_customers
from milepost.demo.monitoring import MONITOR, SHIFT
from milepost.demo.serving import ENDPOINT, ModelServer, Traffic
from milepost.errors import MilepostError
from milepost.pipelines.scheduler import release_lease
from milepost.promotion.gates import GateResult

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from milepost.features import FeatureStore

__all__ = ["TRIGGER", "add_trigger", "retrain_step"]

TRIGGER = "retrain-on-drift"
PIPELINE = "milepost.retraining:retrain"
NEW_SHARE = 0.4  # new labelled customers, as a share of the demo's rows
NEW_DAYS = 21  # they joined over the last three weeks, at the new prices
PARAMS = {
    "model": promotion.MODEL,
    "labels": "customers",
    "target": LABEL,
    "feature_repo": "milepost.demo.features",
}


def add_trigger(console: Console) -> None:
    """A drift trigger on the demo's monitor, running the retraining pipeline."""
    trigger = milepost.get_runtime().triggers.add(
        TRIGGER, PIPELINE, params=PARAMS, on_drift=MONITOR
    )
    console.print(
        f"  trigger {trigger.name!r}: on {trigger.description}, run {PIPELINE} with "
        + ", ".join(f"{k}={v}" for k, v in PARAMS.items())
    )


def _policy(test_name: str) -> dict[str, Any]:
    """Retrained versions may deploy themselves: the metric gate on the newest held-out
    set, the data gate, then a canary under traffic instead of a person's approval."""
    return {
        "staging": [{"kind": "data_validation"}],
        "production": [
            {
                "kind": "metric_vs_baseline",
                "name": "better than Production",
                "dataset": test_name,  # unpinned: each retraining's held-out rows
                "target": LABEL,
                "primary": "roc_auc",
                "min_delta": 0.005,
                "guards": {"log_loss": 0.02},
                "threshold": 0.6,
            },
            {"kind": "data_validation"},
        ],
        "deploy": {
            "automatic": True,
            "endpoint": ENDPOINT,
            "steps": [25, 50, 100],
            "min_seconds": 2,
            "min_requests": 50,
            "max_p99_ratio": 3.0,
        },
    }


def _new_outcomes(store: FeatureStore, frame: pd.DataFrame) -> int:
    """Customers who joined at the new prices over the last weeks, with their outcomes,
    land in the customers dataset (a new version) and the online store."""
    import pandas as pd

    now = datetime.now(UTC)
    n = max(200, int(len(frame) * NEW_SHARE))
    batch = generate_customers(
        n,
        seed=11,
        start=now - timedelta(days=NEW_DAYS),
        days=NEW_DAYS,
        price_change=SHIFT,
        first_id=10 * len(frame) + 1,
    )
    current = milepost.data.get("customers").to_pandas()
    milepost.data.register(
        "customers",
        pd.concat([current, batch], ignore_index=True),
        description="with the outcomes of customers who joined at the new prices",
    )
    store.materialize_incremental()
    return n


def _steps_table(console: Console, run: Any) -> None:
    table = Table("step", "status", "took", "cached", title="  pipeline run", title_justify="left")
    for s in run.steps:
        took = "-" if s.duration_ms is None else f"{s.duration_ms / 1000:.1f} s"
        table.add_row(s.step, s.status, took, "yes" if s.status == "cached" else "no")
    console.print(table)


def retrain_step(
    console: Console,
    server: ModelServer,
    store: FeatureStore,
    frame: pd.DataFrame,
    customers: list[int],
) -> dict[str, Any]:
    """New outcomes, the policy's deploy section, one scheduler tick, the canary."""
    rt = milepost.get_runtime()
    client = milepost.Client()
    old = client.get_model(promotion.MODEL).production_version
    started = time.perf_counter()
    added = _new_outcomes(store, frame)
    console.print(
        f"  outcomes arrive for {added:,} customers who joined over the last {NEW_DAYS} days "
        f"at the new prices (monthly_spend x{SHIFT:g}); among them, those paying over 60 a "
        "month without a discount leave more often: a change Production v"
        f"{old} was never trained on"
    )
    policy = client.set_promotion_policy(promotion.MODEL, _policy(f"{promotion.MODEL}.test"))
    console.print(
        f"  the policy of {promotion.MODEL!r} now lets retrained versions deploy themselves: "
        f"{policy.deploy.describe()}; entering Production needs a better ROC AUC than the "
        f"current version's on the newest {promotion.MODEL}.test (each retraining's held-out "
        "rows) and validated data, and no approver"
    )
    traffic = Traffic(server, customers)
    try:
        since = int(time.time() * 1000)
        scheduler = rt.scheduler(launch="inline")
        try:
            tick = scheduler.tick()
        finally:  # so that a `milepost scheduler` started next is active at once
            release_lease(rt.db, scheduler.holder)
        if not tick.firings:
            raise MilepostError(
                f"The scheduler's tick fired no trigger: {'; '.join(tick.lines())}",
                hint=f"See `milepost triggers firings {TRIGGER}`.",
            )
        firing = tick.firings[0]
        console.print(f"  one scheduler tick (launching inline): {firing.trigger} fired")
        console.print(f"    reason: {firing.reason}", markup=False, soft_wrap=True)
        run = rt.pipelines.get_run(firing.run_id)
        console.print(
            f"  pipeline run {run.run_id[:12]} of {run.pipeline} ({run.ref}): {run.status}"
            + (f" at {run.failed_step}: {run.error}" if run.failed_step else "")
        )
        _steps_table(console, run)
        if run.status != "succeeded":
            raise MilepostError(
                f"The retraining run {run.run_id[:12]} {run.status}.",
                hint=f"See `milepost pipelines show {run.run_id[:12]}`.",
            )
        decisions = [run.outputs(s.step).decision for s in run.steps]
        for d in decisions:
            console.print(f"    {d.step}: {d.action}", markup=False)
            for reason in d.reasons:
                console.print(f"      {reason}", markup=False, soft_wrap=True)
        comparison = run.outputs("evaluate_model")
        deployment = run.outputs("deploy_model")
        if deployment.gates:
            console.print(f"  the Production gates on request {deployment.request_id[:12]}:")
            promotion.show_gates(console, [GateResult(**g) for g in deployment.gates])
        status = "not deployed"
        if deployment.action == "canary started" and deployment.request_id:
            status = serving.follow(
                console, deployment.version, deployment.request_id, since_ms=since
            )
        serving.status_table(console, ENDPOINT)
    finally:
        traffic.stop()
    new = client.get_model(promotion.MODEL).production_version
    console.print(
        f"  → Production of {promotion.MODEL}: v{old} → v{new}"
        if new != old
        else f"  → Production stays v{old}"
    )
    console.print(f"  (this step took {time.perf_counter() - started:.1f} s)")
    return {
        "firing": firing.firing_id,
        "trigger": firing.trigger,
        "run": run.run_id,
        "status": run.status,
        "steps": {s.step: s.status for s in run.steps},
        "improvement": comparison.improvement,
        "deployment": deployment.action,
        "canary": status,
        "old_production": old,
        "new_production": new,
    }
