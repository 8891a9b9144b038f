"""Platform server speed: remote Milepost against MLflow's tracking server, in one run.

Run it from the repository root::

    .venv/bin/python benchmarks/server.py           # 100,000 runs, about 15 minutes
    .venv/bin/python benchmarks/server.py --quick   # 10,000 runs, about 5 minutes

Each tool runs as a real server in its own process on 127.0.0.1 over a fresh SQLite
store: ``milepost server`` (one worker, tokens required, the default) and ``mlflow server``
(its defaults: uvicorn, 4 workers). The clients are separate processes. The tools run one
after the other, never at the same time.

``log_metric`` over HTTP
    One metric logged in a loop inside a run, calls per second as the caller sees them,
    the same number of calls for both (5,000; 2,000 with ``--quick``). Milepost's client
    (``MILEPOST_URL`` and ``MILEPOST_TOKEN`` set) queues each value and sends batches; its
    clock stops when ``milepost.flush()`` returns, when every value is committed on the
    server (median of 5 runs, 3 with ``--quick``). MLflow's ``mlflow.log_metric`` is
    synchronous by default, one request per call, durable when it returns. Its opt-in
    asynchronous mode (``synchronous=False``, timed up to ``mlflow.flush_async_logging()``)
    is shown for reference. Target: >= 100x MLflow's default. The ``metrics`` tables are
    counted.
``search_runs`` over 100,000 runs
    ``metrics.accuracy > 0.5 AND params.model = 'gbm'`` ordered by ``metrics.accuracy
    DESC``, top 100 (as ``benchmarks/tracking.py``), median of 10 after a warm-up:
    ``milepost.Client().search_runs`` remote (over the server) and embedded (straight on
    the same store, in another process while the server runs), and MLflow's
    ``MlflowClient().search_runs`` through its server. Target: remote <= 2x embedded.
    The runs are generated once and inserted with ``executemany`` into each tool's own
    tables after the tool has created its schema, the experiment and one run through its
    API (no tool has a bulk API for runs; creating 100,000 through MLflow's server would
    take hours). A search slower than 10 s is timed once, cold.
The runs page of the web UI
    Time to first byte of one page (a fresh connection; the clock starts before
    connecting and stops when the status line and headers have arrived) for the
    experiment's 100,000 runs: newest first, filtered (newest first), filtered and sorted
    by a metric, and sorted by a metric.
    Milepost: the UI's HTML page (server-side paging, sort and filter). MLflow: the call
    its UI makes for the same table, ``POST /api/2.0/mlflow/runs/search`` with
    ``max_results=100`` (JSON only, before the browser renders anything).
    Target: <= 100 ms for each Milepost page.

CPU use by other processes during each phase (busy CPU time not spent by this script
or its children, in CPUs), CPU steal (from ``/proc/stat``) and the load average are
recorded per phase and printed with the table: on a shared machine they say how much to
trust the figures.

MLflow is never installed into Milepost's environment: the first run creates
``benchmarks/.venv-mlflow`` (shared with ``tracking.py``); ``_mlflow_server_worker.py``
is the MLflow client there, with telemetry disabled. The Milepost clients are this
script started again with ``--milepost-worker``.

The table is printed and the numbers are written to ``benchmarks/results/server.json``
(``server-quick.json`` with ``--quick``). A missed target is reported as FAIL; the exit
code is 0 all the same (this is a report, not a test).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

from tracking import clean_env, ensure_mlflow_venv, expected_top, generate_runs, run_worker

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_WORKER = HERE / "_mlflow_server_worker.py"
RESULTS_FILE = HERE / "results" / "server.json"
QUICK_RESULTS_FILE = HERE / "results" / "server-quick.json"

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "metric_calls": 5_000,
        "milepost_metric_repeats": 5,
        "search_runs": 100_000,
        "search_repetitions": 10,
        "page_repetitions": 20,
    },
    "quick": {
        "metric_calls": 2_000,
        "milepost_metric_repeats": 3,
        "search_runs": 10_000,
        "search_repetitions": 5,
        "page_repetitions": 10,
    },
}
LOG_METRIC_RATIO = 100.0  # Milepost remote / MLflow server, calls per second
REMOTE_SEARCH_RATIO = 2.0  # Milepost remote / embedded search time
PAGE_TARGET_MS = 100.0  # first byte of the UI's runs page
SLOW_SECONDS = 10.0  # a call slower than this is timed once, cold
STARTUP_TIMEOUT = 120.0
SEARCH_EXPERIMENT = "search"
SEARCH_FILTER = "metrics.accuracy > 0.5 AND params.model = 'gbm'"
SEARCH_ORDER = ["metrics.accuracy DESC"]
#: The UI page variants: name -> (filter, order_by), as the page's query string takes them.
PAGE_VARIANTS: dict[str, tuple[str, str]] = {
    "newest": ("", ""),
    "filtered_newest": (SEARCH_FILTER, ""),
    "filtered": (SEARCH_FILTER, "metrics.accuracy DESC"),
    "sorted": ("", "metrics.accuracy DESC"),
}
PAGE_LABELS = {
    "newest": "newest first",
    "filtered_newest": "filtered, newest first",
    "filtered": "filter + sort (as search_runs)",
    "sorted": "sorted by metrics.accuracy",
}
#: MLflow's page call is abandoned after this long (its metric sort grows quadratically).
PAGE_TIMEOUT_SECONDS = 120.0
FOREIGN_CPU_WARN = 0.15  # CPUs used by other processes during a phase


# -- the machine -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """CPU counters at one moment: the machine's (``/proc/stat``) and this process's."""

    at: float
    busy: float  # CPU seconds not idle nor waiting for I/O, every CPU, since boot
    steal: float  # CPU seconds the hypervisor gave to other guests
    total: float
    mine: float  # this process
    load: float

    @classmethod
    def take(cls) -> Sample:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        me = os.times()
        return cls(
            at=time.perf_counter(),
            busy=(sum(fields) - fields[3] - fields[4]) / _TICK,
            steal=fields[7] / _TICK,
            total=sum(fields) / _TICK,
            mine=me.user + me.system,
            load=os.getloadavg()[0],
        )


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_cpu(pgid: int) -> float:
    """CPU seconds of the live processes of a process group, and of their waited-for
    children: a server's workers, read before it stops (orphans are reaped by init, and
    their time would never reach this process's ``RUSAGE_CHILDREN``)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / _TICK


