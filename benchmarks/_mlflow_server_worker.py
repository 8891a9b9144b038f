"""The MLflow client half of ``benchmarks/server.py``; runs in ``benchmarks/.venv-mlflow``.

Usage: ``python _mlflow_server_worker.py CONFIG.json``. ``MLFLOW_TRACKING_URI`` points at
an ``mlflow server`` on 127.0.0.1 (its own process, SQLite backend) that the caller
started; the config names the server's SQLite file (for the bulk load and the row
counts), the sizes, the CSV of runs and where to write the results (JSON).

Only the standard library and MLflow are imported: this file runs in MLflow's venv,
which has no Milepost in it.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import statistics
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow

# the harness shared with tracking.py's MLflow worker (same directory, same venv)
from _mlflow_worker import bulk_load, timed_searches
from mlflow.tracking import MlflowClient

SEARCH_FILTER = "metrics.accuracy > 0.5 and params.model = 'gbm'"
SEARCH_ORDER = ["metrics.accuracy DESC"]
#: The page variants the UI benchmark asks for: (name, filter, order_by). The MLflow UI's
#: runs table sends ``attributes.start_time DESC`` when no column is sorted. The slowest
#: comes last: a call that times out keeps a server worker busy after the client gives up.
PAGE_VARIANTS = [
    ("newest", "", ["attributes.start_time DESC"]),
    ("filtered_newest", SEARCH_FILTER, ["attributes.start_time DESC"]),
    ("filtered", SEARCH_FILTER, ["metrics.accuracy DESC"]),
    ("sorted", "", ["metrics.accuracy DESC"]),
]


def say(text: str) -> None:
    print(text, flush=True)


def count_metric_rows(db: Path, run_id: str, key: str) -> int:
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        sql = "SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = ?"
        return int(conn.execute(sql, (run_id, key)).fetchone()[0])


def bench_log_metric(db: Path, calls: int, *, synchronous: bool) -> dict[str, Any]:
    """``mlflow.log_metric`` in a loop over HTTP.

    Synchronous (the default): each call is a request, durable when it returns.
    Asynchronous (``synchronous=False``, MLflow's queue): the clock stops after
    ``mlflow.flush_async_logging()``.
    """
    mlflow.set_experiment("log_metric_sync" if synchronous else "log_metric_async")
    with mlflow.start_run() as run:
        for i in range(10):  # warm-up: the connection pool, another key
            mlflow.log_metric("warmup", float(i), step=i, synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()
        seconds = time.perf_counter() - start
    return {
        "calls": calls,
        "seconds": seconds,
        "per_second": calls / seconds,
        "rows_stored": count_metric_rows(db, run.info.run_id, "loss"),
    }


def bench_search(experiment_id: str, repetitions: int, slow_seconds: float) -> dict[str, Any]:
    """``MlflowClient().search_runs`` over HTTP: filtered, ordered, top 100."""
    client = MlflowClient()

    def search() -> list[Any]:
        return list(
            client.search_runs(
                [experiment_id],
                filter_string=SEARCH_FILTER,
                order_by=SEARCH_ORDER,
                max_results=100,
            )
        )

    found, times, cold = timed_searches(search, repetitions, slow_seconds)
    say(f"search_runs: {len(times)} timing(s), median {statistics.median(times) * 1000:,.1f} ms")
    return {
        "times_ms": [t * 1000 for t in times],
        "median_ms": statistics.median(times) * 1000,
        "single_cold_search": cold,
        "returned": len(found),
        "top_accuracy": [r.data.metrics["accuracy"] for r in found],
    }


def page_request(
    host: str, port: int, body: bytes, timeout: float
) -> tuple[float, float, int, bytes]:
    """POST the UI's runs search on a fresh connection: (first byte s, total s, status, body).

    The clock starts before connecting; the first byte is when the status line and
    headers have arrived (``getresponse`` returns), the total when the body is read.
    """
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/api/2.0/mlflow/runs/search",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        first = time.perf_counter() - start
        payload = response.read()
        return first, time.perf_counter() - start, response.status, payload
    finally:
        conn.close()


def bench_pages(
    experiment_id: str, repetitions: int, slow_seconds: float, timeout: float
) -> dict[str, Any]:
    """The MLflow UI's own call for one page of 100 runs, per variant.

    A call that has no answer after ``timeout`` seconds is recorded as timed out (its
    first byte as the timeout: a lower bound) and not repeated.
    """
    parts = urlsplit(os.environ["MLFLOW_TRACKING_URI"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    out: dict[str, Any] = {}
    for name, filter_string, order_by in PAGE_VARIANTS:
        body = json.dumps(
            {
                "experiment_ids": [experiment_id],
                "filter": filter_string,
                "run_view_type": "ACTIVE_ONLY",
                "max_results": 100,
                "order_by": order_by,
            }
        ).encode()
        answers: list[tuple[float, float, int, bytes]] = []

        def call(body: bytes = body, answers: list[Any] = answers) -> None:
            answers.append(page_request(host, port, body, timeout=timeout))

        try:
            _, _, cold = timed_searches(call, repetitions, slow_seconds)
        except TimeoutError:
            out[name] = {
                "first_byte_ms": [timeout * 1000],
                "total_ms": [timeout * 1000],
                "median_first_byte_ms": timeout * 1000,
                "median_total_ms": timeout * 1000,
                "single_cold": True,
                "timed_out": True,
                "status": 0,
                "rows": 0,
                "run_names": [],
                "bytes": 0,
            }
            say(f"UI page {name}: no answer in {timeout:g} s (timed out)")
            continue
        kept = answers[-1:] if cold else answers[1:]
        status, payload = kept[-1][2], kept[-1][3]
        runs = json.loads(payload).get("runs", []) if status == 200 else []
        first = [a[0] * 1000 for a in kept]
        out[name] = {
            "first_byte_ms": first,
            "total_ms": [a[1] * 1000 for a in kept],
            "median_first_byte_ms": statistics.median(first),
            "median_total_ms": statistics.median(a[1] * 1000 for a in kept),
            "single_cold": cold,
            "timed_out": False,
            "status": status,
            "rows": len(runs),
            "run_names": [r["info"].get("run_name") for r in runs],
            "bytes": len(payload),
        }
        say(f"UI page {name}: first byte {statistics.median(first):,.1f} ms, {len(runs)} rows")
    return out


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    db = Path(config["db"])
    results: dict[str, Any] = {"version": mlflow.__version__}
    say("log_metric (synchronous, the default)")
    results["log_metric"] = bench_log_metric(db, config["metric_calls"], synchronous=True)
    say(f"  {results['log_metric']['per_second']:,.0f} calls/s")
    say("log_metric (synchronous=False)")
    results["log_metric_async"] = bench_log_metric(db, config["metric_calls"], synchronous=False)
    say(f"  {results['log_metric_async']['per_second']:,.0f} calls/s")
    say("bulk-loading runs")
    start = time.perf_counter()
    experiment_id, loaded = bulk_load(Path(config["search_csv"]), db)
    results["runs_loaded"] = loaded
    results["load_seconds"] = time.perf_counter() - start
    say(f"loaded {loaded:,} runs in {results['load_seconds']:.1f} s")
    results["search"] = bench_search(
        experiment_id, config["search_repetitions"], config["slow_seconds"]
    )
    results["pages"] = bench_pages(
        experiment_id, config["page_repetitions"], config["slow_seconds"], config["page_timeout"]
    )
    Path(config["out"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
