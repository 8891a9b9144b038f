"""The scheduler's periodic work on a real store: due monitors, canaries whose controller
is gone, and data-volume triggers on feature views."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import InvalidInput
from milepost.features import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    OnDemandFeatureView,
    PushSource,
)
from milepost.pipelines import _sources
from milepost.serving import CanaryPolicy
from milepost.serving.logger import PredictionLogger
from tests._wait import clock_ms_after
from tests.contract.conftest import FEATURES
from tests.unit.pipelines.test_triggers import CHURN, Clock, Recording, scheduler, service


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(
        home=tmp_path / "home", metadata_uri=f"sqlite:///{tmp_path / 'meta.db'}", user="tester"
    )
    yield runtime
    milepost.reset()


def _log(rt: Runtime, variant: str, n: int) -> None:
    logger = PredictionLogger(
        "churn-ep", rt.settings.home / "predictions", rt.serving.store, interval=3600
    )
    now = datetime.now(UTC)
    for i in range(n):
        logger.append(
            {
                "request_id": f"{variant}-{i}-{time.time_ns()}",
                "row": 0,
                "ts": now,
                "endpoint": "churn-ep",
                "variant": variant,
                "model": "churn",
                "version": 1,
                "role": "canary",
                "key": str(i),
                "features": "{}",
                "prediction": "0",
                "latency_ms": 1.0,
                "status": "ok",
                "error": None,
            }
        )
    logger.close()


def test_a_canary_whose_controller_is_gone_is_stepped(
    rt: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    for key in ("good", "good"):
        with milepost.start_run(experiment="serving"):
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(3)
            )
    Client().promote("churn", 1, "Production")
    rt.serving.create("churn-ep", "churn", version=1)
    rt.serving.canary(
        "churn-ep", 2, policy=CanaryPolicy(steps=[10, 100], min_seconds=0, min_requests=50)
    )
    _log(rt, "churn-v2", 60)
    _log(rt, "churn-v1", 200)

    # a model server's controller holds the endpoint's lease: the scheduler keeps off
    assert rt.serving.store.take_lease("churn-ep", "server-1", 60.0)
    assert _sources.orphan_canaries(rt.serving, "sched") == []
    spec, _ = rt.serving.get("churn-ep")
    assert spec.variant("churn-v2").weight == 10  # type: ignore[union-attr]

    # the server died: its lease lapses and the scheduler steps the canary
    assert rt.serving.store.take_lease("churn-ep", "server-1", 0.001)
    clock_ms_after(int(time.time() * 1000) + 2)
    report = rt.scheduler(holder="sched").tick()
    assert report.active and report.errors == []
    lines = report.work["canaries"]
    assert len(lines) == 1 and lines[0].startswith("canary churn-ep: advance: ")
    spec, _ = rt.serving.get("churn-ep")
    assert spec.variant("churn-v2").weight == 100  # type: ignore[union-attr]
    # the scheduler now holds the endpoint's lease: a server coming back waits for it
    assert not rt.serving.store.take_lease("churn-ep", "server-2", 10.0)


def test_the_runtime_scheduler_runs_due_monitors(
    rt: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    with milepost.start_run(experiment="serving"):
        milepost.log_model(
            churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(3)
        )
    rt.serving.create("churn-ep", "churn", version=1)
    mon = rt.monitors.create("every10", endpoint="churn-ep", window="10m", schedule="every 10m")
    assert mon.next_run_at is not None
    sched = rt.scheduler(holder="s")
    early = sched.tick(now=mon.next_run_at - 1)
    assert "monitors" not in early.work
    due = sched.tick(now=mon.next_run_at)
    assert due.work["monitors"] == ["every10: empty · 0 rows · 0 alert(s)"]
    assert "monitors" not in sched.tick(now=mon.next_run_at + 1).work  # the slot ran once
    assert due.errors == []


# -- data volume on feature views -----------------------------------------------------------

customer = Entity("customer", join_keys=["customer_id"])


def _clicks(start: int, n: int) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "customer_id": range(start, start + n),
            "ts": [now - timedelta(minutes=1)] * n,
            "clicks": range(n),
        }
    )


def _doubled(df: pd.DataFrame) -> pd.DataFrame:
    df["double_clicks"] = df["clicks__clicks"] * df["factor"]
    return df


def test_data_volume_on_a_feature_view_counts_its_source_rows(rt: Runtime) -> None:
    clicks = FeatureView(
        name="clicks",
        entity=customer,
        source=PushSource("clicks"),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("clicks", "int")],
    )
    total = OnDemandFeatureView(
        name="doubled",
        sources=[clicks],
        request_schema=[Field("factor", "int")],
        schema=[Field("double_clicks", "int")],
        transform=_doubled,
    )
    fs = FeatureStore([customer, clicks, total])
    fs.apply()
    fs.push("clicks", _clicks(0, 30))
    fs.flush()
    clock, launcher = Clock(), Recording()
    triggers = service(rt, clock, launcher)
    t = triggers.add("more-clicks", CHURN, on_data="clicks", min_rows=25)
    assert t.spec["source"] == "feature_view" and t.state["baseline_rows"] == 30
    with pytest.raises(InvalidInput, match="'doubled' is an on-demand feature view"):
        triggers.add("doubled", CHURN, on_data="doubled", min_rows=1)
    sched = scheduler(triggers, launcher, clock)
    fs.push("clicks", _clicks(30, 24))
    fs.flush()
    assert sched.tick().firings == []
    fs.push("clicks", _clicks(54, 1))
    fs.flush()
    fired = sched.tick().firings
    assert [f.cause for f in fired] == ["rows:clicks@55"]
    assert "25 new rows in feature view clicks (55 at 55, baseline 30)" in fired[0].reason
    assert sched.tick().firings == []


def test_a_run_whose_process_died_is_reaped_and_its_firing_says_failed(rt: Runtime) -> None:
    from milepost.tracking.environment import process_info
    from tests.unit.pipelines.test_service import _dead_process

    rt.triggers.add("nightly", CHURN, schedule="0 3 * * *")
    fired = rt.triggers.fire("nightly", launcher=Recording())  # a run id reserved, no run yet
    assert fired.status == "launched"  # the run is not registered yet
    # the launched process registered its run, then died without ending it
    pid, started = _dead_process()
    rt.pipelines.store.create_run(
        {
            "run_id": fired.run_id,
            "pipeline": "churn",
            "ref": CHURN,
            "params_json": "{}",
            "status": "running",
            "runner": "local",
            "started_at": 1,
            "heartbeat_at": 1,
            "host": process_info().host,
            "pid": pid,
            "pid_started": started,
            "trigger": fired.firing_id,
            "actor": "tester",
        },
        actor="tester",
    )
    assert rt.triggers.get_firing(fired.firing_id).status == "running"
    report = rt.scheduler(holder="s").tick()
    [line] = report.work["pipeline runs"]
    assert line.startswith(f"pipeline run {fired.run_id} (churn) marked failed: ")
    assert rt.triggers.get_firing(fired.firing_id).status == "failed"
    assert "pipeline runs" not in rt.scheduler(holder="s").tick().work  # reaped once


def test_a_firing_its_scheduler_never_launched_is_marked_launch_failed(rt: Runtime) -> None:
    from milepost.pipelines.triggers import Cause

    triggers = rt.triggers
    t = triggers.add("nightly", CHURN, schedule="0 3 * * *")
    # a scheduler wrote the firing, then died before launching it
    firing = triggers.record(t, Cause("slot:x", "the slot came", {"last_slot": 1}))
    assert firing is not None and triggers.get_firing(firing.firing_id).status == "pending"
    sched = rt.scheduler(holder="s", lease_seconds=15)
    soon = sched.tick(now=firing.fired_at + 29_000)  # not yet: two leases have not passed
    assert "firings" not in soon.work
    late = sched.tick(now=firing.fired_at + 31_000)
    assert late.work["firings"] == [
        f"firing {firing.firing_id} of nightly (slot:x) marked launch_failed: its scheduler "
        "stopped before launching it (no run was registered)"
    ]
    assert triggers.get_firing(firing.firing_id).status == "launch_failed"
    assert "firings" not in sched.tick(now=firing.fired_at + 40_000).work


def test_a_feature_view_on_a_dataset_counts_the_dataset_newest_version(rt: Runtime) -> None:
    from milepost.features import DatasetSource

    def events(n: int) -> pd.DataFrame:
        ts = datetime.now(UTC) - timedelta(hours=1)
        return pd.DataFrame({"customer_id": range(n), "ts": [ts] * n, "spend": [1.0] * n})

    rt.data.register("events", events(10))
    view = FeatureView(
        name="spend",
        entity=customer,
        source=DatasetSource("events"),
        timestamp_field="ts",
        ttl=timedelta(days=1),
        schema=[Field("spend")],
    )
    FeatureStore([customer, view]).apply()
    clock, launcher = Clock(), Recording()
    triggers = service(rt, clock, launcher)
    t = triggers.add("spend", CHURN, on_data="spend", min_rows=5)
    assert t.spec["source"] == "feature_view" and t.state == {
        "baseline_rows": 10,
        "baseline_token": "1",
    }
    rt.data.register("events", events(15))
    [fired] = scheduler(triggers, launcher, clock).tick().firings
    assert fired.cause == "rows:spend@2"