class Meter:
    """The CPU a phase's own processes (clients, servers) use, to tell it from other work."""

    def __init__(self) -> None:
        self.before = Sample.take()
        self.cpu = 0.0

    def worker(self, label: str, cmd: list[str], *, env: dict[str, str], cwd: Path) -> float:
        """Run a client process to its end; its wall time in seconds."""
        start = _children_cpu()
        seconds = run_worker(label, cmd, env=env, cwd=cwd)
        self.cpu += _children_cpu() - start
        return seconds

    def result(self) -> dict[str, float]:
        """What else the machine did during the phase."""
        before, after = self.before, Sample.take()
        wall = max(after.at - before.at, 1e-9)
        other = after.busy - before.busy - (after.mine - before.mine) - self.cpu
        return {
            "seconds": wall,
            "own_cpu": (self.cpu + after.mine - before.mine) / wall,  # in CPUs
            "foreign_cpu": max(0.0, other / wall),  # in CPUs (of os.cpu_count())
            "steal_share": (after.steal - before.steal) / max(after.total - before.total, 1e-9),
            "load_start": before.load,
            "load_end": after.load,
        }


# -- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def serving(
    label: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    port: int,
    ready: str,
    meter: Meter,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own session, wait until ``ready`` answers 200, stop it after
    (its CPU time goes to ``meter``)."""
    log = (cwd / f"{label}-server.log").open("w")
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = (cwd / f"{label}-server.log").read_text().splitlines()[-30:]
                raise SystemExit(f"The {label} server exited:\n" + "\n".join(tail))
            with contextlib.suppress(OSError):
                if http_get(port, ready)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"The {label} server did not answer {ready} in time.")
            time.sleep(0.1)
        print(f"  [{label}] server ready on 127.0.0.1:{port} (pid {proc.pid})", flush=True)
        yield proc
    finally:
        meter.cpu += group_cpu(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers, by group id
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# -- the Milepost clients (this script again, with --milepost-worker) -------------------


def _count_metrics(db: Path, run_id: str, key: str) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
        sql = "SELECT count(*) FROM metrics WHERE run_id = ? AND key = ?"
        return int(conn.execute(sql, (run_id, key)).fetchone()[0])


def _timed(call: Any, repetitions: int) -> tuple[Any, list[float], bool]:
    """One warm-up call, then ``repetitions`` timed ones: (last answer, seconds, cold)."""
    start = time.perf_counter()
    answer = call()
    first = time.perf_counter() - start
    if first > SLOW_SECONDS:
        return answer, [first], True
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        answer = call()
        times.append(time.perf_counter() - start)
    return answer, times, False


def _search(repetitions: int) -> dict[str, Any]:
    import milepost

    client = milepost.Client()

    def search() -> list[Any]:
        return list(
            client.search_runs(
                SEARCH_EXPERIMENT, filter=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100
            )
        )

    found, times, cold = _timed(search, repetitions)
    median = statistics.median(times) * 1000
    print(f"search_runs: {len(times)} timing(s), median {median:,.1f} ms", flush=True)
    return {
        "times_ms": [t * 1000 for t in times],
        "median_ms": median,
        "single_cold_search": cold,
        "returned": len(found),
        "top_accuracy": [r.metrics["accuracy"] for r in found],
    }


def _log_metric(db: Path, calls: int, repeats: int) -> dict[str, Any]:
    import milepost

    rounds = []
    for r in range(repeats):
        with milepost.start_run(experiment="log_metric") as run:
            for i in range(10):  # warm-up: the connection, another key
                milepost.log_metric("warmup", float(i), step=i)
            milepost.flush()
            start = time.perf_counter()
            for i in range(calls):
                milepost.log_metric("loss", 1.0 / (i + 1), step=i)
            milepost.flush()
            seconds = time.perf_counter() - start
        stored = _count_metrics(db, run.run_id, "loss")
        rounds.append({"seconds": seconds, "per_second": calls / seconds, "rows_stored": stored})
        print(f"log_metric round {r + 1}: {calls / seconds:,.0f} calls/s", flush=True)
    return {
        "calls": calls,
        "rounds": rounds,
        "per_second": statistics.median(x["per_second"] for x in rounds),
        "rows_stored": min(x["rows_stored"] for x in rounds),
    }


def _page(port: int, path: str, token: str) -> tuple[float, float, int, bytes]:
    """GET a UI page on a fresh connection: (first byte s, total s, status, body)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        # As a logged-in browser sends it: the session cookie (the token).
        conn.request("GET", path, headers={"Cookie": f"milepost_session={token}"})
        response = conn.getresponse()
        first = time.perf_counter() - start
        payload = response.read()
        return first, time.perf_counter() - start, response.status, payload
    finally:
        conn.close()


