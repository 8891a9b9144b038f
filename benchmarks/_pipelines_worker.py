"""The Milepost half of ``pipelines.py``: measurements inside one Python process.

``python _pipelines_worker.py TASK CONFIG.json``, with ``MILEPOST_HOME`` set by the driver
to a fresh temporary directory (SQLite metadata, local artifact store) and this folder on
``PYTHONPATH``, so that ``_pipelines_noop`` and ``_pipelines_sweep`` import in the step
worker processes too.

``noop``
    The 10-step no-op pipeline through ``milepost.run_pipeline`` on the local runner: one
    first run (the process's imports, the database's creation, the runner's start-up),
    then ``rounds`` rounds of (recorded ``noop10`` with ``cache=False``; recorded ``noop1``
    with ``cache=False``; fully cached ``noop10``). Every run's status and its steps'
    statuses are kept for the checks; the last recorded run is profiled with cProfile
    once more (not timed) to show where the time goes.
``sweep``
    The 16-trial sweep (``_pipelines_sweep.sweep``) with caching off: on the local runner
    with ``max_workers=1`` (sequential), on the Dask runner letting it start its own
    ``LocalCluster`` of 2 workers on 127.0.0.1 (start-up included), and on the Dask runner
    against a cluster started beforehand (``address=``; the cluster's start-up is timed
    apart), twice: its workers fresh (they import Milepost, scikit-learn and the step
    module on their first task), then warm. And, as a reference for what two processes
    give on this machine, the same 16 fits without Milepost: a loop, then a warm
    ``ProcessPoolExecutor`` of 2. ``OMP_NUM_THREADS=1`` (set by the driver)
    keeps each trial on one core.
``check``
    Counts the recorded runs of a pipeline in an existing home (the CLI's runs): how many
    ran every step, reused every step from the cache, or did something else.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many of the machine's cores were busy on average between two readings
    (every process's work, ours and others')."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total * (os.cpu_count() or 1) if total else 0.0


def _summary(run: Any, seconds: float) -> dict[str, Any]:
    """What the checks and the table need from a finished PipelineRun."""
    statuses: dict[str, int] = {}
    for s in run.steps:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    step_ms = [s.ended_at - s.started_at for s in run.steps if s.started_at and s.ended_at]
    return {
        "run_id": run.run_id,
        "status": run.status,
        "error": run.error,
        "seconds": seconds,
        "recorded_ms": (run.ended_at - run.started_at) if run.ended_at else None,
        "steps": len(run.steps),
        "step_statuses": statuses,
        "step_ms_sum": sum(step_ms),
        "tracked_runs": sum(1 for s in run.steps for link in s.links if link.kind == "run"),
    }


def _timed(pipe: Any, **kwargs: Any) -> dict[str, Any]:
    import milepost

    jiffies = cpu_jiffies()
    start = time.perf_counter()
    run = milepost.run_pipeline(pipe, **kwargs)
    out = _summary(run, time.perf_counter() - start)
    out["busy_cores"] = busy_cores(jiffies, cpu_jiffies())
    return out


def _profile(pipe: Any, top: int = 25) -> list[dict[str, Any]]:
    """cProfile of one recorded run: the functions with the most cumulative time."""
    import milepost

    prof = cProfile.Profile()
    prof.enable()
    milepost.run_pipeline(pipe, cache=False)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({func})",
                "calls": calls,
                "tottime_ms": tottime * 1000,
                "cumtime_ms": cumtime * 1000,
            }
        )
    rows.sort(key=lambda r: r["cumtime_ms"], reverse=True)
    return rows[:top]


def task_noop(config: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    from _pipelines_noop import noop1, noop10

    import milepost

    import_seconds = time.perf_counter() - start
    first = _timed(noop10, cache=False)
    _timed(noop1, cache=False)  # warm noop1's own first-run costs (its import, its records)
    prime = _timed(noop10)  # the cache is filled (or already was, from the runs above)
    recorded, fixed, cached = [], [], []
    for _ in range(config["rounds"]):
        recorded.append(_timed(noop10, cache=False))
        fixed.append(_timed(noop1, cache=False))
        cached.append(_timed(noop10))
    profile = _profile(noop10)
    return {
        "version": milepost.__version__,
        "source": str(Path(milepost.__file__).parent),
        "import_seconds": import_seconds,
        "first": first,
        "prime": prime,
        "recorded": recorded,
        "fixed": fixed,
        "cached": cached,
        "profile": profile,
    }


#: The sweep's runs (a round runs them in this order, or the reverse every other round).
SWEEP_RUNS = ("local_sequential", "dask_own_cluster", "dask_running_cluster", "dask_warm_cluster")


def _sweep_sequential(sweep: Any, params: dict[str, Any], workers: int, one: dict) -> None:
    one["order"].append("local_sequential")
    one["local_sequential"] = _timed(
        sweep, params=params, runner="local", max_workers=1, cache=False
    )


def _sweep_plain(sweep: Any, params: dict[str, Any], workers: int, one: dict) -> None:
    one["order"].append("plain")
    one["plain"] = plain_reference(params["rows"], params["seed"], workers)


def _sweep_own_cluster(sweep: Any, params: dict[str, Any], workers: int, one: dict) -> None:
    one["order"].append("dask_own_cluster")
    one["dask_own_cluster"] = _timed(
        sweep, params=params, runner="dask", max_workers=workers, cache=False
    )


def _sweep_running_cluster(sweep: Any, params: dict[str, Any], workers: int, one: dict) -> None:
    """Start a LocalCluster (timed), run the sweep on it twice (fresh, then warm
    workers), close it (timed)."""
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    client.wait_for_workers(workers)
    one["cluster_start_seconds"] = time.perf_counter() - start
    try:
        for key in ("dask_running_cluster", "dask_warm_cluster"):  # fresh, then warm workers
            one["order"].append(key)
            one[key] = _timed(
                sweep, params=params, runner="dask", address=cluster.scheduler_address, cache=False
            )
    finally:
        start = time.perf_counter()
        client.close()
        cluster.close()
        one["cluster_close_seconds"] = time.perf_counter() - start


def plain_reference(rows: int, seed: int, workers: int) -> dict[str, Any]:
    """The sweep's 16 fits without Milepost: a loop in this process, then a
    ``ProcessPoolExecutor`` of ``workers`` processes (warmed up first: imports done),
    the frame made once. What this machine gives two processes of this work."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from _pipelines_sweep import GRID, fit_args, prepare

    from milepost.pipelines import grid

    data = prepare(rows, seed)  # a step called outside a pipeline is the plain function
    combos = grid(**GRID)
    trials = [
        (data, {k: v[i] for k, v in combos.items()}) for i in range(len(combos["learning_rate"]))
    ]
    fit_args(trials[0])  # imports
    jiffies, start = cpu_jiffies(), time.perf_counter()
    sequential = [fit_args(t) for t in trials]
    out: dict[str, Any] = {
        "sequential_seconds": time.perf_counter() - start,
        "sequential_busy_cores": busy_cores(jiffies, cpu_jiffies()),
    }
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(fit_args, trials[:workers]))  # warm the workers
        jiffies, start = cpu_jiffies(), time.perf_counter()
        parallel = list(pool.map(fit_args, trials))
        out["pool_seconds"] = time.perf_counter() - start
        out["pool_busy_cores"] = busy_cores(jiffies, cpu_jiffies())
    out["same_aucs"] = sequential == parallel
    out["best_auc"] = max(sequential)
    return out


