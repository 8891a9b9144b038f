"""Tracking speed: Milepost against MLflow, measured in the same run on the same machine.

Run it from the repository root::

    .venv/bin/python benchmarks/tracking.py           # full sizes, a few minutes
    .venv/bin/python benchmarks/tracking.py --quick   # smaller sizes, under a minute

What is measured (both tools on SQLite, each in a fresh temporary directory, each in its
own Python process, one after the other so they never compete for the two cores):

``log_metric``
    One metric logged in a loop inside a run, calls per second as the caller sees them.
    MLflow's ``mlflow.log_metric`` is synchronous, so each call is durable when it
    returns. Milepost's call only queues the value, so its clock stops after
    ``milepost.flush()``, when every value is committed. Target: >= 100x MLflow.
``log_batch``
    1,000 metrics per call, one step per call, values per second:
    ``MlflowClient().log_batch`` against ``milepost.log_metrics`` followed by
    ``milepost.flush()`` (inside the timing). Target: >= 4x MLflow.
``run creation``
    Start a run, log one param, end it; runs per second. Target: >= 5x MLflow.
``search_runs``
    ``metrics.accuracy > 0.5 AND params.model = 'gbm'`` ordered by ``metrics.accuracy
    DESC``, top 100, over 100,000 runs in one experiment; the median of 10 searches
    after one warm-up. Creating that many runs through either API would take far too
    long for MLflow, so each tool creates its schema, the experiment and one run through
    its API, and the same generated runs (two metrics, two params, one tag each) are
    then inserted with ``executemany`` into the tool's own tables. Target: <= 50 ms and
    faster than MLflow. Both answers are compared with the expected top 100. A search
    whose warm-up takes over 10 s is timed once, cold, instead: MLflow's takes about two
    minutes at 100,000 runs on SQLite, and ten of them would take half an hour.

After timing, the rows in each ``metrics`` table are counted to show that every logged
value was stored.

MLflow is never installed into Milepost's environment: the first run creates
``benchmarks/.venv-mlflow`` and ``pip install``s MLflow 3 into it, and
``benchmarks/_mlflow_worker.py`` runs there with telemetry disabled. The Milepost half
is this script started again with ``--milepost-worker``.

The table is printed and the numbers are written to ``benchmarks/results/tracking.json``.
A missed target is reported as FAIL; the exit code is 0 all the same (this is a report,
not a test).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_WORKER = HERE / "_mlflow_worker.py"
RESULTS_FILE = HERE / "results" / "tracking.json"

SEARCH_FILTER = "metrics.accuracy > 0.5 AND params.model = 'gbm'"
SEARCH_ORDER = ["metrics.accuracy DESC"]
SEARCH_EXPERIMENT = "search"

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "mlflow_metric_calls": 2_000,
        "milepost_metric_calls": 200_000,
        "batch_width": 1_000,
        "mlflow_batches": 20,
        "milepost_batches": 200,
        "mlflow_runs": 300,
        "milepost_runs": 2_000,
        "search_runs": 100_000,
        "search_repetitions": 10,
    },
    "quick": {
        "mlflow_metric_calls": 500,
        "milepost_metric_calls": 50_000,
        "batch_width": 1_000,
        "mlflow_batches": 5,
        "milepost_batches": 50,
        "mlflow_runs": 100,
        "milepost_runs": 500,
        "search_runs": 10_000,
        "search_repetitions": 5,
    },
}

# name, unit, required ratio Milepost/MLflow
THROUGHPUT_TARGETS = [
    ("log_metric", "log_metric loop", "calls/s", 100.0),
    ("log_batch", "log_batch, 1,000 metrics/call", "values/s", 4.0),
    ("runs", "run start + 1 param + end", "runs/s", 5.0),
]
SEARCH_TARGET_MS = 50.0
# A search slower than this is timed once, cold, instead of a warm-up and repetitions.
SEARCH_SLOW_SECONDS = 10.0


# -- the Milepost half (runs in its own process) ----------------------------------------


def _count_rows(db: Path, sql: str, *args: Any) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _milepost_log_metric(db: Path, calls: int) -> dict[str, Any]:
    import milepost

    with milepost.start_run(experiment="log_metric") as run:
        for i in range(10):  # warm-up, another key
            milepost.log_metric("warmup", float(i), step=i)
        milepost.flush()
        start = time.perf_counter()
        for i in range(calls):
            milepost.log_metric("loss", 1.0 / (i + 1), step=i)
        milepost.flush()
        seconds = time.perf_counter() - start
    stored = _count_rows(
        db, "SELECT count(*) FROM metrics WHERE run_id = ? AND key = 'loss'", run.run_id
    )
    return {
        "calls": calls,
        "seconds": seconds,
        "per_second": calls / seconds,
        "rows_stored": stored,
    }


def _milepost_log_batch(db: Path, batches: int, width: int) -> dict[str, Any]:
    import milepost

    keys = [f"m{j:04d}" for j in range(width)]
    with milepost.start_run(experiment="log_batch") as run:
        milepost.log_metrics({"warmup": 0.0}, step=0)
        milepost.flush()
        start = time.perf_counter()
        for step in range(batches):
            milepost.log_metrics({k: step + j * 1e-3 for j, k in enumerate(keys)}, step=step)
        milepost.flush()
        seconds = time.perf_counter() - start
    stored = _count_rows(
        db, "SELECT count(*) FROM metrics WHERE run_id = ? AND key != 'warmup'", run.run_id
    )
    values = batches * width
    return {
        "values": values,
        "seconds": seconds,
        "per_second": values / seconds,
        "rows_stored": stored,
    }


def _milepost_runs(n: int) -> dict[str, Any]:
    import milepost

    for i in range(3):  # warm-up: the first run captures the environment and git state
        with milepost.start_run(experiment="runs"):
            milepost.log_param("i", i)
    start = time.perf_counter()
    for i in range(n):
        with milepost.start_run(experiment="runs"):
            milepost.log_param("i", i)
    seconds = time.perf_counter() - start
    return {"runs": n, "seconds": seconds, "per_second": n / seconds}


def _milepost_bulk_load(db: Path, csv_path: Path) -> int:
    """Create the experiment and one run through the API, then insert the CSV's runs.

    Rows go into Milepost's own tables (runs, metrics, latest_metrics, params, run_tags)
    with ``executemany``, as the tracking store would have written them.
    """
    import milepost

    with milepost.start_run(experiment=SEARCH_EXPERIMENT, run_name="seed") as seed:
        milepost.log_params({"model": "seed", "lr": "0.0"})
        milepost.log_metrics({"accuracy": 0.0, "loss": 1.0})
        milepost.set_tag("team", "seed")
    experiment_id = seed.experiment_id
    user = milepost.get_runtime().settings.actor()
    runs, metrics, latest, params, tags = [], [], [], [], []
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            rid, t = row["run_id"], int(row["start_time"])
            runs.append((rid, experiment_id, rid[:12], "FINISHED", t, t + 1000, user, "active"))
            for key in ("accuracy", "loss"):
                value = float(row[key])
                metrics.append((rid, key, 0, t, value))
                latest.append((rid, key, experiment_id, 0, t, value))
            params += [(rid, "model", row["model"]), (rid, "lr", row["lr"])]
            tags.append((rid, "team", row["team"]))
    with closing(sqlite3.connect(db, timeout=60)) as conn, conn:
        conn.executemany(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time,"
            ' "user", lifecycle_stage) VALUES (?,?,?,?,?,?,?,?)',
            runs,
        )
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (?,?,?,?,?)",
            metrics,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (run_id, key, experiment_id, step, timestamp, value)"
            " VALUES (?,?,?,?,?,?)",
            latest,
        )
        conn.executemany("INSERT INTO params (run_id, key, value) VALUES (?,?,?)", params)
        conn.executemany("INSERT INTO run_tags (run_id, key, value) VALUES (?,?,?)", tags)
    return len(runs)


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


def _milepost_search(
    db: Path, csv_path: Path, repetitions: int, slow_seconds: float
) -> dict[str, Any]:
    import milepost

    start = time.perf_counter()
    loaded = _milepost_bulk_load(db, csv_path)
    load_seconds = time.perf_counter() - start
    print(f"loaded {loaded:,} runs in {load_seconds:.1f} s; searching", flush=True)
    client = milepost.Client()

    def search() -> list[Any]:
        return list(
            client.search_runs(
                SEARCH_EXPERIMENT, filter=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100
            )
        )

    found, times, cold = timed_searches(search, repetitions, slow_seconds)
    median = statistics.median(times) * 1000
    print(f"{len(times)} timed search(es), median {median:,.1f} ms", flush=True)
    return {
        "runs_loaded": loaded,
        "load_seconds": load_seconds,
        "times_ms": [t * 1000 for t in times],
        "median_ms": statistics.median(times) * 1000,
        "single_cold_search": cold,
        "returned": len(found),
        "top_accuracy": [r.metrics["accuracy"] for r in found],
    }


def milepost_worker(config_path: Path) -> None:
    """Run the Milepost half; ``MILEPOST_HOME`` was set by the parent before the import."""
    import milepost

    config = json.loads(config_path.read_text())
    db = Path(os.environ["MILEPOST_HOME"]) / "milepost.db"
    results: dict[str, Any] = {"version": milepost.__version__}
    print("log_metric", flush=True)
    results["log_metric"] = _milepost_log_metric(db, config["milepost_metric_calls"])
    print("log_batch", flush=True)
    results["log_batch"] = _milepost_log_batch(
        db, config["milepost_batches"], config["batch_width"]
    )
    print("run creation", flush=True)
    results["runs"] = _milepost_runs(config["milepost_runs"])
    print("search_runs: bulk-loading", flush=True)
    results["search"] = _milepost_search(
        db, Path(config["search_csv"]), config["search_repetitions"], config["search_slow_seconds"]
    )
    Path(config["out"]).write_text(json.dumps(results))


# -- the driver ---------------------------------------------------------------------------


def ensure_mlflow_venv() -> str:
    """The MLflow venv's python, creating the venv and installing MLflow 3 when missing."""
    python = MLFLOW_VENV / "bin" / "python"
    probe = [str(python), "-c", "import mlflow; print(mlflow.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return str(python)
    print(f"Creating {MLFLOW_VENV} and installing mlflow>=3 (takes a few minutes, once)...")
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "mlflow>=3",
        ],
        check=True,
    )
    return str(python)