def page_path(experiment_id: int | str, variant: str) -> str:
    """The UI's runs page of an experiment: 100 runs (MLflow's page), filtered and sorted."""
    filter_text, order = PAGE_VARIANTS[variant]
    query = {k: v for k, v in (("filter", filter_text), ("order_by", order)) if v}
    return f"/experiments/{experiment_id}?{urllib.parse.urlencode({**query, 'size': 100})}"


def _pages(config: dict[str, Any]) -> dict[str, Any]:
    port, token = config["port"], config["token"]
    out: dict[str, Any] = {}
    for variant in PAGE_VARIANTS:
        path = page_path(config["experiment_id"], variant)
        answers: list[tuple[float, float, int, bytes]] = []
        call = lambda p=path, got=answers: got.append(_page(port, p, token))  # noqa: E731
        _, _, cold = _timed(call, config["reps"])
        kept = answers[-1:] if cold else answers[1:]
        first = [a[0] * 1000 for a in kept]
        body = kept[-1][3].decode("utf-8", "replace")
        out[variant] = {
            "path": path,
            "first_byte_ms": first,
            "total_ms": [a[1] * 1000 for a in kept],
            "median_first_byte_ms": statistics.median(first),
            "median_total_ms": statistics.median(a[1] * 1000 for a in kept),
            "single_cold": cold,
            "status": kept[-1][2],
            "bytes": len(body),
            "expected_run_shown": config["expect"][variant] in body,
        }
        print(f"UI page {variant}: first byte {statistics.median(first):,.1f} ms", flush=True)
    return out


