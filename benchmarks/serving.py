"""Model serving speed: ``milepost endpoints serve`` against MLflow, BentoML, FastAPI, bare apps.

Run it from the repository root::

    .venv/bin/python benchmarks/serving.py           # 3 rounds of 10 s runs, about 15 minutes
    .venv/bin/python benchmarks/serving.py --quick   # 1 round of 3 s runs, about 2 minutes
    .venv/bin/python benchmarks/serving.py --keep    # keep the work directory

Every server serves the same fitted scikit-learn pipeline (the demo's ``preprocess``:
``StandardScaler`` on 7 numeric columns and ``OneHotEncoder`` on 3 categorical ones,
before a ``LogisticRegression``), trained once on the demo churn data from
``get_historical_features`` and pickled for the peers. One process (replica, worker)
each, bound to 127.0.0.1, pinned to CPU 0 with ``taskset``; the load generator, wrk with
``_serving/wrk.lua`` (POST bodies cycled from 64 different rows), is pinned to CPU 1.

Servers
    ``milepost``: ``python -m milepost endpoints serve churn-ep --replicas 1``; the version has a
    verified ONNX twin, which the server uses; prediction logging on (the default).
    ``milepost, log off``: the same model on an endpoint created with
    ``log_predictions=False``. ``milepost, onnx=False``: the same pipeline logged without
    ONNX (the server calls the scikit-learn pipeline). ``milepost, feature lookup``: the
    version logged from the run that called ``get_historical_features`` pins 10 feature
    refs, so requests carry only ``customer_id`` and the replica reads the features from
    the SQLite online store. ``mlflow``: ``mlflow models serve --env-manager local -w 1``
    in ``benchmarks/.venv-mlflow``, the pipeline logged with ``mlflow.sklearn.log_model``.
    ``bentoml``: ``bentoml serve`` of a ``@bentoml.service(workers=1)`` class in
    ``benchmarks/.venv-bentoml``. ``fastapi``: a minimal FastAPI app (pydantic body,
    ``pipeline.predict(pd.DataFrame(rows))``) under uvicorn. ``bare``: a raw ASGI callable
    under uvicorn doing the same predict, no framework. ``bare_onnx``: the physical limit
    of Milepost's ONNX path, a raw ASGI callable under uvicorn running the same ONNX twin
    (its bytes from Milepost's artifact store, the same session options) on NumPy arrays
    built straight from the JSON, answering predictions and probabilities, with no
    validation and no logging. FastAPI, bare and bare_onnx run in Milepost's environment
    (same uvicorn, uvloop, httptools, onnxruntime, orjson).

Each round starts every server in turn, times spawn to the first successful prediction
(polling its readiness route, then one predict), checks 16 predictions against the
pipeline's, warms it up with wrk, measures at concurrency 1 (latencies as recorded per
response) and 16 (wrk's percentiles) with one wrk thread,
reads the model process's resident memory from ``/proc``, and stops it (its process
group). Figures are medians over the rounds. A run with any non-2xx answer or socket
error fails its row.

Targets (the rows with PASS/FAIL): at concurrency 1, Milepost's p50 <= 1.5x the bare
app's and <= 1/3 of MLflow's, its p99 <= 3x the bare app's; at concurrency 16 its
throughput >= 4x MLflow's and >= the FastAPI app's; against the bare ONNX peer (same
session, no validation, no logging), with signature enforcement and prediction logging
on: p50 at concurrency 1 <= 1.5x the peer's, throughput at concurrency 16 >= 0.5x; with
the online feature lookup its p50 <= 2x the bare app's (which gets every input in the
request); prediction logging costs <= 10% throughput; spawn to first prediction <= 2 s;
the replica's RSS <= 250 MiB.

The first run creates ``benchmarks/.venv-bentoml`` (BentoML, and this environment's
scikit-learn, numpy and pandas versions); ``benchmarks/.venv-mlflow`` is shared with
``tracking.py`` and ``registry.py``. Work files go to ``benchmarks/.work/serving-*``.
The table is printed and the numbers are written to ``benchmarks/results/serving.json``.
A missed target is reported as FAIL; the exit code is 0 all the same (this is a report,
not a test).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry import _installed, clean_env, ensure_mlflow_venv, run_worker

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "_serving"
WORK_ROOT = HERE / ".work"
MLFLOW_VENV = HERE / ".venv-mlflow"
BENTOML_VENV = HERE / ".venv-bentoml"
RESULTS_FILE = HERE / "results" / "serving.json"
#: --quick runs write here, so they never replace the full run's numbers.
QUICK_RESULTS_FILE = HERE / "results" / "serving-quick.json"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
TASKSET = shutil.which("taskset") or "/usr/bin/taskset"

SERVER_CPU = "0"
CLIENT_CPU = "1"
CONCURRENCY = (1, 16)
STARTUP_TIMEOUT = 120.0

SIZES: dict[str, dict[str, int]] = {
    "full": {"rounds": 3, "seconds": 10, "warmup_seconds": 3},
    "quick": {"rounds": 1, "seconds": 3, "warmup_seconds": 1},
}

P50_VS_BARE = 1.5
P50_VS_MLFLOW = 3.0
P99_VS_BARE = 3.0
RPS_VS_MLFLOW = 4.0
P50_VS_ONNX = 1.5  # against the bare ONNX peer (the physical limit)
RPS_VS_ONNX = 0.5
FEATURES_P50_VS_BARE = 2.0
LOG_COST = 0.10
STARTUP_TARGET_S = 2.0
RSS_TARGET_MIB = 250.0
FOREIGN_CPU_WARN = 0.15  # share of a CPU used by other processes during a round
QUIET_CPU = 0.10  # a round starts once other processes use less than this of a CPU
QUIET_WAIT_SECONDS = 600.0  # ... or after waiting this long
ATTEMPTS = 3  # a round disturbed by other work is measured again, up to this many times


# -- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ppids() -> dict[int, int]:
    """``{pid: parent pid}`` for every process, from ``/proc``."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    parents = _ppids()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def memory_mib(pid: int) -> dict[str, float]:
    """Resident (VmRSS) and proportional (Pss) memory of one process, MiB."""
    out = {"rss": 0.0, "pss": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) / 1024
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1]) / 1024
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


