"""The MLflow half of ``benchmarks/tracking.py``; runs in ``benchmarks/.venv-mlflow``.

Usage: ``python _mlflow_worker.py CONFIG.json``. The config names the sizes, the CSV of
runs to bulk-load for the search benchmark and where to write the results (JSON).
``MLFLOW_TRACKING_URI`` (a SQLite file in a fresh directory) comes from the environment;
the caller also makes that directory the working directory. Progress goes to stdout,
MLflow's own logging to stderr.

Only the standard library and MLflow are imported: this file runs in MLflow's venv,
which has no Milepost in it.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import statistics
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

if TYPE_CHECKING:
    from collections.abc import Callable

SEARCH_FILTER = "metrics.accuracy > 0.5 and params.model = 'gbm'"
SEARCH_ORDER = ["metrics.accuracy DESC"]


def say(text: str) -> None:
    print(text, flush=True)


def db_path() -> Path:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    return Path(uri.removeprefix("sqlite:///"))


def count_metric_rows(run_id: str, key: str | None = None) -> int:
    with closing(sqlite3.connect(db_path())) as conn:
        if key is None:
            sql, args = "SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)
        else:
            sql = "SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = ?"
            args = (run_id, key)
        return int(conn.execute(sql, args).fetchone()[0])


def bench_log_metric(calls: int) -> dict[str, Any]:
    """``mlflow.log_metric`` in a loop (synchronous: durable when each call returns)."""
    mlflow.set_experiment("log_metric")
    with mlflow.start_run() as run:
        for i in range(10):  # warm-up, another key
            mlflow.log_metric("warmup", float(i), step=i)
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        seconds = time.perf_counter() - start
    return {
        "calls": calls,
        "seconds": seconds,
        "per_second": calls / seconds,
        "rows_stored": count_metric_rows(run.info.run_id, "loss"),
    }


def bench_log_batch(batches: int, width: int) -> dict[str, Any]:
    """``MlflowClient().log_batch`` with ``width`` metrics per call, one step per call."""
    mlflow.set_experiment("log_batch")
    client = MlflowClient()
    keys = [f"m{j:04d}" for j in range(width)]
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        client.log_batch(run_id, metrics=[Metric("warmup", 0.0, 0, 0)])
        start = time.perf_counter()
        for step in range(batches):
            ts = int(time.time() * 1000)
            metrics = [Metric(k, step + j * 1e-3, ts, step) for j, k in enumerate(keys)]
            client.log_batch(run_id, metrics=metrics)
        seconds = time.perf_counter() - start
    values = batches * width
    return {
        "values": values,
        "seconds": seconds,
        "per_second": values / seconds,
        "rows_stored": count_metric_rows(run_id) - 1,
    }


def bench_runs(n: int) -> dict[str, Any]:
    """Start and end a run that logs one param."""
    mlflow.set_experiment("runs")
    for i in range(3):  # warm-up
        with mlflow.start_run():
            mlflow.log_param("i", i)
    start = time.perf_counter()
    for i in range(n):
        with mlflow.start_run():
            mlflow.log_param("i", i)
    seconds = time.perf_counter() - start
    return {"runs": n, "seconds": seconds, "per_second": n / seconds}


def timed_searches(
    search: Callable[[], list[Any]], repetitions: int, slow_seconds: float
) -> tuple[list[Any], list[float], bool]:
    """One warm-up search, then ``repetitions`` timed ones: (last answer, seconds, cold).

    A warm-up slower than ``slow_seconds`` is the only timing (``cold`` is then True):
    warming caches is worth milliseconds, and repeating a search that takes minutes
    would make the benchmark take an hour.
    """
    start = time.perf_counter()
    found = search()
    first = time.perf_counter() - start
    if first > slow_seconds:
        return found, [first], True
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        found = search()
        times.append(time.perf_counter() - start)
    return found, times, False


def bulk_load(csv_path: Path, db: Path | None = None) -> tuple[str, int]:
    """Create the experiment and one run through the API, then insert the CSV's runs.

    Rows go into MLflow's own tables (runs, metrics, latest_metrics, params, tags) with
    ``executemany``, as MLflow itself would have written them: into ``db`` (default the
    tracking URI's SQLite file; ``server.py`` passes its server's).
    """
    experiment_id = mlflow.set_experiment("search").experiment_id
    with mlflow.start_run(run_name="seed"):
        mlflow.log_params({"model": "seed", "lr": "0.0"})
        mlflow.log_metrics({"accuracy": 0.0, "loss": 1.0})
        mlflow.set_tag("team", "seed")
    location = MlflowClient().get_experiment(experiment_id).artifact_location
    user = os.environ.get("USER", "bench")
    runs, metrics, latest, params, tags = [], [], [], [], []
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            rid, t = row["run_id"], int(row["start_time"])
            runs.append(
                (
                    rid,
                    rid[:12],
                    "LOCAL",
                    "bulk",
                    "",
                    user,
                    "FINISHED",
                    t,
                    t + 1000,
                    "",
                    "active",
                    f"{location}/{rid}/artifacts",
                    int(experiment_id),
                )
            )
            for key in ("accuracy", "loss"):
                value = float(row[key])
                metrics.append((key, value, t, rid, 0, 0))
                latest.append((key, value, t, 0, 0, rid))
            params += [("model", row["model"], rid), ("lr", row["lr"], rid)]
            tags.append(("team", row["team"], rid))
    with closing(sqlite3.connect(db or db_path(), timeout=60)) as conn, conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,"
            " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
            " artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            runs,
        )
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?,?,?,?,?,?)",
            metrics,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " VALUES (?,?,?,?,?,?)",
            latest,
        )
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    return experiment_id, len(runs)


def bench_search(csv_path: Path, repetitions: int, slow_seconds: float) -> dict[str, Any]:
    """Median latency of one filtered, ordered ``search_runs`` (after one warm-up)."""
    start = time.perf_counter()
    experiment_id, loaded = bulk_load(csv_path)
    load_seconds = time.perf_counter() - start
    say(f"loaded {loaded:,} runs in {load_seconds:.1f} s; searching")
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
    say(f"{len(times)} timed search(es), median {statistics.median(times) * 1000:,.1f} ms")
    return {
        "runs_loaded": loaded,
        "load_seconds": load_seconds,
        "times_ms": [t * 1000 for t in times],
        "median_ms": statistics.median(times) * 1000,
        "single_cold_search": cold,
        "returned": len(found),
        "top_accuracy": [r.data.metrics["accuracy"] for r in found],
    }


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    results: dict[str, Any] = {"version": mlflow.__version__}
    say("log_metric")
    results["log_metric"] = bench_log_metric(config["mlflow_metric_calls"])
    say("log_batch")
    results["log_batch"] = bench_log_batch(config["mlflow_batches"], config["batch_width"])
    say("run creation")
    results["runs"] = bench_runs(config["mlflow_runs"])
    say("search_runs: bulk-loading")
    results["search"] = bench_search(
        Path(config["search_csv"]), config["search_repetitions"], config["search_slow_seconds"]
    )
    Path(config["out"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
