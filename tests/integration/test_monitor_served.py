"""Issue 13's "done when": a monitor runs on its schedule against a served endpoint with two
replicas, reading the prediction log from the artifact store, and alerts.

Real parts only: ``milepost endpoints serve --replicas 2`` in a subprocess, its log
segments written to an S3 artifact store (moto on 127.0.0.1), clients on several keep-alive
connections; the monitor runs on another "host" (its own home, the same metadata database
and bucket, so it can only see the log through S3), at its schedule's slots (``run_due``
at the next slot time: the schedule is honoured without waiting for the wall clock).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import milepost
from milepost.demo.serving import ModelServer
from tests._wait import wait_until
from tests.contract.conftest import FEATURES

pytestmark = [pytest.mark.slow, pytest.mark.s3]

EP = "churn-ep"
PHASE = 240  # requests per phase; the monitor's window is the newest PHASE predictions


def _send(url: str, rows: list[dict[str, Any]], clients: int = 4) -> list[str]:
    """One row per request, ``clients`` keep-alive connections at once; the request ids."""
    ids: list[str] = []
    lock = threading.Lock()

    def work(part: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=30) as client:
            for row in part:
                r = client.post(f"{url}/v1/endpoints/{EP}/predict", json={"rows": [row]})
                r.raise_for_status()
                with lock:
                    ids.append(r.json()["request_id"])

    threads = [threading.Thread(target=work, args=(rows[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(rows)
    return ids


def _feedback(url: str, labelled: list[tuple[str, Any]], clients: int = 4) -> None:
    """Post one label per request id over ``clients`` keep-alive connections at once; each
    answer must be a 200."""
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def work(part: list[tuple[str, Any]]) -> None:
        with httpx.Client(timeout=30) as client:
            for rid, label in part:
                r = client.post(
                    f"{url}/v1/endpoints/{EP}/feedback",
                    json={"request_id": rid, "labels": [int(label)]},
                )
                with lock:
                    answers.append(r)

    threads = [threading.Thread(target=work, args=(labelled[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(labelled)
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers][:3]


def test_a_scheduled_monitor_reads_two_replicas_log_from_s3_and_alerts(
    tmp_path: Path,
    s3_server: dict[str, Any],
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> None:
    shared = {
        "metadata_uri": f"sqlite:///{(tmp_path / 'meta.db').as_posix()}",
        "artifact_uri": f"s3://{s3_server['bucket']}/served-{tmp_path.name}",
        "s3_endpoint_url": s3_server["endpoint_url"],
    }
    rt = milepost.configure(home=tmp_path / "serving-host", **shared)
    train = churn_frame[FEATURES].iloc[:2000]
    with milepost.start_run(experiment="monitoring"):
        version = milepost.log_model(
            churn_models["good"], "churn", input_example=train.head(3), training_data=train
        )
    assert version.has_profile
    rt.serving.create(EP, "churn", version=1, replicas=2)
    server = ModelServer(EP, replicas=2, log_dir=tmp_path / "logs")
    try:
        normal = churn_frame[FEATURES].iloc[2000 : 2000 + PHASE].to_dict("records")
        shifted = churn_frame[FEATURES].iloc[2000 + PHASE : 2000 + 2 * PHASE].copy()
        shifted["monthly_spend"] = shifted["monthly_spend"] * 1.6
        first = _send(server.url, normal)

        # the monitoring host: its own home; the log reaches it only through S3
        monitor_rt = milepost.Runtime.open(cwd=tmp_path, home=tmp_path / "monitor-host", **shared)
        monitors = monitor_rt.monitors
        monitors.create(
            "served",
            endpoint=EP,
            checks=("feature_drift", "performance"),
            window=f"last {PHASE}",
            schedule="*/5 * * * *",
            thresholds={"wasserstein": 0.25},
        )
        logged = rt.serving.store
        wait_until(
            lambda: sum(s.requests for s in rt.serving.stats(EP, since_ms=0).values()) >= PHASE,
            what="both replicas' log rows to reach the store",
            timeout=60,
        )
        locations = logged.segments(EP)
        assert locations and all(p.startswith("s3://") for p in locations), locations

        slot = monitors.next_run("served")
        assert slot is not None and slot % 300_000 == 0  # a */5 slot
        assert monitors.run_due(slot - 1) == []  # not due before its slot
        (run1,) = monitors.run_due(slot)
        assert monitors.run_due(slot) == []  # each slot runs once
        assert run1.rows == PHASE and run1.alerts == [], run1.results
        compared = {r.feature for r in run1.results if r.check == "feature_drift" and r.feature}
        assert set(FEATURES) <= compared

        # labels for half of the first phase's requests arrive late, by request id
        labels = churn_frame["churned"].iloc[2000 : 2000 + PHASE // 2]
        _feedback(server.url, list(zip(first[: PHASE // 2], labels, strict=True)))

        _send(server.url, shifted.to_dict("records"))
        wait_until(
            lambda: sum(s.requests for s in rt.serving.stats(EP, since_ms=0).values()) >= 2 * PHASE,
            what="the shifted phase in the log",
            timeout=60,
        )
        slot2 = monitors.next_run("served")
        assert slot2 is not None and slot2 > slot
        (run2,) = monitors.run_due(slot2)
        assert run2.rows == PHASE
        flagged = {(a.check, a.metric, a.feature) for a in run2.alerts}
        assert ("feature_drift", "wasserstein", "monthly_spend") in flagged, run2.results
        stored = monitors.alerts("served")
        assert {a.feature for a in stored} == {a.feature for a in run2.alerts}
        html, js = monitors.write_report(tmp_path / "report", run2)
        assert html.stat().st_size > 0 and "monthly_spend" in js.read_text()
        monitor_rt.close()
    finally:
        server.stop()
        milepost.reset()