# -- HTTP ------------------------------------------------------------------------------


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    """How to start one server, talk to it and check its answers."""

    key: str
    label: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    predict_path: str
    bodies: list[bytes]
    expected: list[int] | None  # None: the constant answer of the floor server
    parse: Any  # bytes -> list of predictions
    model_process: str  # "child": the supervisor's child (a replica); "largest": max RSS
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def start(self, log_dir: Path) -> float:
        """Spawn (pinned to the server CPU); seconds from spawn to the first prediction."""
        self.port = free_port()
        cmd = [TASKSET, "-c", SERVER_CPU, *[c.replace("{port}", str(self.port)) for c in self.cmd]]
        self.log_path = log_dir / f"{self.key}-{self.port}.log"
        log = self.log_path.open("wb")
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
        log.close()
        deadline = start + STARTUP_TIMEOUT
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {self.tail()}")
            try:
                status, _ = http_call(self.port, "GET", self.ready_path, timeout=10)
                if status == 200:
                    status, _ = http_call(self.port, "POST", self.predict_path, self.bodies[0])
                    if status == 200:
                        return time.perf_counter() - start
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.label} was not ready in {STARTUP_TIMEOUT:.0f} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check(self, n: int) -> dict[str, Any]:
        """Predict ``n`` rows one request each; compare with the pipeline's predictions."""
        got: list[Any] = []
        statuses = []
        for body in self.bodies[:n]:
            status, payload = http_call(self.port, "POST", self.predict_path, body)
            statuses.append(status)
            got.extend(self.parse(payload) if status == 200 else [None])
        expected = self.expected[:n] if self.expected is not None else [0] * n
        return {
            "rows": n,
            "statuses": sorted(set(statuses)),
            "matches": sum(g == e for g, e in zip(got, expected, strict=False)),
            "passed": statuses == [200] * n and got == expected,
        }

    def memory(self) -> dict[str, Any]:
        """The model process's RSS and PSS, and the whole tree's RSS, MiB."""
        assert self.proc is not None
        tree = process_tree(self.proc.pid)
        mem = {pid: memory_mib(pid) for pid in tree}
        if self.model_process == "child":
            candidates = [pid for pid in tree if _ppids().get(pid) == self.proc.pid]
        else:
            candidates = tree
        pid = max(candidates or tree, key=lambda p: mem[p]["rss"])
        return {
            "pid": pid,
            "cmdline": _cmdline(pid)[:160],
            "rss_mib": mem[pid]["rss"],
            "pss_mib": mem[pid]["pss"],
            "processes": len(tree),
            "tree_rss_mib": sum(m["rss"] for m in mem.values()),
        }

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait()
        # stragglers in the group (workers whose parent exited first)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc = None


