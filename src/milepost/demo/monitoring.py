"""The demo's monitoring step: a monitor on the live endpoint, a known shift upstream,
labels that arrive late, an alert and a report.

The monitor compares the feature vectors the server actually used (read from the
prediction log in the artifact store) with the reference profile stored with the
Production version when it was logged from its training data, and joins the labels sent
back by request id to the logged predictions. First it runs over traffic like the
training data: nothing to report. Then a price change upstream raises every served
customer's ``monthly_spend`` by half (pushed to the online store, as a stream would), the
server keeps answering with the new values, and the next run flags the shifted features,
stores an alert and writes a self-contained HTML report.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

import milepost
from milepost.demo.data import LABEL
from milepost.demo.serving import ENDPOINT, ModelServer, Traffic
from milepost.errors import MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import pandas as pd
    from rich.console import Console

    from milepost.features import FeatureStore
    from milepost.monitoring.monitors import MonitorRun

__all__ = ["MONITOR", "SHIFT", "WINDOW", "monitor_step"]

MONITOR = "churn-health"
WINDOW = 600  # the newest logged predictions a run looks at
SHIFT = 1.5  # monthly_spend after the upstream price change, times the old value
LABELLED = 0.6  # share of requests whose outcome is known by the time the monitor runs
LOG_TIMEOUT = 60.0
WASSERSTEIN = 0.25  # the monitor's threshold: a shift of 0.25 reference sd


def _wait_for_rows(traffic: Traffic, rows: int) -> None:
    """Send traffic until the prediction log holds ``rows`` answers of this client."""
    svc = milepost.get_runtime().serving
    deadline = time.monotonic() + LOG_TIMEOUT
    while time.monotonic() < deadline:
        stats = svc.stats(ENDPOINT, since_ms=traffic.started_ms)
        if sum(s.requests for s in stats.values()) >= rows:
            return
        time.sleep(0.2)  # the replicas write their log every second
    raise MilepostError(
        f"The prediction log did not reach {rows} requests in {LOG_TIMEOUT:g} s.",
        hint="See the model server's log under the demo home's logs/.",
    )


def _send_labels(server: ModelServer, answers: list[tuple[str, int]], truth: dict[int, int]) -> int:
    """Post the known outcome of the first ``LABELLED`` share of ``answers``
    (request id, customer) as feedback; returns how many were labelled."""
    n = int(len(answers) * LABELLED)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for request_id, customer in answers[:n]:
            body = json.dumps({"request_id": request_id, "labels": [truth[customer]]})
            conn.request(
                "POST",
                f"/v1/endpoints/{ENDPOINT}/feedback",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status not in (200, 201, 202):
                raise MilepostError(f"Feedback was refused ({resp.status}).")
    finally:
        conn.close()
    return n


def _phase(server: ModelServer, customers: list[int], truth: dict[int, int]) -> tuple[Traffic, int]:
    """Live traffic until the log holds a window of it, then labels for part of it."""
    traffic = Traffic(server, customers, record=True)
    try:
        _wait_for_rows(traffic, WINDOW)
    finally:
        traffic.stop()
    _wait_for_rows(traffic, traffic.answered)  # every answer is in the log: labels find it
    return traffic, _send_labels(server, traffic.answers, truth)


def _shift(store: FeatureStore, frame: pd.DataFrame, customers: list[int]) -> int:
    """The upstream price change: a new batch of snapshots of the served customers, now,
    with ``monthly_spend`` times ``SHIFT``, lands in the ``customers`` dataset (a new
    version) and is materialized to the online store; returns the rows it added."""
    import pandas as pd

    latest = frame.sort_values("event_timestamp").groupby("customer_id").tail(1)
    batch = latest[latest["customer_id"].isin(customers)].copy()
    batch["monthly_spend"] = (batch["monthly_spend"] * SHIFT).round(2)
    batch["event_timestamp"] = pd.Timestamp(datetime.now(UTC))
    milepost.data.register(
        "customers",
        pd.concat([frame, batch], ignore_index=True),
        description="after a price change",
    )
    store.materialize_incremental()
    return len(batch)


class _Logged(logging.Handler):
    """What the monitors log while the step runs (shown in order, in the narrative)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _capture_log() -> Iterator[_Logged]:
    logger = logging.getLogger("milepost.monitoring")
    handler, propagate = _Logged(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


#: what the tables show of a run: each feature's deciding method, and the summaries
_COUNTED = {"numeric": "wasserstein", "categorical": "psi"}
_SUMMARIES = {"drifted_share", "accuracy", "roc_auc", "estimated_accuracy"}


def _results_table(console: Console, run: MonitorRun, title: str) -> None:
    table = Table(
        "check",
        "metric",
        "feature",
        "value",
        "threshold",
        "breached",
        title=title,
        title_justify="left",
    )
    for r in run.results:
        watched = r.breached or r.feature in (None, "monthly_spend", "spend_per_ticket")
        shown = (
            r.metric in _SUMMARIES
            if r.feature is None
            else r.metric == _COUNTED.get(str(r.details.get("kind")))
        )
        if not (watched and shown) or (r.check == "prediction_drift" and not r.breached):
            continue
        table.add_row(
            r.check,
            r.metric,
            r.feature or "-",
            "-" if r.value is None else f"{r.value:.3f}",
            "-" if r.threshold is None else f"{r.threshold:g}",
            "yes" if r.breached else "no",
        )
    console.print(table)
    labels = next((r for r in run.results if r.metric == "labelled_share"), None)
    if labels is not None:
        labelled, unlabelled = labels.details.get("labelled"), labels.details.get("unlabelled")
        console.print(
            f"  of the {run.rows:,} predictions in the window, {labelled:,} have their outcome "
            f"and {unlabelled:,} are still unlabelled ({labels.value:.1%} labelled)"
        )


def monitor_step(
    console: Console,
    server: ModelServer,
    store: FeatureStore,
    frame: pd.DataFrame,
    customers: list[int],
    reports: Path,
    *,
    on_monitor: Callable[[Console], None] = lambda console: None,
) -> dict[str, Any]:
    """Create the monitor (then call ``on_monitor``: the demo adds its drift trigger),
    run it over normal traffic, shift the data, run it again."""
    monitors = milepost.get_runtime().monitors
    last = frame.sort_values("event_timestamp").groupby("customer_id")[LABEL].last()
    truth = {int(k): int(v) for k, v in zip(last.index, last.to_numpy(), strict=True)}
    mon = monitors.create(
        MONITOR,
        endpoint=ENDPOINT,
        checks=("feature_drift", "prediction_drift", "performance"),
        window=f"last {WINDOW}",
        schedule="every 5m",
        # a few hundred served customers differ from the training set by up to ~0.2 sd
        # by chance alone: alert on shifts beyond a quarter of the reference's sd
        thresholds={"wasserstein": WASSERSTEIN},
    )
    console.print(
        f"  monitor {mon.name!r} on endpoint {ENDPOINT!r}: {', '.join(mon.checks)} over the "
        f"newest {WINDOW} logged predictions, every 5 minutes (`milepost monitor watch`); "
        "feature drift is measured against the reference profile stored with the "
        f"Production version when it was logged (alert above {WASSERSTEIN:g} sd)"
    )
    on_monitor(console)

    before, labelled = _phase(server, customers, truth)
    with _capture_log() as logged_before:
        run = monitors.run(MONITOR)
    console.print(
        f"  normal traffic: {before.answered:,} requests {before.window()}; outcomes known "
        f"for {labelled:,} of them ({LABELLED:.0%}), sent back by request id"
    )
    _results_table(console, run, f"  run 1 over {run.rows:,} predictions: {run.status}")
    for line in logged_before.lines:
        console.print(f"  logged (milepost.monitoring): {line}", markup=False, soft_wrap=True)

    pushed = _shift(store, frame, customers)
    console.print(
        f"  upstream, a price change: a new batch of the customers dataset with "
        f"monthly_spend x{SHIFT:g} for the {pushed:,} served customers, materialized to the "
        "online store (the server reads it on the next request)"
    )
    after, labelled_after = _phase(server, customers, truth)
    with _capture_log() as logged:
        run2 = monitors.run(MONITOR)
    console.print(
        f"  shifted traffic: {after.answered:,} requests {after.window()}; outcomes known for "
        f"{labelled_after:,} of them"
    )
    _results_table(console, run2, f"  run 2 over {run2.rows:,} predictions: {run2.status}")
    for line in logged.lines:
        console.print(f"  logged (milepost.monitoring): {line}", markup=False, soft_wrap=True)
    reports.mkdir(parents=True, exist_ok=True)
    html, _ = monitors.write_report(reports / f"monitor-{MONITOR}", run2)
    console.print(f"  → {len(run2.alerts)} alerts stored; report: {html}")
    return {
        "runs": [run.status, run2.status],
        "alerts_before": len(run.alerts),
        "alerts": len(run2.alerts),
        "drifted": sorted(
            {r.feature for r in run2.results if r.breached and r.check == "feature_drift"} - {None}
        ),
        "labelled": labelled + labelled_after,
        "report": str(html),
    }