def milepost_worker(role: str, config_path: Path) -> None:
    """One Milepost client process: ``setup``, ``remote`` or ``embedded``."""
    import milepost

    config = json.loads(config_path.read_text())
    out: dict[str, Any] = {"version": milepost.__version__}
    if role == "setup":  # embedded, before the server starts: a token and the runs
        from tracking import _milepost_bulk_load

        rt = milepost.get_runtime()
        _, out["token"] = rt.tokens.create("bench", "admin")
        start = time.perf_counter()
        out["runs_loaded"] = _milepost_bulk_load(Path(config["db"]), Path(config["search_csv"]))
        out["load_seconds"] = time.perf_counter() - start
        out["experiment_id"] = rt.tracking.get_experiment(SEARCH_EXPERIMENT).experiment_id
        print(f"loaded {out['runs_loaded']:,} runs in {out['load_seconds']:.1f} s", flush=True)
    elif role == "remote":
        if not getattr(milepost.get_runtime(), "remote", False):
            raise SystemExit("MILEPOST_URL is set but milepost did not start in remote mode.")
        out["log_metric"] = _log_metric(
            Path(config["db"]), config["metric_calls"], config["milepost_metric_repeats"]
        )
        out["search"] = _search(config["search_repetitions"])
        out["pages"] = _pages(config)
    else:
        out["search"] = _search(config["search_repetitions"])
    Path(config["out"]).write_text(json.dumps(out))


# -- the driver ------------------------------------------------------------------------


def _worker_cmd(role: str, config_path: Path) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "--milepost-worker", role, str(config_path)]


def _write_config(path: Path, **values: Any) -> Path:
    path.write_text(json.dumps(values))
    return path