def task_sweep(config: dict[str, Any]) -> dict[str, Any]:
    from _pipelines_noop import noop1
    from _pipelines_sweep import GRID, MAX_ITER, sweep

    import milepost

    # The database's creation and the service's imports are not the sweep's: pay them first.
    _timed(noop1, cache=False)

    params = {"rows": config["rows"], "seed": config["seed"]}
    workers = config["workers"]
    out: dict[str, Any] = {
        "version": milepost.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "grid": GRID,
        "max_iter": MAX_ITER,
        "params": params,
        "rounds": [],
    }
    for index in range(config["rounds"]):
        one: dict[str, Any] = {"order": []}
        parts = [_sweep_sequential, _sweep_own_cluster, _sweep_running_cluster, _sweep_plain]
        if index % 2:  # every other round the other way round, so a drift in load evens out
            parts.reverse()
        for part in parts:
            part(sweep, params, workers, one)
        out["rounds"].append(one)
    run = milepost.get_runtime().pipelines.get_run(out["rounds"][-1]["local_sequential"]["run_id"])
    out["best_auc"] = {}
    for key in SWEEP_RUNS:
        got = milepost.get_runtime().pipelines.get_run(out["rounds"][-1][key]["run_id"])
        out["best_auc"][key] = got.outputs("best")
    out["trial_aucs"] = sorted(
        run.outputs(s.step) for s in run.steps if s.step.startswith("trial[")
    )
    out["median_trial_seconds"] = statistics.median(
        (s.ended_at - s.started_at) / 1000 for s in run.steps if s.step.startswith("trial[")
    )
    return out


def task_check(config: dict[str, Any]) -> dict[str, Any]:
    """The recorded runs of a pipeline in this home (the CLI's runs): how many, and how
    many had every step run, every step reused from the cache, or something else."""
    import milepost

    service = milepost.get_runtime().pipelines
    runs = service.list_runs(config["pipeline"], limit=10_000)
    kinds: dict[str, int] = {}
    for listed in runs:
        run = service.get_run(listed.run_id)
        statuses = {s.status for s in run.steps}
        if run.status != "succeeded":
            kind = run.status
        elif statuses == {"succeeded"}:
            kind = "all steps run"
        elif statuses == {"cached"}:
            kind = "all steps cached"
        else:
            kind = "mixed: " + ", ".join(sorted(statuses))
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"runs": len(runs), "kinds": kinds}


def main() -> None:
    task, config_path = sys.argv[1], Path(sys.argv[2])
    config = json.loads(config_path.read_text())
    result = {"noop": task_noop, "sweep": task_sweep, "check": task_check}[task](config)
    Path(config["out"]).write_text(json.dumps(result, default=str, indent=1))


if __name__ == "__main__":
    main()