def generate_runs(path: Path, n: int, seed: int = 42) -> list[dict[str, Any]]:
    """Write ``n`` random runs as CSV (read by both workers); return them too."""
    rng = random.Random(seed)
    base = 1_700_000_000_000
    rows = []
    for i in range(n):
        accuracy = rng.random()
        rows.append(
            {
                "run_id": f"{rng.getrandbits(128):032x}",
                "start_time": base + i * 1000,
                "accuracy": accuracy,
                "loss": 1.0 - accuracy + rng.random() * 0.1,
                "model": rng.choice(["gbm", "rf", "linear"]),
                "lr": rng.choice(["0.1", "0.01", "0.001"]),
                "team": rng.choice(["red", "green", "blue", "gold"]),
            }
        )
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)  # floats as repr(): exact round trip
    return rows


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any MILEPOST_* or MLFLOW_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILEPOST_", "MLFLOW_"))}
    env.update(extra)
    return env


def run_worker(label: str, cmd: list[str], *, env: dict[str, str], cwd: Path) -> float:
    """Run a worker, echoing its progress lines; returns its wall time in seconds."""
    log_path = cwd / "stderr.log"
    start = time.perf_counter()
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  [{label}] {line.rstrip()}", flush=True)
        code = proc.wait()
    if code != 0:
        tail = log_path.read_text().splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"The {label} worker failed with exit code {code} (stderr above).")
    return time.perf_counter() - start