def wrk(server: Server, bodies_file: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run (one thread, pinned to the client CPU); its JSON summary.

    At concurrency 1 the latency figures are the recorded ones (each response's time
    from request written to response read, see ``_serving/wrk.lua``); wrk's own, which
    add synthetic samples for coordinated omission, are kept as ``wrk_*_us``. At higher
    concurrency they are wrk's.
    """
    latency_file = bodies_file.with_suffix(f".latency-c{connections}.txt")
    cmd = [
        TASKSET,
        "-c",
        CLIENT_CPU,
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(HELPERS / "wrk.lua"),
        f"http://127.0.0.1:{server.port}",
        "--",
        str(bodies_file),
        server.predict_path,
        *([str(latency_file)] if connections == 1 else []),
    ]
    assert server.proc is not None
    tree = process_tree(server.proc.pid)
    busy, served, children = _busy_seconds(), _cpu_seconds(tree), _children_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    used = _cpu_seconds(tree) - served + _children_seconds() - children  # server + wrk
    match = re.search(r"^WRK_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    out: dict[str, Any] = json.loads(match.group(1))
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    out["failed"] = sum(out["errors"].values())
    if connections == 1:
        out.update(_recorded(latency_file, out))
        latency_file.unlink()
    # CPU time the machine spent on anything but this server and wrk, per second of run
    out["foreign_cpu"] = max(0.0, (_busy_seconds() - busy - used) / (out["duration_us"] / 1e6))
    return out


def _recorded(latency_file: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The recorded latencies' figures (one connection), in place of wrk's corrected ones.

    One connection sends one request at a time, so the recorded latencies sum to at most
    the run's duration; wrk's corrected figures do not (``wrk_mean_us`` times the
    request count is often several times the duration).
    """
    values = sorted(float(v) for v in latency_file.read_text().split())
    if not values:
        return {}

    def at(q: float) -> float:  # nearest rank, as wrk's percentile()
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

    total = sum(values)
    if total > run["duration_us"] * 1.01:
        raise RuntimeError(
            f"{len(values)} recorded latencies sum to {total / 1e6:.2f} s, more than the run "
            f"({run['duration_us'] / 1e6:.2f} s) with one connection: the recording is wrong"
        )
    return {
        **{f"wrk_{k}": run[k] for k in ("mean_us", "p50_us", "p90_us", "p99_us", "max_us")},
        "recorded": len(values),
        "mean_us": total / len(values),
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "max_us": values[-1],
    }


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds both CPUs were busy (not idle, not waiting for I/O) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK  # minus idle and iowait


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (those still alive)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _self_seconds() -> float:
    """CPU seconds of this process."""
    times = os.times()
    return times.user + times.system


def _children_seconds() -> float:
    """CPU seconds of this process's waited-for children (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- set-up ------------------------------------------------------------------------------


def ensure_bentoml_venv() -> str:
    """BentoML's python, with this environment's scikit-learn, numpy and pandas versions."""
    ours = _installed(sys.executable, ["sklearn", "numpy", "pandas"])
    assert ours is not None
    python = BENTOML_VENV / "bin" / "python"
    if not python.exists():
        print(f"Creating {BENTOML_VENV} and installing BentoML (a few minutes, once)...")
        subprocess.run([sys.executable, "-m", "venv", str(BENTOML_VENV)], check=True)
    theirs = _installed(str(python), ["bentoml", "sklearn", "numpy", "pandas"])
    if theirs is None or any(theirs[m] != ours[m] for m in ours):
        pins = [f"scikit-learn=={ours['sklearn']}", f"numpy=={ours['numpy']}"]
        pins.append(f"pandas=={ours['pandas']}")
        print(f"Installing bentoml, {', '.join(pins)} into {BENTOML_VENV}...")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "bentoml",
                *pins,
            ],
            check=True,
        )
    return str(python)


def _bodies(items: list[dict[str, Any]], wrap: str) -> list[bytes]:
    return [json.dumps({wrap: [item]}).encode() for item in items]


def _parse_predictions(payload: bytes) -> list[Any]:
    data = json.loads(payload)
    return list(data["predictions"] if isinstance(data, dict) else data)


def build_servers(work: Path, setup: dict[str, Any], mlflow_uri: str) -> list[Server]:
    """Every server, in the order each round runs them."""
    data = json.loads((work / "rows.json").read_text())
    rows, keys = data["rows"], [{"customer_id": k} for k in data["keys"]]
    pipeline = str(work / "pipeline.pkl")
    home = work / "milepost-home"
    mp_env = clean_env(MILEPOST_HOME=str(home))
    py_env = clean_env(
        SERVING_BENCH_PIPELINE=pipeline,
        SERVING_BENCH_ONNX=str(work / "model.onnx"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
    uvicorn += ["--workers", "1", "--no-access-log", "--log-level", "warning"]

    def milepost(key: str, label: str, endpoint: str, *, features: bool = False) -> Server:
        return Server(
            key=key,
            label=label,
            cmd=[
                sys.executable,
                "-m",
                "milepost",
                "endpoints",
                "serve",
                endpoint,
                "--port",
                "{port}",
                "--replicas",
                "1",
            ],
            env=mp_env,
            cwd=work,
            ready_path="/ready",
            predict_path=f"/v1/endpoints/{endpoint}/predict",
            bodies=_bodies(keys if features else rows, "rows"),
            expected=data["key_predictions"] if features else data["predictions"],
            parse=_parse_predictions,
            model_process="child",
        )

    servers = [
        milepost("milepost", "Milepost (ONNX twin, logging on)", "churn-ep"),
        milepost("milepost_nolog", "Milepost, prediction logging off", "churn-nolog"),
        milepost("milepost_sklearn", "Milepost, onnx=False (scikit-learn)", "churn-sklearn"),
        milepost(
            "milepost_features",
            "Milepost, online feature lookup",
            "churn-features",
            features=True,
        )
        if setup["features"]
        else None,
        Server(
            key="mlflow",
            label="MLflow models serve",
            cmd=[
                str(MLFLOW_VENV / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                mlflow_uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
                "-w",
                "1",
            ],
            env=clean_env(
                PATH=f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                VIRTUAL_ENV=str(MLFLOW_VENV),
                MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
                MLFLOW_DISABLE_TELEMETRY="true",
                DO_NOT_TRACK="true",
                GIT_PYTHON_REFRESH="quiet",
            ),
            cwd=work / "mlflow",
            ready_path="/ping",
            predict_path="/invocations",
            bodies=_bodies(rows, "dataframe_records"),
            expected=data["predictions"],
            parse=_parse_predictions,
            model_process="largest",
        ),
        Server(
            key="bentoml",
            label="BentoML serve",
            cmd=[
                str(BENTOML_VENV / "bin" / "bentoml"),
                "serve",
                "bento_service:ChurnService",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            env=clean_env(
                PATH=f"{BENTOML_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                VIRTUAL_ENV=str(BENTOML_VENV),
                BENTOML_HOME=str(work / "bentoml"),
                BENTOML_DO_NOT_TRACK="true",
                DO_NOT_TRACK="true",
                SERVING_BENCH_PIPELINE=pipeline,
                PYTHONDONTWRITEBYTECODE="1",
            ),
            cwd=HELPERS,
            ready_path="/readyz",
            predict_path="/predict",
            bodies=_bodies(rows, "rows"),
            expected=data["predictions"],
            parse=_parse_predictions,
            model_process="largest",
        )
        if setup["bentoml"]
        else None,
        Server(
            key="fastapi",
            label="FastAPI (minimal app, uvicorn)",
            cmd=[*uvicorn, "fastapi_app:app"],
            env=py_env,
            cwd=HELPERS,
            ready_path="/ready",
            predict_path="/predict",
            bodies=_bodies(rows, "rows"),
            expected=data["predictions"],
            parse=_parse_predictions,
            model_process="largest",
        ),
        Server(
            key="bare",
            label="bare ASGI app (uvicorn, no framework)",
            cmd=[*uvicorn, "bare_app:app"],
            env=py_env,
            cwd=HELPERS,
            ready_path="/ready",
            predict_path="/predict",
            bodies=_bodies(rows, "rows"),
            expected=data["predictions"],
            parse=_parse_predictions,
            model_process="largest",
        ),
        Server(
            key="bare_onnx",
            label="bare ASGI app, same ONNX session on NumPy (no checks, no log)",
            cmd=[*uvicorn, "bare_onnx_app:app"],
            env=py_env,
            cwd=HELPERS,
            ready_path="/ready",
            predict_path="/predict",
            bodies=_bodies(rows, "rows"),
            expected=data["predictions"],
            parse=_parse_predictions,
            model_process="largest",
        ),
        Server(
            key="floor",
            label="floor: the bare app answering a constant",
            cmd=[*uvicorn, "bare_app:app"],
            env=py_env,
            cwd=HELPERS,
            ready_path="/ready",
            predict_path="/constant",
            bodies=_bodies(rows, "rows"),
            expected=None,
            parse=_parse_predictions,
            model_process="largest",
        ),
    ]
    return [s for s in servers if s is not None]


def measure_round(
    server: Server, work: Path, sizes: dict[str, int], check_rows: int
) -> dict[str, Any]:
    """Start, check, warm up, measure, stop: one round of one server."""
    bodies_file = work / f"bodies-{server.key}.txt"
    bodies_file.write_bytes(b"\n".join(server.bodies) + b"\n")
    out: dict[str, Any] = {}
    start, busy = time.perf_counter(), _busy_seconds()
    mine = _self_seconds() + _children_seconds()
    try:
        out["startup_s"] = server.start(work / "logs")
        out["check"] = server.check(check_rows)
        out["memory_loaded"] = server.memory()
        wrk(server, bodies_file, max(CONCURRENCY), sizes["warmup_seconds"])
        for c in CONCURRENCY:
            out[f"c{c}"] = wrk(server, bodies_file, c, sizes["seconds"])
        out["memory"] = server.memory()
        out["check_after"] = server.check(check_rows)
        # the whole round, startup included: busy CPU time not spent by the server's
        # processes (since they started), wrk or this script
        assert server.proc is not None
        served = _cpu_seconds(process_tree(server.proc.pid))
        mine = _self_seconds() + _children_seconds() - mine + served
        out["foreign_cpu_round"] = max(
            0.0, (_busy_seconds() - busy - mine) / (time.perf_counter() - start)
        )
    except RuntimeError as exc:
        out["error"] = str(exc)
    finally:
        server.stop()
    return out


def foreign_share(result: dict[str, Any]) -> float:
    """The largest share of a CPU other processes took during a round or one of its runs."""
    shares = [result.get("foreign_cpu_round", 0.0)]
    shares += [result[f"c{c}"].get("foreign_cpu", 0.0) for c in CONCURRENCY if f"c{c}" in result]
    return max(shares)


def wait_for_quiet(limit: float = QUIET_WAIT_SECONDS) -> float:
    """Wait (up to ``limit`` s) until other processes use under 10% of a CPU; the wait."""
    start = time.perf_counter()
    said = False
    while True:
        busy, mine = _busy_seconds(), _self_seconds()
        time.sleep(1.0)
        other = _busy_seconds() - busy - (_self_seconds() - mine)
        waited = time.perf_counter() - start
        if other < QUIET_CPU or waited >= limit:
            return waited
        if not said:
            print(f"  waiting for a quiet machine (other processes use {other:.0%} of a CPU)...")
            said = True


# -- evaluation ------------------------------------------------------------------------


def aggregate(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of one server, plus pass/fail of its runs."""
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return {"available": False, "error": rounds[0].get("error", "no rounds") if rounds else ""}
    out: dict[str, Any] = {
        "available": True,
        "rounds": len(ok),
        "startup_s": statistics.median(r["startup_s"] for r in ok),
        "startup_all_s": [r["startup_s"] for r in ok],
        "rss_mib": max(r["memory"]["rss_mib"] for r in ok),
        "pss_mib": max(r["memory"]["pss_mib"] for r in ok),
        "tree_rss_mib": max(r["memory"]["tree_rss_mib"] for r in ok),
        "processes": ok[0]["memory"]["processes"],
        "model_process": ok[0]["memory"]["cmdline"],
        "checks_passed": all(r["check"]["passed"] and r["check_after"]["passed"] for r in ok),
        "failed_requests": sum(r[f"c{c}"]["failed"] for r in ok for c in CONCURRENCY),
        "foreign_cpu_max": max(foreign_share(r) for r in ok),
        "attempts": sum(r.get("attempt", 1) for r in ok),
    }
    if len(ok) < len(rounds):
        out["errors"] = [r["error"] for r in rounds if "error" in r]
    for c in CONCURRENCY:
        runs = [r[f"c{c}"] for r in ok]
        out[f"c{c}"] = {
            "p50_ms": statistics.median(run["p50_us"] for run in runs) / 1000,
            "p90_ms": statistics.median(run["p90_us"] for run in runs) / 1000,
            "p99_ms": statistics.median(run["p99_us"] for run in runs) / 1000,
            "rps": statistics.median(run["rps"] for run in runs),
            "rps_all": [run["rps"] for run in runs],
            "requests": sum(run["requests"] for run in runs),
            "failed": sum(run["failed"] for run in runs),
        }
    out["valid"] = out["checks_passed"] and out["failed_requests"] == 0
    return out


def evaluate(servers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The target rows (and the same comparisons for onnx=False, info only)."""
    rows: list[dict[str, Any]] = []

    def get(key: str, figure: str, stat: str) -> tuple[float | None, bool]:
        s = servers.get(key, {})
        if not s.get("available"):
            return None, False
        return float(s[figure][stat] if figure != "-" else s[stat]), bool(s["valid"])

    def add(
        name: str,
        label: str,
        mine: tuple[str, str, str],
        ref: tuple[str, str, str] | None,
        target: str,
        test: Any,
        unit: str,
        *,
        info: bool = False,
    ) -> None:
        value, ok = get(*mine)
        ref_value, ref_ok = get(*ref) if ref else (None, True)
        available = value is not None and (ref is None or ref_value is not None)
        passed: bool | None = None
        if available and not info:
            passed = bool(ok and ref_ok and test(value, ref_value))
        rows.append(
            {
                "name": name,
                "label": label,
                "unit": unit,
                "milepost": value,
                "reference": ref_value,
                "reference_server": ref[0] if ref else None,
                "ratio": None
                if not available or ref_value is None or value == 0
                else (value / ref_value),
                "target": target,
                "passed": passed,
                "available": available,
                "valid": ok and ref_ok,
            }
        )

    for key, suffix, info in (("milepost", "", False), ("milepost_sklearn", "_sklearn", True)):
        tag = "" if not info else " [onnx=False]"
        add(
            f"p50_vs_bare{suffix}",
            f"p50, c=1, vs bare ASGI{tag}",
            (key, "c1", "p50_ms"),
            ("bare", "c1", "p50_ms"),
            f"<= {P50_VS_BARE:g}x bare",
            lambda v, r: v <= P50_VS_BARE * r,
            "ms",
            info=info,
        )
        add(
            f"p50_vs_mlflow{suffix}",
            f"p50, c=1, vs MLflow{tag}",
            (key, "c1", "p50_ms"),
            ("mlflow", "c1", "p50_ms"),
            f"<= 1/{P50_VS_MLFLOW:g} MLflow",
            lambda v, r: v * P50_VS_MLFLOW <= r,
            "ms",
            info=info,
        )
        add(
            f"p99_vs_bare{suffix}",
            f"p99, c=1, vs bare ASGI{tag}",
            (key, "c1", "p99_ms"),
            ("bare", "c1", "p99_ms"),
            f"<= {P99_VS_BARE:g}x bare",
            lambda v, r: v <= P99_VS_BARE * r,
            "ms",
            info=info,
        )
        add(
            f"rps_vs_mlflow{suffix}",
            f"throughput, c=16, vs MLflow{tag}",
            (key, "c16", "rps"),
            ("mlflow", "c16", "rps"),
            f">= {RPS_VS_MLFLOW:g}x MLflow",
            lambda v, r: v >= RPS_VS_MLFLOW * r,
            "req/s",
            info=info,
        )
        add(
            f"rps_vs_fastapi{suffix}",
            f"throughput, c=16, vs FastAPI{tag}",
            (key, "c16", "rps"),
            ("fastapi", "c16", "rps"),
            ">= FastAPI",
            lambda v, r: v >= r,
            "req/s",
            info=info,
        )
    add(
        "p50_vs_bare_onnx",
        "p50, c=1, vs bare ONNX peer (same session)",
        ("milepost", "c1", "p50_ms"),
        ("bare_onnx", "c1", "p50_ms"),
        f"<= {P50_VS_ONNX:g}x bare ONNX",
        lambda v, r: v <= P50_VS_ONNX * r,
        "ms",
    )
    add(
        "rps_vs_bare_onnx",
        "throughput, c=16, vs bare ONNX peer",
        ("milepost", "c16", "rps"),
        ("bare_onnx", "c16", "rps"),
        f">= {RPS_VS_ONNX:g}x bare ONNX",
        lambda v, r: v >= RPS_VS_ONNX * r,
        "req/s",
    )
    add(
        "features_p50_vs_bare",
        "p50, c=1, online feature lookup, vs bare (no lookup)",
        ("milepost_features", "c1", "p50_ms"),
        ("bare", "c1", "p50_ms"),
        f"<= {FEATURES_P50_VS_BARE:g}x bare",
        lambda v, r: v <= FEATURES_P50_VS_BARE * r,
        "ms",
    )
    add(
        "logging_cost",
        "throughput, c=16, logging on vs off",
        ("milepost", "c16", "rps"),
        ("milepost_nolog", "c16", "rps"),
        f"cost <= {LOG_COST:.0%}",
        lambda v, r: v >= (1 - LOG_COST) * r,
        "req/s",
    )
    add(
        "startup",
        "spawn to first prediction",
        ("milepost", "-", "startup_s"),
        None,
        f"<= {STARTUP_TARGET_S:g} s",
        lambda v, _r: v <= STARTUP_TARGET_S,
        "s",
    )
    add(
        "rss",
        "replica RSS after load and runs",
        ("milepost", "-", "rss_mib"),
        None,
        f"<= {RSS_TARGET_MIB:g} MiB",
        lambda v, _r: v <= RSS_TARGET_MIB,
        "MiB",
    )
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:,.2f} ms" if value < 10 else f"{value:,.1f} ms"
    if unit == "req/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def report(summary: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "info"}
    v = meta["versions"]
    table = Table(
        title=f"Model serving: Milepost {v['milepost']} vs MLflow {v.get('mlflow', 'n/a')}, "
        f"BentoML {v.get('bentoml', 'n/a')}, FastAPI {v['fastapi']}, bare ASGI "
        f"(1 worker each, {meta['mode']}: {meta['sizes']['rounds']} x "
        f"{meta['sizes']['seconds']} s per figure)"
    )
    for column, justify in (
        ("Target row (median)", "left"),
        ("Milepost", "right"),
        ("Reference", "right"),
        ("Ratio", "right"),
        ("Target", "left"),
        ("Result", "center"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    names = {s["key"]: s["short"] for s in summary["servers"]}
    for b in summary["benchmarks"]:
        ref = "-"
        if b["reference_server"]:
            ref = f"{_fmt(b['reference'], b['unit'])} ({names.get(b['reference_server'], '?')})"
        result = verdict[b["passed"]]
        if not b["available"]:
            result = "n/a"
        elif not b["valid"] and b["passed"] is not None:
            result += " (errors)"
        table.add_row(
            b["label"],
            _fmt(b["milepost"], b["unit"]),
            ref,
            "-" if b["ratio"] is None else f"{b['ratio']:.2f}x",
            b["target"],
            result,
        )
    console.print(table)

    per = Table(title="Every server (medians over rounds; 1 row per request)")
    for column in (
        "Server",
        "p50 c=1",
        "p99 c=1",
        "req/s c=1",
        "p50 c=16",
        "p99 c=16",
        "req/s c=16",
        "startup",
        "RSS (PSS)",
        "answers",
    ):
        per.add_column(column, justify="left" if column in ("Server", "answers") else "right")
    for s in summary["servers"]:
        r = s["result"]
        if not r.get("available"):
            per.add_row(s["label"], *["n/a"] * 8, r.get("error", "")[:60])
            continue
        answers = "[green]ok[/]" if r["valid"] else "[red]WRONG/ERRORS[/]"
        per.add_row(
            s["label"],
            _fmt(r["c1"]["p50_ms"], "ms"),
            _fmt(r["c1"]["p99_ms"], "ms"),
            _fmt(r["c1"]["rps"], "req/s"),
            _fmt(r["c16"]["p50_ms"], "ms"),
            _fmt(r["c16"]["p99_ms"], "ms"),
            _fmt(r["c16"]["rps"], "req/s"),
            _fmt(r["startup_s"], "s"),
            f"{r['rss_mib']:.0f} ({r['pss_mib']:.0f}) MiB",
            answers,
        )
    console.print(per)
    for note in summary["notes"]:
        console.print(note)
    met = sum(b["passed"] is True for b in summary["benchmarks"])
    total = sum(not b["name"].endswith("_sklearn") for b in summary["benchmarks"])
    colour = "green" if met == total else "red"
    console.print(
        f"[bold {colour}]{met}/{total} targets met[/]. "
        f"Took {meta['elapsed_seconds']:.0f} s (set-up {meta['setup_seconds']:.0f} s)."
    )
    out = QUICK_RESULTS_FILE if meta["mode"] == "quick" else RESULTS_FILE
    console.print(f"Results written to {out.relative_to(HERE.parent)}")


SHORT = {
    "milepost": "Milepost",
    "milepost_nolog": "log off",
    "milepost_sklearn": "onnx=False",
    "milepost_features": "lookup",
    "mlflow": "MLflow",
    "bentoml": "BentoML",
    "fastapi": "FastAPI",
    "bare": "bare",
    "bare_onnx": "bare ONNX",
    "floor": "floor",
}


def notes(setup: dict[str, Any], servers: dict[str, dict[str, Any]]) -> list[str]:
    local = setup["milepost"]["local_ms"]
    out = [
        "Every server answers the same 1-row requests (64 different rows, cycled) with the "
        "same fitted pipeline; 16 answers per server and round are compared with the "
        "pipeline's predictions before and after the load, and any non-2xx answer or socket "
        "error during a run marks the server's figures as invalid.",
        "Milepost answers predictions and class probabilities and logs each request "
        "(except 'log off'); the peers answer predictions only (bare ONNX: both). "
        "Milepost's ONNX path runs the verified ONNX twin; 'onnx=False' runs the "
        "scikit-learn pipeline, whose "
        "predict and predict_proba each transform the row (in this process a 1-row "
        f"predict takes {local['predict']:.2f} ms, predict + predict_proba "
        f"{local['predict_and_proba']:.2f} ms).",
        "MLflow and BentoML run as pip installs them: without uvloop and httptools, with "
        "their access logs on (uvicorn's for MLflow). FastAPI and bare run in Milepost's "
        "environment with uvloop and httptools and no access log, like Milepost.",
        "The bare ONNX peer runs the same ONNX twin as Milepost (same file, same session "
        "options) on arrays built straight from the JSON and answers the same outputs, "
        "with no signature check, no fallback, no routing and no prediction log, and it "
        "calls the session's private native binding (Milepost calls the public "
        "InferenceSession.run, which checks the feed's names first): the physical limit "
        "of Milepost's ONNX path on this machine.",
        "Latency at concurrency 1 is recorded per response (request written to response "
        "read, LuaJIT's monotonic clock in _serving/wrk.lua); wrk's own percentiles add "
        "synthetic samples for coordinated omission (a 60 ms stall at 6,000 req/s becomes "
        "~360 samples up to 60 ms), which made a few stalls read as a p99 of 40-60 ms; they "
        "are kept in the JSON as wrk_*_us. At concurrency 16 the figures are wrk's.",
        "The floor row is the bare app answering a constant (no JSON parsing, no "
        "predict): the cost of the HTTP round trip itself on this machine with uvicorn "
        "and wrk.",
        "Startup is from spawn (the taskset exec) to the first 200 on the readiness route "
        "followed by one successful predict. RSS is VmRSS of the process that loaded the "
        "model (Milepost: the replica, forked from the supervisor, so part of it is shared "
        "with its parent: PSS in brackets), the largest over rounds.",
    ]
    foreign = {k: s["foreign_cpu_max"] for k, s in servers.items() if s.get("available")}
    if foreign:
        worst = max(foreign, key=lambda k: foreign[k])
        again = sum(s["attempts"] - s["rounds"] for s in servers.values() if s.get("available"))
        out.append(
            "Other work on the machine: each round starts once other processes use under "
            f"{QUIET_CPU:.0%} of a CPU, and is measured again (up to {ATTEMPTS} times) when "
            f"they took over {FOREIGN_CPU_WARN:.0%} of a CPU during it (busy CPU time not spent "
            f"by the server's processes, wrk or this script). Measured again: {again} "
            f"round(s). Kept rounds: at most {foreign[worst]:.0%} of a CPU ({worst})"
            + (
                "; above the threshold: rerun on a quiet machine."
                if foreign[worst] > FOREIGN_CPU_WARN
                else "."
            )
        )
    for key, s in servers.items():
        if not s.get("available"):
            out.append(f"{key}: n/a: {s.get('error', '')[:300]}")
        elif s.get("errors"):
            out.append(f"{key}: {len(s['errors'])} round(s) failed: {s['errors'][0][:200]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--only", help="comma-separated server keys to run (development; targets may be n/a)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET_WAIT_SECONDS,
        help="seconds to wait, before each round, for other processes to go quiet "
        f"(default {QUIET_WAIT_SECONDS:g}; on a shared machine, lower it and read the "
        "recorded foreign CPU)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    load = os.getloadavg()[0]
    if load > 0.7:
        print(f"Warning: load average {load:.1f}; other work on the machine skews the figures.")
    for tool in (WRK, TASKSET):
        if not Path(tool).exists():
            raise SystemExit(f"This benchmark needs {tool} (apt-get install wrk util-linux).")
    wanted = set(args.only.split(",")) if args.only else None
    use_mlflow = wanted is None or "mlflow" in wanted
    mlflow_python = ensure_mlflow_venv() if use_mlflow else ""
    bentoml_error = None
    try:
        if wanted is None or "bentoml" in wanted:
            ensure_bentoml_venv()
        else:
            bentoml_error = "BentoML not selected (--only)."
    except (subprocess.CalledProcessError, OSError) as exc:
        bentoml_error = f"BentoML could not be installed: {exc}"
        print(bentoml_error)
    WORK_ROOT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-", dir=WORK_ROOT))
    (work / "logs").mkdir()
    (work / "mlflow").mkdir()
    servers: list[Server] = []
    try:
        # Bytecode for Milepost's own modules, as `pip install` (non-editable) leaves it:
        # the editable checkout otherwise compiles them on every start when
        # PYTHONDONTWRITEBYTECODE is set. The peers' packages come from pip with theirs.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(HERE.parent / "src" / "milepost")],
            check=True,
            env=clean_env(),
        )
        (work / "config.json").write_text(json.dumps({"out": str(work)}))
        run_worker(
            "milepost setup",
            [sys.executable, str(HELPERS / "milepost_setup.py"), str(work / "config.json")],
            env=clean_env(MILEPOST_HOME=str(work / "milepost-home")),
            cwd=work,
        )
        if use_mlflow:
            run_worker(
                "mlflow setup",
                [mlflow_python, str(HELPERS / "mlflow_setup.py"), str(work)],
                env=clean_env(
                    PATH=f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    VIRTUAL_ENV=str(MLFLOW_VENV),
                    MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
                    MLFLOW_DISABLE_TELEMETRY="true",
                    DO_NOT_TRACK="true",
                    GIT_PYTHON_REFRESH="quiet",
                ),
                cwd=work / "mlflow",
            )
        setup = {
            "milepost": json.loads((work / "setup.json").read_text()),
            "mlflow": json.loads((work / "mlflow.json").read_text())
            if use_mlflow
            else {"mlflow": None, "model_uri": ""},
        }
        setup_seconds = time.perf_counter() - started
        servers = build_servers(
            work, {"features": True, "bentoml": bentoml_error is None}, setup["mlflow"]["model_uri"]
        )
        if wanted is not None:
            servers = [s for s in servers if s.key in wanted]
        labels = {s.key: s.label for s in servers} | {"bentoml": "BentoML serve"}
        commands = {s.key: " ".join(s.cmd) for s in servers}
        check_rows = json.loads((work / "rows.json").read_text())["check_rows"]
        rounds: dict[str, list[dict[str, Any]]] = {s.key: [] for s in servers}
        for i in range(sizes["rounds"]):
            for server in servers:
                print(f"round {i + 1}/{sizes['rounds']}: {server.label}", flush=True)
                for attempt in range(1, ATTEMPTS + 1):
                    waited = wait_for_quiet(args.quiet_wait)
                    result = measure_round(server, work, sizes, check_rows)
                    result["attempt"], result["waited_s"] = attempt, waited
                    share = foreign_share(result)
                    if share <= FOREIGN_CPU_WARN or attempt == ATTEMPTS:
                        break
                    print(f"  other processes took {share:.0%} of a CPU: measuring again")
                rounds[server.key].append(result)
                if "error" in result:
                    print(f"  failed: {result['error'][:500]}", flush=True)
                else:
                    c1, c16 = result["c1"], result["c16"]
                    print(
                        f"  startup {result['startup_s']:.2f} s, p50 {c1['p50_us'] / 1000:.2f} "
                        f"ms, p99 {c1['p99_us'] / 1000:.2f} ms, c=16 {c16['rps']:,.0f} req/s, "
                        f"RSS {result['memory']['rss_mib']:.0f} MiB, "
                        f"failed {c1['failed'] + c16['failed']}, "
                        f"checks {result['check']['passed'] and result['check_after']['passed']}",
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results = {key: aggregate(r) for key, r in rounds.items()}
    if bentoml_error is not None:
        results["bentoml"] = {"available": False, "error": bentoml_error}
    bentoml_python = BENTOML_VENV / "bin" / "python"
    bentoml_version = (
        (_installed(str(bentoml_python), ["bentoml"]) or {}).get("bentoml")
        if bentoml_python.exists()
        else None
    )
    fastapi_version = _installed(sys.executable, ["fastapi", "uvicorn"]) or {}
    summary = {
        "benchmarks": evaluate(results),
        "servers": [
            {
                "key": key,
                "label": labels[key],
                "short": SHORT[key],
                "result": result,
                "command": commands.get(key, ""),
            }
            for key, result in results.items()
        ],
        "notes": notes(setup, results),
    }
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "sizes": sizes,
        "versions": {
            "milepost": setup["milepost"]["milepost"],
            "mlflow": setup["mlflow"]["mlflow"],
            "bentoml": bentoml_version,
            "fastapi": fastapi_version.get("fastapi"),
            "uvicorn": fastapi_version.get("uvicorn"),
            "scikit-learn": setup["milepost"]["sklearn"],
            "onnxruntime": setup["milepost"]["onnxruntime"],
            "numpy": setup["milepost"]["numpy"],
            "pandas": setup["milepost"]["pandas"],
            "python": platform.python_version(),
            "wrk": subprocess.run([WRK, "-v"], capture_output=True, text=True, check=False)
            .stdout.split("\n")[0]
            .strip(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "server_cpu": SERVER_CPU,
            "client_cpu": CLIENT_CPU,
            "load_average_at_start": load,
        },
        "setup": setup,
        "setup_seconds": setup_seconds,
        "elapsed_seconds": time.perf_counter() - started,
    }
    out = QUICK_RESULTS_FILE if meta["mode"] == "quick" else RESULTS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, **summary, "raw": rounds}, indent=2, default=str) + "\n")
    report(summary, meta)


if __name__ == "__main__":
    main()