def run_mlflow(root: Path, sizes: dict[str, int], csv_path: Path) -> dict[str, Any]:
    """``mlflow server`` over SQLite, and its client in MLflow's venv."""
    python = ensure_mlflow_venv()
    home = root / "mlflow"
    home.mkdir()
    db, port = home / "mlflow.db", free_port()
    mlflow_bin = str(MLFLOW_VENV / "bin" / "mlflow")
    base_env = clean_env(
        PATH=f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(MLFLOW_VENV),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        GIT_PYTHON_REFRESH="quiet",
    )
    base_env.pop("PYTHONPATH", None)
    cmd = [
        mlflow_bin,
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        str(home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    config = _write_config(
        home / "config.json",
        db=str(db),
        search_csv=str(csv_path),
        slow_seconds=SLOW_SECONDS,
        page_timeout=PAGE_TIMEOUT_SECONDS,
        out=str(home / "results.json"),
        **sizes,
    )
    meter = Meter()
    with serving("mlflow", cmd, env=base_env, cwd=home, port=port, ready="/health", meter=meter):
        env = {
            **base_env,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "900",
        }
        worker = [python, str(MLFLOW_WORKER), str(config)]
        seconds = meter.worker("mlflow", worker, env=env, cwd=home)
    out: dict[str, Any] = json.loads((home / "results.json").read_text())
    out["worker_seconds"] = seconds
    out["machine"] = meter.result()
    return out


def run_milepost(
    root: Path, sizes: dict[str, int], csv_path: Path, expect: dict[str, str]
) -> dict[str, Any]:
    """``milepost server`` over SQLite; set-up, remote and embedded clients."""
    home, client_home = root / "milepost", root / "milepost-client"
    home.mkdir()
    client_home.mkdir()
    db, port = home / "milepost.db", free_port()
    store_env = clean_env(MILEPOST_HOME=str(home))
    common = {"db": str(db), "search_csv": str(csv_path), **sizes}
    meter = Meter()
    setup_cfg = _write_config(home / "setup.json", out=str(home / "setup-out.json"), **common)
    meter.worker("milepost setup", _worker_cmd("setup", setup_cfg), env=store_env, cwd=home)
    setup = json.loads((home / "setup-out.json").read_text())
    cmd = [sys.executable, "-m", "milepost", "server", "--host", "127.0.0.1", "--port", str(port)]
    with serving(
        "milepost", cmd, env=store_env, cwd=home, port=port, ready="/api/v1/health", meter=meter
    ):
        remote_cfg = _write_config(
            home / "remote.json",
            out=str(home / "remote-out.json"),
            port=port,
            token=setup["token"],
            experiment_id=setup["experiment_id"],
            reps=sizes["page_repetitions"],
            expect=expect,
            **common,
        )
        remote_env = clean_env(
            MILEPOST_HOME=str(client_home),
            MILEPOST_URL=f"http://127.0.0.1:{port}",
            MILEPOST_TOKEN=setup["token"],
        )
        remote_cmd = _worker_cmd("remote", remote_cfg)
        seconds = meter.worker("milepost remote", remote_cmd, env=remote_env, cwd=client_home)
        embedded_cfg = _write_config(
            home / "embedded.json", out=str(home / "embedded-out.json"), **common
        )
        meter.worker(
            "milepost embedded", _worker_cmd("embedded", embedded_cfg), env=store_env, cwd=home
        )
    out = json.loads((home / "remote-out.json").read_text())
    out["embedded_search"] = json.loads((home / "embedded-out.json").read_text())["search"]
    out["runs_loaded"], out["load_seconds"] = setup["runs_loaded"], setup["load_seconds"]
    out["worker_seconds"] = seconds
    out["machine"] = meter.result()
    return out


def _how(search: dict[str, Any]) -> str:
    if search["single_cold_search"]:
        return f"one cold call (over {SLOW_SECONDS:g} s)"
    return f"median of {len(search['times_ms'])}"


def _speed(ratio: float, *, bound: bool = False) -> str:
    """``ratio`` (theirs / ours, for times) in words; ``bound``: theirs is a lower bound."""
    if ratio >= 1:
        return f"{'> ' if bound else ''}{ratio:,.1f}x faster"
    return f"{1 / ratio:,.1f}x slower"


def evaluate(mp: dict[str, Any], ml: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Targets and checks as plain data (what the table shows and the JSON keeps)."""
    rows: list[dict[str, Any]] = []
    mp_rate, ml_rate = mp["log_metric"]["per_second"], ml["log_metric"]["per_second"]
    rows.append(
        {
            "name": "log_metric",
            "label": f"log_metric over HTTP, {mp['log_metric']['calls']:,} calls (calls/s)",
            "milepost": f"{mp_rate:,.0f}",
            "other": f"{ml_rate:,.0f} (MLflow)",
            "ratio": mp_rate / ml_rate,
            "ratio_text": f"{mp_rate / ml_rate:,.0f}x faster",
            "target": f">= {LOG_METRIC_RATIO:g}x MLflow",
            "passed": mp_rate / ml_rate >= LOG_METRIC_RATIO,
        }
    )
    async_rate = ml["log_metric_async"]["per_second"]
    rows.append(
        {
            "name": "log_metric_vs_async",
            "label": "  same, against MLflow's synchronous=False",
            "milepost": f"{mp_rate:,.0f}",
            "other": f"{async_rate:,.0f} (MLflow async)",
            "ratio": mp_rate / async_rate,
            "ratio_text": f"{mp_rate / async_rate:,.0f}x faster",
            "target": "reference",
            "passed": None,
        }
    )
    remote, embedded = mp["search"]["median_ms"], mp["embedded_search"]["median_ms"]
    runs = mp["runs_loaded"]
    rows.append(
        {
            "name": "search_remote_vs_embedded",
            "label": f"search_runs, {runs:,} runs, remote vs embedded (ms)",
            "milepost": f"{remote:,.1f}",
            "other": f"{embedded:,.1f} (embedded)",
            "ratio": remote / embedded,
            "ratio_text": f"{remote / embedded:,.2f}x embedded",
            "target": f"<= {REMOTE_SEARCH_RATIO:g}x embedded",
            "passed": remote <= REMOTE_SEARCH_RATIO * embedded,
            "lower_is_better": True,
        }
    )
    ml_search = ml["search"]["median_ms"]
    rows.append(
        {
            "name": "search_vs_mlflow",
            "label": f"  same, against MLflow's server, {ml['runs_loaded']:,} runs",
            "milepost": f"{remote:,.1f}",
            "other": f"{ml_search:,.1f} (MLflow)",
            "ratio": remote / ml_search,
            "ratio_text": f"{ml_search / remote:,.0f}x faster",
            "target": "reference",
            "passed": None,
            "lower_is_better": True,
        }
    )
    for variant, label in PAGE_LABELS.items():
        ours, theirs = mp["pages"][variant], ml["pages"][variant]
        first, other = ours["median_first_byte_ms"], theirs["median_first_byte_ms"]
        shown = f"> {other:,.0f} (timed out)" if theirs["timed_out"] else f"{other:,.1f}"
        rows.append(
            {
                "name": f"ui_page_{variant}",
                "label": f"runs page, {runs:,} runs, {label}: first byte (ms)",
                "milepost": f"{first:,.1f}",
                "other": f"{shown} (MLflow API)",
                "ratio": first / other,
                "ratio_text": _speed(other / first, bound=theirs["timed_out"]),
                "target": f"<= {PAGE_TARGET_MS:g} ms",
                "passed": first <= PAGE_TARGET_MS,
                "lower_is_better": True,
            }
        )
    checks = []
    calls = mp["log_metric"]["calls"]
    for who, stored in (
        ("Milepost remote (fewest of its rounds)", mp["log_metric"]["rows_stored"]),
        ("MLflow synchronous", ml["log_metric"]["rows_stored"]),
        ("MLflow synchronous=False", ml["log_metric_async"]["rows_stored"]),
    ):
        checks.append(
            {
                "name": f"log_metric, {who}: values in the metrics table",
                "detail": f"{stored:,} of {calls:,}",
                "passed": stored == calls,
            }
        )
    top = expected["top"]
    for who, search in (
        ("Milepost remote", mp["search"]),
        ("Milepost embedded", mp["embedded_search"]),
        ("MLflow", ml["search"]),
    ):
        checks.append(
            {
                "name": f"search_runs, {who}: the expected top {len(top)}, in order",
                "detail": f"{search['returned']} returned",
                "passed": search["top_accuracy"] == top,
            }
        )
    for variant in PAGE_VARIANTS:
        page, api = mp["pages"][variant], ml["pages"][variant]
        want = expected["pages"][variant]
        checks.append(
            {
                "name": f"runs page {variant}: Milepost's page shows run {want}",
                "detail": f"HTTP {page['status']}, {page['bytes']:,} bytes",
                "passed": page["status"] == 200 and page["expected_run_shown"],
            }
        )
        checks.append(
            {
                "name": f"runs page {variant}: MLflow's answer holds run {want}",
                "detail": "timed out"
                if api["timed_out"]
                else f"HTTP {api['status']}, {api['rows']} runs",
                "passed": None  # nothing to check
                if api["timed_out"]
                else api["status"] == 200 and want in api["run_names"],
            }
        )
    notes = [
        f"search_runs timing: Milepost remote {_how(mp['search'])}, embedded "
        f"{_how(mp['embedded_search'])}, MLflow {_how(ml['search'])}.",
    ]
    cold_pages = [
        v
        for v in PAGE_VARIANTS
        if ml["pages"][v]["single_cold"] and not ml["pages"][v]["timed_out"]
    ]
    late_pages = [v for v in PAGE_VARIANTS if ml["pages"][v]["timed_out"]]
    if late_pages:
        notes.append(
            f"MLflow's page call(s) {', '.join(late_pages)} had no answer after "
            f"{PAGE_TIMEOUT_SECONDS:g} s and were abandoned (the figure is a lower bound)."
        )
    if cold_pages:
        notes.append(
            f"MLflow's page call(s) {', '.join(cold_pages)} took over {SLOW_SECONDS:g} s "
            "and were timed once, cold."
        )
    for who, side in (("Milepost", mp), ("MLflow", ml)):
        m = side["machine"]
        busy = m["foreign_cpu"] > FOREIGN_CPU_WARN
        notes.append(
            f"{who} phase ({m['seconds']:.0f} s): other processes used {m['foreign_cpu']:.2f} "
            f"CPUs, steal {m['steal_share']:.1%}, load {m['load_start']:.1f} -> "
            f"{m['load_end']:.1f}" + (" (BUSY machine: figures disturbed)" if busy else "")
        )
    return {"benchmarks": rows, "checks": checks, "notes": notes}


def report(summary: dict[str, Any], meta: dict[str, Any], results_file: Path) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "-"}
    table = Table(
        title=f"Platform server: Milepost {meta['versions']['milepost']} vs MLflow "
        f"{meta['versions']['mlflow']} servers (SQLite, {meta['mode']} sizes)"
    )
    for column in ("Benchmark", "Milepost", "Compared with", "Milepost is", "Target", "Result"):
        right = column in ("Milepost", "Compared with", "Milepost is")
        table.add_column(column, justify="right" if right else "left")
    for b in summary["benchmarks"]:
        table.add_row(
            b["label"],
            b["milepost"],
            b["other"],
            b["ratio_text"],
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
    targets = [b for b in summary["benchmarks"] if b["passed"] is not None]
    met = sum(b["passed"] for b in targets)
    colour = "green" if met == len(targets) else "red"
    console.print(
        f"[bold {colour}]{met}/{len(targets)} targets met[/]; checks passed: "
        f"{sum(c['passed'] is True for c in summary['checks'])}/"
        f"{sum(c['passed'] is not None for c in summary['checks'])}. "
        f"Took {meta['elapsed_seconds']:.0f} s."
    )
    console.print(f"Results written to {results_file.relative_to(HERE.parent)}")


def expectations(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What each answer must hold: the top accuracies, and each page's first run."""
    gbm = [r for r in rows if r["model"] == "gbm" and r["accuracy"] > 0.5]
    return {
        "top": expected_top(rows),
        "pages": {  # a run's name is its id's first 12 characters; pages show one or both
            "newest": rows[-1]["run_id"][:12],  # after the seed run, made last, at "now"
            "filtered_newest": gbm[-1]["run_id"][:12],
            "sorted": max(rows, key=lambda r: r["accuracy"])["run_id"][:12],
            "filtered": max(gbm, key=lambda r: r["accuracy"])["run_id"][:12],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 runs (about 5 minutes)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--only",
        choices=["mlflow", "milepost"],
        help="run one side and print its raw numbers (development; no table)",
    )
    parser.add_argument("--milepost-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.milepost_worker:
        milepost_worker(args.milepost_worker[0], Path(args.milepost_worker[1]))
        return

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    load = os.getloadavg()[0]
    if load > 0.7:
        print(f"Warning: load average {load:.1f}; other work on the machine skews the figures.")
    ensure_mlflow_venv()
    root = Path(tempfile.mkdtemp(prefix="milepost-bench-server-"))
    try:
        csv_path = root / "runs.csv"
        expected = expectations(generate_runs(csv_path, sizes["search_runs"]))
        if args.only:
            side = (
                run_mlflow(root, sizes, csv_path)
                if args.only == "mlflow"
                else run_milepost(root, sizes, csv_path, expected["pages"])
            )
            print(json.dumps(side, indent=2))
            return
        ml = run_mlflow(root, sizes, csv_path)
        mp = run_milepost(root, sizes, csv_path, expected["pages"])
    finally:
        if args.keep:
            print(f"Kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    summary = evaluate(mp, ml, expected)
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "sizes": sizes,
        "versions": {
            "milepost": mp["version"],
            "mlflow": ml["version"],
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load,
        },
        "elapsed_seconds": time.perf_counter() - started,
    }
    results_file = QUICK_RESULTS_FILE if args.quick else RESULTS_FILE
    results_file.parent.mkdir(parents=True, exist_ok=True)
    raw = {"milepost": mp, "mlflow": ml}
    results_file.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2) + "\n")
    report(summary, meta, results_file)


if __name__ == "__main__":
    main()