def expected_top(rows: list[dict[str, Any]], limit: int = 100) -> list[float]:
    """The accuracies the search must return, computed from the generated runs."""
    hits = [r["accuracy"] for r in rows if r["model"] == "gbm" and r["accuracy"] > 0.5]
    return sorted(hits, reverse=True)[:limit]


def evaluate(mp: dict[str, Any], ml: dict[str, Any], expected: list[float]) -> dict[str, Any]:
    """Targets and checks as plain data (what the table shows and the JSON keeps)."""
    benchmarks = []
    for key, label, unit, ratio_needed in THROUGHPUT_TARGETS:
        ratio = mp[key]["per_second"] / ml[key]["per_second"]
        benchmarks.append(
            {
                "name": key,
                "label": label,
                "unit": unit,
                "milepost": mp[key]["per_second"],
                "mlflow": ml[key]["per_second"],
                "ratio": ratio,
                "target": f">= {ratio_needed:g}x MLflow",
                "passed": ratio >= ratio_needed,
            }
        )
    mp_ms, ml_ms = mp["search"]["median_ms"], ml["search"]["median_ms"]
    benchmarks.append(
        {
            "name": "search_runs",
            "label": f"search_runs, {mp['search']['runs_loaded']:,} runs",
            "unit": "ms",
            "milepost": mp_ms,
            "mlflow": ml_ms,
            "ratio": ml_ms / mp_ms,
            "target": f"<= {SEARCH_TARGET_MS:g} ms and < MLflow",
            "passed": mp_ms <= SEARCH_TARGET_MS and mp_ms < ml_ms,
        }
    )
    checks = []
    for key, what in (("log_metric", "calls"), ("log_batch", "values")):
        logged, stored = mp[key][what], mp[key]["rows_stored"]
        checks.append(
            {
                "name": f"Milepost {key}: values in the metrics table after flush()",
                "detail": f"{stored:,} of {logged:,}",
                "passed": stored == logged,
            }
        )
        logged, stored = ml[key][what], ml[key]["rows_stored"]
        checks.append(
            {
                "name": f"MLflow {key}: values in the metrics table",
                "detail": f"{stored:,} of {logged:,}",
                "passed": stored == logged,
            }
        )
    counts = (mp["search"]["returned"], ml["search"]["returned"], len(expected))
    checks.append(
        {
            "name": "search_runs: runs returned (Milepost / MLflow / expected)",
            "detail": " / ".join(str(c) for c in counts),
            "passed": len(set(counts)) == 1,
        }
    )
    same = mp["search"]["top_accuracy"] == expected == ml["search"]["top_accuracy"]
    checks.append(
        {
            "name": "search_runs: same accuracies in the same order as expected",
            "detail": f"top {expected[0]:.6f}, 100th {expected[-1]:.6f}" if expected else "-",
            "passed": same,
        }
    )
    notes = [
        f"search_runs timing: Milepost {_how_timed(mp['search'])}; "
        f"MLflow {_how_timed(ml['search'])}."
    ]
    return {"benchmarks": benchmarks, "checks": checks, "notes": notes}


