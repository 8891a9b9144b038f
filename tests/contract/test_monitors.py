"""Monitors on a real metadata store: definitions, runs, results, alerts, schedules."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import AlreadyExists, InvalidInput, NotFound
from milepost.monitoring.service import MonitorService
from milepost.serving.logger import PredictionLogger, new_request_id
from milepost.serving.monitor_sources import ServingMonitorSources
from tests.contract.conftest import FEATURES

T0 = 1_800_000_000.0  # epoch seconds of the tests' "now" (2027-01-15 08:00 UTC)
HOUR_MS = 3_600_000


class Clock:
    """An injected clock: epoch seconds, moved by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def endpoint(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    return serve_churn(runtime, churn_models, churn_frame)


def serve_churn(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    """Register the good churn model and serve version 1 as ``churn-ep``."""
    with milepost.start_run(experiment="monitoring"):
        milepost.log_model(
            churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(3)
        )
    runtime.serving.create("churn-ep", "churn", version=1)
    return "churn-ep"


def _service(runtime: Runtime, clock: Clock, actor: str = "tester") -> MonitorService:
    return MonitorService(
        runtime.db, actor, ServingMonitorSources(runtime.serving, runtime.models), clock=clock
    )


def _log(
    runtime: Runtime,
    frame: pd.DataFrame,
    *,
    start_ms: int,
    predictions: list[Any] | None = None,
    probabilities: list[float] | None = None,
    endpoint: str = "churn-ep",
    version: int = 1,
) -> list[str]:
    """Log one request per row, one ms apart from ``start_ms``; returns the request ids."""
    logger = PredictionLogger(
        endpoint, runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )
    ids = []
    for i, row in enumerate(frame.to_dict("records")):
        rid = new_request_id(start_ms + i)  # time-ordered, as the model server makes them
        ids.append(rid)
        pred = predictions[i] if predictions is not None else int(row["age"] > 45)
        logger.append(
            {
                "request_id": rid,
                "row": 0,
                "ts": start_ms + i,
                "endpoint": endpoint,
                "variant": f"churn-v{version}",
                "model": "churn",
                "version": version,
                "role": "primary",
                "key": str(i),
                "features": json.dumps(row),
                "prediction": json.dumps(pred),
                "latency_ms": 1.0,
                "status": "ok",
                "error": None,
                "probabilities": None
                if probabilities is None
                else json.dumps({"classes": [0, 1], "p": [1 - probabilities[i], probabilities[i]]}),
            }
        )
    logger.close()
    return ids


def _frame(n: int, *, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 8, n).round(1),
            "income": rng.lognormal(10, 0.4, n).round(0),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def _now_ms() -> int:
    return int(T0 * 1000)


def test_a_run_stores_results_and_raises_alerts(
    runtime: Runtime, endpoint: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    clock = Clock()
    svc = _service(runtime, clock)
    # the previous hour is the reference window, the last hour is shifted by 1.5 sd in age
    _log(runtime, _frame(600, seed=1), start_ms=_now_ms() - HOUR_MS - 30 * 60_000)
    _log(runtime, _frame(600, seed=2, age_shift=12), start_ms=_now_ms() - 30 * 60_000)
    mon = svc.create(
        "churn-drift",
        endpoint=endpoint,
        checks=["feature_drift", "prediction_drift"],
        window="1h",
        thresholds={"psi": 0.2, "ks": 0.01},
    )
    assert mon.next_run_at is None and mon.created_by == "tester" and mon.window == "1h"

    with caplog.at_level(logging.WARNING, logger="milepost.monitoring"):
        run = svc.run("churn-drift")
    assert run.rows == 600 and run.status == "breached"
    assert run.window_start == _now_ms() - HOUR_MS and run.window_end == _now_ms()
    by = {(r.check, r.metric, r.feature): r for r in run.results}
    age = by[("feature_drift", "psi", "age")]
    assert age.breached and age.value is not None and age.value > 0.2 and age.threshold == 0.2
    assert age.details["reference"] == "previous_window" and age.details["reference_rows"] == 600
    assert by[("feature_drift", "ks", "age")].breached
    for feature in ("income", "plan"):
        assert not by[("feature_drift", "psi", feature)].breached
    assert by[("feature_drift", "drifted_share", None)].value == pytest.approx(1 / 3)
    # predictions are age > 45: the shift moves them too
    assert by[("prediction_drift", "psi", "prediction")].breached

    breached = {(r.check, r.metric, r.feature) for r in run.results if r.breached}
    assert {(a.check, a.metric, a.feature) for a in run.alerts} == breached
    assert all(a.delivered is None for a in run.alerts)  # no webhook configured
    assert "psi[age]=" in caplog.text and "monitor=churn-drift" in caplog.text

    # the run's report: its drift result, the stored series and alerts, self-contained
    html, js = svc.write_report(tmp_path / "churn-drift", run)
    page = html.read_text()
    assert "Monitor churn-drift" in page and "the previous window (600 rows)" in page
    assert "age" in page and "<script" not in page
    assert 'src="http' not in page and 'href="http' not in page
    assert json.loads(js.read_text())["alerts"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidInput, match="Cannot write the report"):
        svc.write_report(tmp_path / "a-file" / "report", run)

    # stored: the time series and the alerts read back the same
    series = svc.results("churn-drift", metric="psi", feature="age")
    assert [(r.value, r.breached) for r in series] == [(age.value, True)]
    stored = svc.alerts("churn-drift")
    assert {a.alert_id for a in stored} == {a.alert_id for a in run.alerts}
    first = stored[0]
    acked = svc.acknowledge(first.alert_id)
    assert acked.acknowledged_by == "tester" and acked.acknowledged_at == _now_ms()
    assert [a.alert_id for a in svc.alerts(acknowledged=True)] == [first.alert_id]
    assert first.alert_id not in {a.alert_id for a in svc.alerts(acknowledged=False)}
    with pytest.raises(NotFound, match="No alert"):
        svc.acknowledge(10**9)

    # a later run adds points to the series; the shift has become the reference
    clock.now = T0 + 1800
    svc.run("churn-drift")
    series = svc.results("churn-drift", metric="psi", feature="age")
    assert len(series) == 2 and series[0].run_at < series[1].run_at
    assert svc.get("churn-drift").last_run_at == int(clock.now * 1000)


def test_no_drift_no_alert_and_client_facade(runtime: Runtime, endpoint: str) -> None:
    _log(runtime, _frame(500, seed=3), start_ms=_now_ms() - 2 * HOUR_MS + 1)
    _log(runtime, _frame(500, seed=4), start_ms=_now_ms() - HOUR_MS + 1)
    client = Client()
    mon = client.create_monitor("steady", endpoint=endpoint, window="1h", schedule="every 10m")
    assert mon.checks == ["feature_drift"] and mon.schedule == "every 10m"
    run = client.run_monitor("steady", now=_now_ms())
    assert run.status == "ok" and run.alerts == [] and run.rows == 500
    assert {r.feature for r in run.results if r.metric == "psi"} == {"age", "income", "plan"}
    assert [m.name for m in client.list_monitors()] == ["steady"]
    assert client.get_monitor("steady").last_run_at == _now_ms()
    assert len(client.list_monitor_results("steady", metric="psi")) == 3
    assert client.list_alerts() == []
    paused = client.update_monitor("steady", enabled=False, thresholds={"psi": 0.1})
    assert not paused.enabled and paused.thresholds == {"psi": 0.1}
    with pytest.raises(InvalidInput, match="cannot change 'endpoint'"):
        client.update_monitor("steady", endpoint="other")
    client.delete_monitor("steady", reason="test over")
    assert client.list_monitors() == []


def test_an_empty_window_is_a_result_not_a_crash(runtime: Runtime, endpoint: str) -> None:
    svc = _service(runtime, Clock())
    svc.create(
        "quiet",
        endpoint=endpoint,
        checks=["feature_drift", "prediction_drift", "performance"],
        window="last 100",
        thresholds={"psi": 0.1},
    )
    run = svc.run("quiet")
    assert run.status == "empty" and run.rows == 0 and run.alerts == []
    with pytest.raises(InvalidInput, match="nothing to report"):
        svc.write_report("unused", run)
    assert [(r.check, r.status, r.breached) for r in run.results] == [
        ("feature_drift", "empty", False),
        ("prediction_drift", "empty", False),
        ("performance", "empty", False),
    ]
    assert run.results[0].details["reason"] == "no logged prediction in the window"
    # rows but no reference window yet: said so, no alert
    _log(runtime, _frame(50, seed=5), start_ms=_now_ms() - 1000)
    run = svc.run("quiet")
    assert run.rows == 50 and run.alerts == []
    assert {r.status for r in run.results if r.check != "performance"} == {"no_reference"}


def test_a_count_window_takes_the_newest_rows(runtime: Runtime, endpoint: str) -> None:
    svc = _service(runtime, Clock())
    _log(runtime, _frame(1000, seed=6), start_ms=_now_ms() - 3 * 86_400_000)  # days ago
    _log(runtime, _frame(1000, seed=7, age_shift=15), start_ms=_now_ms() - 60_000)
    svc.create("last-n", endpoint=endpoint, window="last 1000")
    run = svc.run("last-n")
    assert run.rows == 1000 and run.window_start == _now_ms() - 60_000
    # no thresholds: every method runs; the counted ones alert (wasserstein, psi)
    counted = {(r.metric, r.feature): r for r in run.results}
    age = counted[("wasserstein", "age")]
    assert age.breached and age.details["reference_rows"] == 1000
    assert not counted[("psi", "plan")].breached and not counted[("wasserstein", "income")].breached
    assert {a.feature for a in run.alerts} == {"age"}


def test_feature_drift_reads_the_stored_training_profile(
    runtime: Runtime, endpoint: str, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    training = _frame(3000, seed=20).assign(churned=0)  # the label is not a served feature
    with milepost.start_run(experiment="monitoring"):
        milepost.log_model(
            churn_models["good"],
            "churn",
            input_example=churn_frame[FEATURES].head(3),
            training_data=training,
        )
    runtime.serving.create("profiled", "churn", version=2)
    _log(
        runtime,
        _frame(800, seed=21, age_shift=10),
        start_ms=_now_ms() - 600_000,
        endpoint="profiled",
        version=2,
    )
    svc = _service(runtime, Clock())
    svc.create("from-profile", endpoint="profiled", window="1h")
    run = svc.run("from-profile")
    by = {(r.metric, r.feature): r for r in run.results}
    age = by[("wasserstein", "age")]
    assert age.breached and age.details["reference"] == "profile"
    assert not by[("wasserstein", "income")].breached and not by[("psi", "plan")].breached
    share = by[("drifted_share", None)]
    assert share.details["not_logged"] == ["churned"] and share.value == pytest.approx(1 / 3)
    # the same model version's rows only, by name: the same answer
    svc.create("v2-only", endpoint="profiled", model="churn", version=2, window="1h")
    assert {a.feature for a in svc.run("v2-only").alerts} == {"age"}
    # a model version wherever it is served (here: one endpoint)
    svc.create("v2-anywhere", model="churn", version=2, window="1h")
    run = svc.run("v2-anywhere")
    assert run.rows == 800 and {a.feature for a in run.alerts} == {"age"}


def test_performance_with_delayed_labels(runtime: Runtime, endpoint: str) -> None:
    svc = _service(runtime, Clock())
    frame = _frame(40, seed=8)
    preds = [int(a > 45) for a in frame["age"]]
    ids = _log(runtime, frame, start_ms=_now_ms() - 60_000, predictions=preds)
    svc.create("perf", endpoint=endpoint, checks=["performance"], thresholds={"accuracy": 0.9})
    run = svc.run("perf")
    (share,) = run.results
    assert share.status == "no_reference" and share.details["unlabelled"] == 40

    # labels for the first 20 requests: 15 right, 5 wrong
    store = runtime.serving.store
    for i, rid in enumerate(ids[:20]):
        store.add_feedback(endpoint, rid, [preds[i] if i < 15 else 1 - preds[i]])
    run = svc.run("perf")
    by = {r.metric: r for r in run.results}
    assert by["labelled_share"].value == pytest.approx(0.5)
    assert by["labelled_share"].details == {"predictions": 40, "labelled": 20, "unlabelled": 20}
    assert by["accuracy"].value == pytest.approx(0.75) and by["accuracy"].rows == 20
    assert by["accuracy"].breached and [a.metric for a in run.alerts] == ["accuracy"]
    assert by["accuracy"].details["task"] == "classification" and "f1_macro" in by


def test_schedule_runs_each_slot_once(runtime: Runtime, endpoint: str) -> None:
    clock = Clock(T0 + 30)  # 08:00:30
    svc = _service(runtime, clock)
    other = _service(runtime, clock, actor="scheduler-2")  # a second scheduler
    mon = svc.create("every5", endpoint=endpoint, window="5m", schedule="*/5 * * * *")
    assert mon.next_run_at == int((T0 + 300) * 1000)  # 08:05
    assert svc.due() == [] and svc.run_due() == []

    clock.now = T0 + 300  # the slot
    assert [m.name for m in svc.due()] == ["every5"]
    runs = svc.run_due()
    assert [r.monitor for r in runs] == ["every5"] and runs[0].status == "empty"
    assert other.run_due() == [] and svc.run_due() == []  # the slot ran once
    assert svc.next_run("every5") == int((T0 + 600) * 1000)

    clock.now = T0 + 3600 + 10  # an hour unwatched: the missed slots run once
    assert len(other.run_due()) == 1 and svc.run_due() == []
    assert svc.get("every5").next_run_at == int((T0 + 3900) * 1000)
    assert len({r.run_id for r in svc.results("every5")}) == 2

    # disabled: not due; re-enabled: from the next slot after now
    svc.update("every5", enabled=False)
    clock.now = T0 + 3900
    assert svc.due() == [] and svc.next_run("every5") is None
    svc.update("every5", enabled=True)
    assert svc.get("every5").next_run_at == int((T0 + 4200) * 1000)
    svc.update("every5", schedule=None)
    assert svc.get("every5").next_run_at is None


def test_schedulers_racing_for_a_slot_run_it_once(runtime: Runtime, endpoint: str) -> None:
    clock = Clock(T0 + 1)
    _service(runtime, clock).create("raced", endpoint=endpoint, schedule="every 1m")
    clock.now = T0 + 60
    schedulers = [_service(runtime, clock, actor=f"s{i}") for i in range(4)]
    barrier = threading.Barrier(len(schedulers))
    counts: list[int] = []

    def race(svc: MonitorService) -> None:
        barrier.wait()
        counts.append(len(svc.run_due()))

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 0, 0, 1]
    assert len({r.run_id for r in schedulers[0].results("raced")}) == 1


def test_bad_input_is_refused_and_writes_nothing(runtime: Runtime, endpoint: str) -> None:
    svc = _service(runtime, Clock())
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (NotFound, "does not exist", {"endpoint": "nope"}),
        (NotFound, "churn", {"model": "churn", "version": 9}),
        (InvalidInput, "needs a target", {}),
        (InvalidInput, "go together", {"model": "churn"}),
        (InvalidInput, "not understood", {"endpoint": endpoint, "window": "an hour"}),
        (InvalidInput, "count is 1", {"endpoint": endpoint, "window": "last 0"}),
        (InvalidInput, "cron", {"endpoint": endpoint, "schedule": "every tuesday"}),
        (InvalidInput, "cron", {"endpoint": endpoint, "schedule": "61 * * * *"}),
        (InvalidInput, "Did you mean 'psi'", {"endpoint": endpoint, "thresholds": {"pis": 1}}),
        (InvalidInput, "not a number", {"endpoint": endpoint, "thresholds": {"psi": "high"}}),
        (InvalidInput, "Unknown check", {"endpoint": endpoint, "checks": ["drift"]}),
        (InvalidInput, "at least one", {"endpoint": endpoint, "checks": []}),
        (InvalidInput, "http", {"endpoint": endpoint, "webhook": "ftp://x"}),
    ]
    for error, match, kwargs in cases:
        with pytest.raises(error, match=match) as info:
            svc.create("m", **kwargs)
        if error is InvalidInput:
            assert getattr(info.value, "hint", None), f"{kwargs}: no hint"
    with pytest.raises(InvalidInput, match="Monitor name"):
        svc.create("bad name!", endpoint=endpoint)
    assert svc.list() == []

    svc.create("m", endpoint=endpoint)
    with pytest.raises(AlreadyExists):
        svc.create("m", endpoint=endpoint, window="2h")
    with pytest.raises(InvalidInput, match="not understood"):
        svc.update("m", window="soon")
    assert svc.get("m").window == "1h"
    with pytest.raises(NotFound, match="No monitor named 'n'"):
        svc.run("n")
    with pytest.raises(InvalidInput, match="Unknown metric"):
        svc.results("m", metric="psy")


def test_changes_are_audited_and_delete_removes_everything(runtime: Runtime, endpoint: str) -> None:
    svc = _service(runtime, Clock())
    _log(runtime, _frame(100, seed=9), start_ms=_now_ms() - 2 * HOUR_MS + 1)
    _log(runtime, _frame(100, seed=10, age_shift=20), start_ms=_now_ms() - 1000)
    svc.create("audited", endpoint=endpoint)
    svc.update("audited", thresholds={"psi": 0.5}, window="2h")
    assert svc.get("audited").thresholds == {"psi": 0.5}
    svc.run("audited")
    svc.delete("audited", reason="replaced")
    events = Client().list_audit_events(object_type="monitor")
    assert [e.action for e in reversed(events)] == [
        "monitor.create",
        "monitor.update",
        "monitor.delete",
    ]
    assert events[1].after["thresholds"] == {"psi": 0.5} and events[1].before["window"] == "1h"
    assert events[0].reason == "replaced" and events[0].actor == "tester"
    with pytest.raises(NotFound):
        svc.get("audited")
    assert svc.alerts() == []
    assert Client().verify_audit().ok


def test_performance_with_logged_probabilities_and_the_estimate(
    runtime: Runtime, endpoint: str
) -> None:
    """With class probabilities in the log: ROC AUC and log loss on the labelled rows
    (as scikit-learn computes them), and the confidence-based estimate over the whole
    window, valid when the labelled rows show the probabilities are calibrated."""
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(3)
    n = 2000
    p1 = rng.uniform(0.02, 0.98, n)
    truth = (rng.uniform(size=n) < p1).astype(int)  # calibrated by construction
    preds = (p1 >= 0.5).astype(int).tolist()
    frame = _frame(n, seed=9)
    svc = _service(runtime, Clock())
    ids = _log(
        runtime,
        frame,
        start_ms=_now_ms() - 60_000,
        predictions=preds,
        probabilities=p1.tolist(),
    )
    labelled = n // 2
    store = runtime.serving.store
    for i, rid in enumerate(ids[:labelled]):
        store.add_feedback(endpoint, rid, [int(truth[i])])
    svc.create("perf-proba", endpoint=endpoint, checks=["performance"])
    run = svc.run("perf-proba")
    by = {r.metric: r for r in run.results}
    assert by["roc_auc"].value == pytest.approx(roc_auc_score(truth[:labelled], p1[:labelled]))
    assert by["log_loss"].value == pytest.approx(log_loss(truth[:labelled], p1[:labelled]))
    est = by["estimated_accuracy"]
    assert est.rows == n and est.details["labelled"] == labelled
    assert est.details["valid"] is True, est.details
    expected = float(np.maximum(p1, 1 - p1).mean())
    assert est.value == pytest.approx(expected, abs=0.02)
    # ... and the estimate is close to what the labels say once they are all in
    realised = float(np.mean(np.array(preds) == truth))
    assert abs(est.value - realised) < 0.03
    assert "estimated_roc_auc" in by


def test_multivariate_check_tells_a_changed_joint_distribution_apart(
    runtime: Runtime, endpoint: str
) -> None:
    """The domain classifier against the previous window: quiet when both hours come
    from one distribution; an alert, naming the features that separate them, when the
    relation between age and income flips while each column's own distribution stays
    (drift no single column shows)."""
    svc = _service(runtime, Clock())
    before = _frame(600, seed=11)
    _log(runtime, before, start_ms=_now_ms() - 2 * HOUR_MS + 1)
    _log(runtime, _frame(600, seed=12), start_ms=_now_ms() - HOUR_MS + 1)
    svc.create("joint", endpoint=endpoint, checks=["multivariate", "feature_drift"], window="1h")
    quiet = svc.run("joint")
    (auc,) = [r for r in quiet.results if r.metric == "domain_auc"]
    assert not auc.breached and auc.value is not None and auc.value < 0.6, auc

    # the next hour: income now falls with age instead of being unrelated to it; the
    # marginals are the previous hour's own values, reshuffled
    later = _frame(600, seed=13)
    ranks = later["age"].rank(method="first").astype(int) - 1
    later["income"] = sorted(later["income"], reverse=True)
    later["income"] = [later["income"].iloc[r] for r in ranks]
    _log(runtime, later, start_ms=_now_ms() + 1)
    run = svc.run("joint", now=_now_ms() + HOUR_MS)
    (auc,) = [r for r in run.results if r.metric == "domain_auc"]
    assert auc.breached and auc.value is not None and auc.value > 0.7, auc
    assert set(auc.details["top_features"][:2]) == {"age", "income"}
    assert [a.metric for a in run.alerts] == ["domain_auc"]  # no single column alerts
