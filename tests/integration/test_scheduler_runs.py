"""Triggers that run real pipelines: a drift alert from a real monitor fires a trigger whose
pipeline run records the firing (inline, on both metadata backends), a firing launched as
a detached `milepost pipelines run`, and a failed run's status read back on its firing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Runtime
from milepost.errors import NotFound
from tests._wait import wait_until
from tests.contract.test_monitors import HOUR_MS, _frame, _log, serve_churn
from tests.unit.pipelines.test_triggers import BROKEN, CHURN

SRC = str(Path(milepost.__file__).resolve().parents[1])
ROOT = str(Path(__file__).resolve().parents[2])


def test_a_drift_alert_fires_a_trigger_whose_run_records_the_firing(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    serve_churn(runtime, churn_models, churn_frame)
    runtime.monitors.create("churn-health", endpoint="churn-ep", window="1h")
    t = runtime.triggers.add(
        "retrain-on-drift", CHURN, params={"rows": 5, "c": 0.5}, on_drift="churn-health"
    )
    sched = runtime.scheduler(holder="s", launch="inline")
    assert sched.tick().firings == []

    now = int(runtime.triggers.clock() * 1000)
    _log(runtime, _frame(400, seed=1), start_ms=now - HOUR_MS - 30 * 60_000)
    _log(runtime, _frame(400, seed=2, age_shift=12), start_ms=now - 30 * 60_000)
    alerts = runtime.monitors.run("churn-health", now).alerts
    assert alerts and t.state == {"last_alert_id": 0}

    report = sched.tick()
    [fired] = report.firings
    newest = max(a.alert_id for a in alerts)
    assert fired.cause == f"alert:{newest}" and fired.status == "succeeded", fired
    assert fired.reason.startswith(f"monitor churn-health raised alert {newest}: feature_drift")
    run = runtime.pipelines.get_run(fired.run_id)
    assert run.trigger == fired.firing_id and run.status == "succeeded"
    assert run.pipeline == "churn" and run.params == {"rows": 5, "c": 0.5}
    assert run.outputs("fit") == 2.5
    assert runtime.triggers.firings("retrain-on-drift") == [fired]
    assert sched.tick().firings == []  # the alert fired once


def test_a_subprocess_launch_runs_the_pipeline_detached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SRC, ROOT]))
    rt = milepost.configure(home=tmp_path / "home", user="tester")
    rt.triggers.add("nightly", CHURN, params={"rows": 4}, schedule="0 3 * * *")
    fired = rt.triggers.fire("nightly", reason="new labels", launcher="subprocess")
    assert fired.status in ("launched", "running", "succeeded")

    def ended() -> str | None:
        status = rt.triggers.get_firing(fired.firing_id).status
        return status if status in ("succeeded", "failed") else None

    log = rt.settings.home / "logs" / "scheduler" / f"{fired.firing_id}.log"
    status = wait_until(
        ended,
        what="the detached run to end",
        timeout=120,
        detail=lambda: log.read_text() if log.exists() else "no log",
    )
    assert status == "succeeded"
    run = rt.pipelines.get_run(fired.run_id)
    assert run.trigger == fired.firing_id and run.params == {"rows": 4, "c": 1.0}
    assert "succeeded" in log.read_text()


def test_a_failed_run_shows_on_its_firing(tmp_path: Path) -> None:
    rt = milepost.configure(home=tmp_path / "home", user="tester")
    rt.triggers.add("b", BROKEN, schedule="0 3 * * *")
    fired = rt.triggers.fire("b", launcher="inline")
    assert fired.status == "failed" and fired.error is None  # launched fine; the run failed
    run = rt.pipelines.get_run(fired.run_id)
    assert run.status == "failed" and run.failed_step == "boom" and run.trigger == fired.firing_id
    with pytest.raises(NotFound):
        rt.pipelines.get_run("0" * 32)