def _how_timed(search: dict[str, Any]) -> str:
    if search["single_cold_search"]:
        return f"one search without warm-up (a search takes over {SEARCH_SLOW_SECONDS:g} s)"
    return f"median of {len(search['times_ms'])} searches after a warm-up"


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.1f} ms" if unit == "ms" else f"{value:,.0f} {unit}"


def report(summary: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    # Wide enough for one line per row when the output goes to a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 132)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]"}
    table = Table(
        title=f"Tracking: Milepost {meta['versions']['milepost']} vs MLflow "
        f"{meta['versions']['mlflow']} (SQLite, {meta['mode']} sizes)"
    )
    table.add_column("Benchmark")
    table.add_column("Milepost", justify="right")
    table.add_column("MLflow", justify="right")
    table.add_column("Milepost advantage", justify="right")
    table.add_column("Target")
    table.add_column("Result", justify="center")
    for b in summary["benchmarks"]:
        table.add_row(
            b["label"],
            _fmt(b["milepost"], b["unit"]),
            _fmt(b["mlflow"], b["unit"]),
            f"{b['ratio']:,.1f}x",
            b["target"],
            verdict[b["passed"]],
        )
    console.print(table)
    checks = Table(title="Checks")
    checks.add_column("Check")
    checks.add_column("Detail", justify="right")
    checks.add_column("Result", justify="center")
    for c in summary["checks"]:
        checks.add_row(c["name"], c["detail"], verdict[c["passed"]])
    console.print(checks)
    for note in summary["notes"]:
        console.print(note)
    met = sum(b["passed"] for b in summary["benchmarks"])
    total = len(summary["benchmarks"])
    colour = "green" if met == total else "red"
    console.print(
        f"[bold {colour}]{met}/{total} targets met[/]; checks passed: "
        f"{sum(c['passed'] for c in summary['checks'])}/{len(summary['checks'])}. "
        f"Sizes: {meta['sizes_text']}. Took {meta['elapsed_seconds']:.0f} s "
        f"(Milepost {meta['worker_seconds']['milepost']:.0f} s, "
        f"MLflow {meta['worker_seconds']['mlflow']:.0f} s, including setup)."
    )
    console.print(f"Results written to {RESULTS_FILE.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--milepost-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.milepost_worker:
        milepost_worker(args.milepost_worker)
        return

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    mlflow_python = ensure_mlflow_venv()
    root = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
    try:
        csv_path = root / "runs.csv"
        expected = expected_top(generate_runs(csv_path, sizes["search_runs"]))
        worker_seconds, raw = {}, {}
        for label in ("mlflow", "milepost"):
            home = root / label
            home.mkdir()
            config = {
                **sizes,
                "search_slow_seconds": SEARCH_SLOW_SECONDS,
                "search_csv": str(csv_path),
                "out": str(home / "results.json"),
            }
            config_path = home / "config.json"
            config_path.write_text(json.dumps(config))
            print(f"{label}: running in {home}", flush=True)
            if label == "mlflow":
                env = clean_env(
                    PATH=f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    VIRTUAL_ENV=str(MLFLOW_VENV),
                    MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
                    MLFLOW_DISABLE_TELEMETRY="true",
                    DO_NOT_TRACK="true",
                    GIT_PYTHON_REFRESH="quiet",
                )
                cmd = [mlflow_python, str(MLFLOW_WORKER), str(config_path)]
            else:
                env = clean_env(MILEPOST_HOME=str(home))
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--milepost-worker",
                    str(config_path),
                ]
            worker_seconds[label] = run_worker(label, cmd, env=env, cwd=home)
            raw[label] = json.loads((home / "results.json").read_text())
    finally:
        if args.keep:
            print(f"Kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    summary = evaluate(raw["milepost"], raw["mlflow"], expected)
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "sizes": sizes,
        "sizes_text": (
            f"log_metric {sizes['milepost_metric_calls']:,} vs {sizes['mlflow_metric_calls']:,}"
            f" calls; log_batch {sizes['milepost_batches']} vs {sizes['mlflow_batches']} calls"
            f" of {sizes['batch_width']:,}; runs {sizes['milepost_runs']:,} vs "
            f"{sizes['mlflow_runs']:,}; search {sizes['search_repetitions']} repetitions"
        ),
        "versions": {
            "milepost": raw["milepost"]["version"],
            "mlflow": raw["mlflow"]["version"],
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "worker_seconds": worker_seconds,
        "elapsed_seconds": time.perf_counter() - started,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2) + "\n")
    report(summary, meta)


if __name__ == "__main__":
    main()
