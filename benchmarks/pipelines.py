"""Pipeline speed: Milepost's runners against Metaflow and Prefect 3, in the same run.

Run it from the repository root::

    .venv/bin/python benchmarks/pipelines.py           # 7 rounds, a 100k-row sweep
    .venv/bin/python benchmarks/pipelines.py --quick   # 3 rounds, a 20k-row sweep
    .venv/bin/python benchmarks/pipelines.py --only noop   # one part (noop or sweep)

Part 1, a 10-step no-op pipeline (ten steps in a line, each returning the previous
step's integer plus one; ``_pipelines_noop.noop10``, ``_pipelines_metaflow.NoopFlow``,
``_pipelines_prefect.noop10``):

end to end, a fresh process per run (wall time from spawn to exit)
    Milepost: ``milepost pipelines run _pipelines_noop:noop10 --no-cache`` (every step
    runs and is recorded) and the same without ``--no-cache`` (every step reused from the
    cache); Metaflow: ``python _pipelines_metaflow.py --no-pylint run`` (its local
    runtime: one process per task, local metadata and datastore in a temporary
    directory, ``USERNAME`` set, no metadata service); Prefect: ``python
    _pipelines_prefect.py`` (its ephemeral local API server started for the run, SQLite
    in a temporary ``PREFECT_HOME``, telemetry off). Each tool first runs once in its
    fresh directory (reported as "cold": creating the database is in it); then ``rounds``
    rounds run every contender once, interleaved, and the table gives the median (min,
    max). Two floors are timed in the same rounds: ``python -c pass`` and ``milepost
    --help`` (the interpreter, and the CLI's own imports). One extra Milepost run with
    ``-X importtime`` says how much of its time is imports.
in process
    Milepost: ``milepost.run_pipeline(noop10, cache=False)`` (recorded) and with the
    cache (fully cached), timed in one process after a first run, per step = the run's
    time / 10; ``noop1`` (one step) gives the fixed cost of a run, so marginal per step =
    (noop10 - noop1) / 9. Prefect: the flow called again in one process (its server
    already up). Metaflow has no in-process run; its per-step figure is the time between
    its "Workflow starting" and "Done!" lines / 10 (start-up and validation excluded).

Part 2, a 16-trial sweep on the demo's churn data (``_pipelines_sweep.sweep``:
``prepare`` -> ``trial.map(**grid(...))`` -> ``best``, each trial a
``HistGradientBoostingClassifier`` as a tracked run): wall time of ``run_pipeline`` on the
local runner with ``max_workers=1`` (sequential) against the Dask runner with 2 workers,
started by the runner (``--runner dask``: cluster start-up included) and against a
``LocalCluster`` started beforehand (``address=``; its start-up timed apart), one after the
other in one process (every other round in the reverse order; 2 rounds, 1 with
``--quick``). ``OMP_NUM_THREADS=1``: one core per trial, so the sequential run uses one
core and Dask two.

Targets (issue 14): a recorded and a cached no-op step <= 20 ms in process; Milepost's
end-to-end wall time (fresh process, recorded) >= 10x lower than Metaflow's and than
Prefect's; the sweep close to 2x faster on Dask's 2 workers (read here as >= 1.7x, cluster
start-up included). A missed target prints FAIL; the exit code is 0 all the same (this is
a report, not a test). Metaflow and Prefect never enter Milepost's environment: the first
run creates ``benchmarks/.venv-metaflow`` and ``benchmarks/.venv-prefect`` (pip, a few
minutes, once; delete a directory to upgrade). Numbers go to
``benchmarks/results/pipelines.json`` (``pipelines-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _pipelines_worker import SWEEP_RUNS, busy_cores, cpu_jiffies  # noqa: E402

WORK_DIR = HERE / ".work"
RESULTS_FILE = HERE / "results" / "pipelines.json"
QUICK_RESULTS_FILE = HERE / "results" / "pipelines-quick.json"
WORKER = HERE / "_pipelines_worker.py"
PEERS = {
    "metaflow": {"venv": HERE / ".venv-metaflow", "requirements": ["metaflow"]},
    "prefect": {"venv": HERE / ".venv-prefect", "requirements": ["prefect>=3,<4"]},
}
MODES: dict[str, dict[str, Any]] = {
    "full": {"rounds": 7, "inprocess_rounds": 20, "sweep_rows": 100_000, "sweep_rounds": 2},
    "quick": {"rounds": 3, "inprocess_rounds": 5, "sweep_rows": 20_000, "sweep_rounds": 1},
}
STEPS = 10
STEP_MS = 20.0  # a recorded (or cached) no-op step in process, at most
VS_PEERS = 10.0  # peer end-to-end time / Milepost's, at least
SWEEP_SPEEDUP = 1.7  # sequential / Dask with 2 workers, at least ("close to 2x")
DASK_WORKERS = 2
SEED = 7
EXPECTED_X = STEPS - 1  # what the last step returns in every contender


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MILEPOST_/METAFLOW_/PREFECT_ settings, plus ``extra``."""
    prefixes = ("MILEPOST_", "METAFLOW_", "PREFECT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def peer_env(peer: str, **extra: str) -> dict[str, str]:
    """A peer's environment: its venv first on PATH, no PYTHONPATH, telemetry off."""
    venv = PEERS[peer]["venv"]
    env = clean_env(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        DO_NOT_TRACK="1",
        PYTHONWARNINGS="ignore",
        **extra,
    )
    env.pop("PYTHONPATH", None)
    return env


def milepost_env(home: Path, **extra: str) -> dict[str, str]:
    """Milepost's environment: its home, this folder on PYTHONPATH (for the pipelines)."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return clean_env(MILEPOST_HOME=str(home), PYTHONPATH=path, **extra)


def ensure_venv(peer: str) -> str:
    """The peer venv's python, creating the venv and installing the peer when missing."""
    venv, requirements = PEERS[peer]["venv"], PEERS[peer]["requirements"]
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {peer}; print({peer}.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return str(python)
    print(f"Creating {venv} and installing {' '.join(requirements)} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True)
    return str(python)


def peer_version(peer: str) -> str:
    python = PEERS[peer]["venv"] / "bin" / "python"
    code = f"import {peer}; print({peer}.__version__)"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, env=peer_env(peer)
    ).stdout.strip()


def milepost_cli() -> list[str]:
    """The ``milepost`` console script next to this interpreter (``-m milepost`` if none)."""
    script = Path(sys.executable).parent / "milepost"
    return [str(script)] if script.exists() else [sys.executable, "-m", "milepost"]


def timed(cmd: list[str], env: dict[str, str], cwd: Path, expect: str | None = None) -> dict:
    """Run ``cmd`` to completion: its wall time (spawn to exit), the machine's busy cores
    meanwhile, and its output; fails loudly."""
    jiffies = cpu_jiffies()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    busy = busy_cores(jiffies, cpu_jiffies())
    output = done.stdout + done.stderr
    if done.returncode != 0 or (expect is not None and expect not in output):
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}) in {cwd}.")
    return {"seconds": seconds, "busy_cores": busy, "output": output}


def run_worker(
    task: str, config: dict[str, Any], tmp: Path, *, home: Path | None = None, **env: str
) -> dict[str, Any]:
    """Run one Milepost worker task in its own process (in a fresh home unless ``home``
    is given); the JSON it wrote."""
    home = home or tmp / f"home-{task}"
    home.mkdir(parents=True, exist_ok=True)
    out, config_path = tmp / f"{task}.json", tmp / f"{task}.config.json"
    config_path.write_text(json.dumps({**config, "out": str(out)}))
    log_path = tmp / f"{task}.log"
    with log_path.open("w") as log:
        code = subprocess.run(
            [sys.executable, str(WORKER), task, str(config_path)],
            env=milepost_env(home, **env),
            cwd=tmp,
            stdout=log,
            stderr=log,
            check=False,
        ).returncode
    if code != 0:
        print(log_path.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"The {task} worker failed with exit code {code} ({log_path}).")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


_MF_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (Workflow starting|Done!)", re.M)


def metaflow_runtime(output: str) -> float | None:
    """Seconds between Metaflow's "Workflow starting" and "Done!" lines."""
    stamps = {what: datetime.fromisoformat(at) for at, what in _MF_TIME.findall(output)}
    if len(stamps) != 2:
        return None
    return (stamps["Done!"] - stamps["Workflow starting"]).total_seconds()


def import_ms(stderr: str) -> float:
    """Total import time of a ``-X importtime`` run: the top-level modules' cumulative us."""
    total = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        top_level = len(parts) == 3 and not parts[2].startswith("  ")  # one space after "|"
        if line.startswith("import time:") and top_level and parts[1].strip().isdigit():
            total += int(parts[1])
    return total / 1000


def compile_sources(tmp: Path) -> str:
    """Byte-compile the Milepost package this benchmark imports and the flow modules here,
    as a regular ``pip install`` leaves them: with ``PYTHONDONTWRITEBYTECODE`` set (as on
    this machine) an editable checkout is otherwise compiled from source on every start.
    The peers' packages come from pip compiled. Returns the package's folder."""
    probe = [sys.executable, "-c", "import milepost, os; print(os.path.dirname(milepost.__file__))"]
    env = milepost_env(tmp)
    package = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
    folder = package.stdout.strip()
    for path in (folder, str(HERE)):
        compile_all = [sys.executable, "-m", "compileall", "-q", "-x", r"\.venv|\.work", path]
        subprocess.run(compile_all, check=True, env=env)
    return folder


def wait_quiet(max_seconds: float, *, window: float = 2.0, quiet: float = 0.5) -> dict:
    """Wait (up to ``max_seconds``) until the machine's busy cores over ``window`` seconds
    fall below ``quiet``; what was seen. Other helpers' work on a shared machine skews
    every figure, so the JSON says how busy it was before each part."""
    start = time.perf_counter()
    seen = []
    while True:
        before = cpu_jiffies()
        time.sleep(window)
        seen.append(busy_cores(before, cpu_jiffies()))
        waited = time.perf_counter() - start
        if seen[-1] < quiet or waited >= max_seconds:
            return {
                "asked_seconds": max_seconds,
                "waited_seconds": waited,
                "busy_cores": seen[-1],
                "quiet": seen[-1] < quiet,
            }


def run_noop(mode: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Part 1: end-to-end rounds of every contender, then the in-process figures."""
    homes = {name: tmp / name for name in ("milepost", "metaflow", "prefect")}
    for path in homes.values():
        path.mkdir()
    mp_env = milepost_env(homes["milepost"])
    mf_env = peer_env(
        "metaflow",
        USERNAME="bench",
        METAFLOW_HOME=str(homes["metaflow"] / "config"),
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(homes["metaflow"]),
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DEFAULT_DATASTORE="local",
    )
    pf_env = peer_env(
        "prefect",
        PREFECT_HOME=str(homes["prefect"]),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    ref = "_pipelines_noop:noop10"
    mf_python = str(PEERS["metaflow"]["venv"] / "bin" / "python")
    pf_python = str(PEERS["prefect"]["venv"] / "bin" / "python")
    commands: dict[str, tuple[list[str], dict[str, str], str | None]] = {
        "milepost_recorded": (
            [*milepost_cli(), "pipelines", "run", ref, "--no-cache"],
            mp_env,
            None,
        ),
        "milepost_cached": ([*milepost_cli(), "pipelines", "run", ref], mp_env, None),
        "metaflow": (
            [mf_python, str(HERE / "_pipelines_metaflow.py"), "--no-pylint", "run"],
            mf_env,
            f"x = {EXPECTED_X}",
        ),
        "prefect": ([pf_python, str(HERE / "_pipelines_prefect.py")], pf_env, f"x = {EXPECTED_X}"),
        "python_floor": ([sys.executable, "-c", "pass"], mp_env, None),
        "milepost_help": ([*milepost_cli(), "--help"], mp_env, None),
    }
    cold: dict[str, float] = {}
    for name in ("milepost_recorded", "metaflow", "prefect"):
        print(f"End to end, cold (fresh directory): {name}", flush=True)
        cmd, env, expect = commands[name]
        cold[name] = timed(cmd, env, HERE, expect)["seconds"]
    cmd, env, _ = commands["milepost_cached"]
    cold["milepost_cache_fill"] = timed(cmd, env, HERE)["seconds"]  # a cached run
    times: dict[str, list[float]] = {name: [] for name in commands}
    busy: dict[str, list[float]] = {name: [] for name in commands}
    metaflow_inner: list[float] = []
    for r in range(mode["rounds"]):
        print(f"End to end, round {r + 1} of {mode['rounds']}", flush=True)
        for name, (cmd, env, expect) in commands.items():
            done = timed(cmd, env, HERE, expect)
            times[name].append(done["seconds"])
            busy[name].append(done["busy_cores"])
            if name == "metaflow" and (inner := metaflow_runtime(done["output"])) is not None:
                metaflow_inner.append(inner)
    cmd, env, _ = commands["milepost_recorded"]
    profiled = subprocess.run(
        [sys.executable, "-X", "importtime", *(cmd[1:] if cmd[0] == sys.executable else cmd)],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    print("In process: Milepost", flush=True)
    inprocess = run_worker("noop", {"rounds": mode["inprocess_rounds"]}, tmp)
    cli_runs = run_worker("check", {"pipeline": "noop10"}, tmp, home=homes["milepost"])
    print("In process: Prefect", flush=True)
    pf_out = tmp / "prefect-inprocess.json"
    timed(
        [
            pf_python,
            str(HERE / "_pipelines_prefect.py"),
            "inprocess",
            str(mode["inprocess_rounds"]),
            str(pf_out),
        ],
        pf_env,
        HERE,
    )
    return {
        "cold_seconds": cold,
        "seconds": times,
        "busy_cores": busy,
        "metaflow_runtime_seconds": metaflow_inner,
        "milepost_cli_import_ms": import_ms(profiled.stderr),
        "milepost_inprocess": inprocess,
        "milepost_cli_runs": cli_runs,
        "prefect_inprocess": json.loads(pf_out.read_text()),
    }


def run_sweep(mode: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Part 2: the 16-trial sweep, sequential and on Dask, in one worker process."""
    print(f"Sweep: 16 trials on {mode['sweep_rows']:,} rows (local, then Dask)", flush=True)
    config = {
        "rows": mode["sweep_rows"],
        "seed": SEED,
        "workers": DASK_WORKERS,
        "rounds": mode["sweep_rounds"],
    }
    return run_worker("sweep", config, tmp, OMP_NUM_THREADS="1")


def spread(values: list[float], scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    """``median (min-max) unit`` of ``values`` times ``scale``."""
    v = [x * scale for x in values]
    return f"{statistics.median(v):,.{digits}f} {unit} ({min(v):,.{digits}f}-{max(v):,.{digits}f})"


def faster(reference: float, contender: float) -> str:
    """``contender`` against ``reference`` (seconds) as "N.NNx faster" or "N.NNx slower"."""
    ratio = reference / contender
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def _med(values: list[float]) -> float:
    return statistics.median(values)


def evaluate(raw: dict[str, Any], mode: dict[str, Any]) -> dict[str, Any]:
    """Targets, information rows and checks as plain data (what the tables show)."""
    benchmarks: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    notes: list[str] = []

    def row(label: str, milepost: str, other: str, ratio: str, target: str, passed: Any) -> None:
        benchmarks.append(
            {
                "label": label,
                "milepost": milepost,
                "other": other,
                "ratio": ratio,
                "target": target,
                "passed": passed,
            }
        )

    noop = raw.get("noop")
    if noop:
        ip = noop["milepost_inprocess"]
        rec = [r["seconds"] for r in ip["recorded"]]
        cached = [r["seconds"] for r in ip["cached"]]
        fixed = [r["seconds"] for r in ip["fixed"]]
        rec_step, cached_step = _med(rec) / STEPS * 1000, _med(cached) / STEPS * 1000
        row(
            "no-op step, recorded, in process (noop10 run / 10)",
            f"{rec_step:.1f} ms",
            f"run {spread(rec, 1000, 'ms', 0)}",
            "-",
            f"<= {STEP_MS:g} ms",
            rec_step <= STEP_MS,
        )
        row(
            "no-op step, cached, in process (noop10 run / 10)",
            f"{cached_step:.1f} ms",
            f"run {spread(cached, 1000, 'ms', 0)}",
            "-",
            f"<= {STEP_MS:g} ms",
            cached_step <= STEP_MS,
        )
        marginal = (_med(rec) - _med(fixed)) / (STEPS - 1) * 1000
        row(
            "no-op step, recorded, marginal ((noop10 - noop1) / 9)",
            f"{marginal:.1f} ms",
            f"fixed cost (noop1 run) {spread(fixed, 1000, 'ms', 0)}",
            "-",
            "info",
            None,
        )
        pf_inner = noop["prefect_inprocess"]["seconds"]
        row(
            "per step, in process: Milepost recorded vs a Prefect task",
            f"{rec_step:.1f} ms",
            f"Prefect {_med(pf_inner) / STEPS * 1000:.1f} ms (flow run / 10)",
            f"{_med(pf_inner) / _med(rec):.1f}x",
            "info",
            None,
        )
        mf_inner = noop["metaflow_runtime_seconds"]
        if mf_inner:
            row(
                "per step: Milepost recorded vs Metaflow (its runtime / 10)",
                f"{rec_step:.1f} ms",
                f"Metaflow {_med(mf_inner) / STEPS * 1000:.0f} ms",
                f"{_med(mf_inner) / _med(rec):.1f}x",
                "info",
                None,
            )
        e2e = noop["seconds"]
        mp = _med(e2e["milepost_recorded"])
        for peer, label in (
            ("metaflow", "Metaflow local runtime"),
            ("prefect", "Prefect 3 local flow"),
        ):
            ratio = _med(e2e[peer]) / mp
            row(
                f"10-step pipeline end to end (fresh process), recorded, vs {label}",
                f"{mp:.2f} s",
                f"{peer} {spread(e2e[peer])}",
                f"{ratio:.1f}x lower",
                f">= {VS_PEERS:g}x lower",
                ratio >= VS_PEERS,
            )
        mpc = _med(e2e["milepost_cached"])
        for peer in ("metaflow", "prefect"):
            row(
                f"10-step pipeline end to end, fully cached, vs {peer.capitalize()}",
                f"{mpc:.2f} s",
                f"{peer} {_med(e2e[peer]):.2f} s",
                f"{_med(e2e[peer]) / mpc:.1f}x lower",
                "info",
                None,
            )
        # Checks: every run did what it says.
        ok_rec = all(
            r["status"] == "succeeded" and r["step_statuses"] == {"succeeded": STEPS}
            for r in ip["recorded"]
        )
        ok_cached = all(
            r["status"] == "succeeded" and r["step_statuses"] == {"cached": STEPS}
            for r in ip["cached"]
        )
        checks.append(
            {
                "name": "in process: each recorded run ran its 10 steps, each cached one reused 10",
                "detail": f"{len(ip['recorded'])} recorded, {len(ip['cached'])} cached",
                "passed": ok_rec and ok_cached,
            }
        )
        cli = noop["milepost_cli_runs"]
        rounds = mode["rounds"]
        expected_runs = 2 * rounds + 3  # cold, cache fill, importtime, and the rounds
        kinds = cli["kinds"]
        checks.append(
            {
                "name": "CLI runs recorded: all succeeded; the cached ones reused every step",
                "detail": f"{cli['runs']} runs: "
                + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
                "passed": cli["runs"] == expected_runs
                and kinds.get("all steps cached", 0) >= rounds
                and kinds.get("all steps run", 0) >= rounds + 2
                and sum(n for k, n in kinds.items() if k.startswith("all steps")) == expected_runs,
            }
        )
        checks.append(
            {
                "name": "Metaflow and Prefect printed x = 9 in every run",
                "detail": f"{rounds + 1} runs each",
                "passed": True,  # timed() stops the benchmark otherwise
            }
        )
    sweep = raw.get("sweep")
    if sweep:
        seq = _med([r["local_sequential"]["seconds"] for r in sweep["rounds"]])
        own = _med([r["dask_own_cluster"]["seconds"] for r in sweep["rounds"]])
        running = _med([r["dask_running_cluster"]["seconds"] for r in sweep["rounds"]])
        warm = _med([r["dask_warm_cluster"]["seconds"] for r in sweep["rounds"]])
        start = _med([r["cluster_start_seconds"] for r in sweep["rounds"]])

        def busy(key: str) -> str:
            cores = _med([r[key]["busy_cores"] for r in sweep["rounds"]])
            return f"{cores:.1f} cores busy"

        rows_text = f"{sweep['params']['rows']:,} rows"
        row(
            f"16-trial sweep ({rows_text}): Dask, 2 workers (the runner's cluster) vs sequential",
            f"Dask {own:.1f} s ({busy('dask_own_cluster')})",
            f"local, max_workers=1 {seq:.1f} s ({busy('local_sequential')})",
            faster(seq, own),
            f">= {SWEEP_SPEEDUP:g}x (close to 2x)",
            seq / own >= SWEEP_SPEEDUP,
        )
        row(
            "the same sweep on a Dask cluster already running (address=), fresh workers",
            f"Dask {running:.1f} s ({busy('dask_running_cluster')})",
            f"local, max_workers=1 {seq:.1f} s",
            faster(seq, running),
            "info",
            None,
        )
        row(
            "the same again on that cluster, its workers warm (imports done)",
            f"Dask {warm:.1f} s ({busy('dask_warm_cluster')})",
            f"local, max_workers=1 {seq:.1f} s",
            faster(seq, warm),
            "info",
            None,
        )
        plain_seq = _med([r["plain"]["sequential_seconds"] for r in sweep["rounds"]])
        plain_pool = _med([r["plain"]["pool_seconds"] for r in sweep["rounds"]])
        pool_busy = _med([r["plain"]["pool_busy_cores"] for r in sweep["rounds"]])
        row(
            "reference without Milepost: the 16 fits in a warm ProcessPoolExecutor(2) vs a loop",
            f"pool {plain_pool:.1f} s ({pool_busy:.1f} cores busy)",
            f"loop {plain_seq:.1f} s",
            faster(plain_seq, plain_pool),
            "info: this machine's ceiling",
            None,
        )
        row(
            "Dask start-up: LocalCluster(2 workers, 127.0.0.1) + Client, until both workers are up",
            f"{start:.2f} s",
            f"own-cluster run - running-cluster run {own - running:.2f} s",
            "-",
            "info",
            None,
        )
        runs = [r[k] for r in sweep["rounds"] for k in SWEEP_RUNS]
        ok = all(
            r["status"] == "succeeded"
            and r["step_statuses"] == {"succeeded": 18}
            and r["tracked_runs"] == 16
            for r in runs
        )
        checks.append(
            {
                "name": "sweep: every run succeeded with 18 steps, 16 of them tracked runs",
                "detail": f"{len(runs)} runs; tracked runs per run: "
                + ", ".join(sorted({str(r["tracked_runs"]) for r in runs})),
                "passed": ok,
            }
        )
        plain_ok = all(
            r["plain"]["same_aucs"]
            and abs(r["plain"]["best_auc"] - sweep["best_auc"]["local_sequential"]) < 1e-12
            for r in sweep["rounds"]
        )
        checks.append(
            {
                "name": "sweep reference: the same AUCs in the loop, the pool and the pipeline",
                "detail": f"best {sweep['rounds'][-1]['plain']['best_auc']:.4f}",
                "passed": plain_ok,
            }
        )
        best = sweep["best_auc"]
        checks.append(
            {
                "name": "sweep: the same best AUC on every runner (seeded models)",
                "detail": ", ".join(f"{k} {v:.4f}" for k, v in best.items()),
                "passed": len({round(v, 12) for v in best.values()}) == 1,
            }
        )
        notes.append(
            f"Sweep trials: median {sweep['median_trial_seconds']:.2f} s each on one core "
            f"(OMP_NUM_THREADS={sweep['omp_num_threads']}); AUCs "
            f"{min(sweep['trial_aucs']):.3f}-{max(sweep['trial_aucs']):.3f}."
        )
    for part, label in (("noop", "the no-op part"), ("sweep", "the sweep")):
        before = (raw.get(part) or {}).get("before")
        if before:
            notes.append(
                f"Before {label}: {before['busy_cores']:.1f} of {os.cpu_count()} cores busy "
                "with other work"
                + (
                    f" (after waiting {before['waited_seconds']:.0f} s for a quiet machine"
                    + ("" if before["quiet"] else ", which never came")
                    + ")."
                    if before["asked_seconds"]
                    else " (no --quiet-wait)."
                )
            )
    return {"benchmarks": benchmarks, "checks": checks, "notes": notes}


def report(summary: dict[str, Any], raw: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "-"}
    v = meta["versions"]
    noop = raw.get("noop")
    if noop:
        e2e, cold = noop["seconds"], noop["cold_seconds"]
        mp = _med(e2e["milepost_recorded"])
        table = Table(
            title=f"10-step no-op pipeline, end to end, fresh process: Milepost {v['milepost']} "
            f"vs Metaflow {v['metaflow']} vs Prefect {v['prefect']} "
            f"(median (min-max) of {meta['mode_settings']['rounds']} rounds)"
        )
        for name in (
            "Contender",
            "What runs",
            "Wall time",
            "Cold (fresh dir)",
            "vs Milepost recorded",
            "Busy cores",
        ):
            table.add_column(
                name, justify="left" if name in ("Contender", "What runs") else "right"
            )
        what = {
            "milepost_recorded": ("Milepost, recorded", "milepost pipelines run ... --no-cache"),
            "milepost_cached": (
                "Milepost, cached",
                "milepost pipelines run ... (all steps reused)",
            ),
            "metaflow": ("Metaflow", "python flow.py run (local runtime)"),
            "prefect": ("Prefect", "python flow.py (ephemeral local server)"),
            "python_floor": ("floor: Python", "python -c pass"),
            "milepost_help": ("floor: Milepost CLI", "milepost --help"),
        }
        for key, (label, cmd) in what.items():
            c = cold.get(key) or cold.get("milepost_cache_fill" if key == "milepost_cached" else "")
            table.add_row(
                label,
                cmd,
                spread(e2e[key]),
                f"{c:.2f} s" if c else "-",
                f"{_med(e2e[key]) / mp:.2f}x",
                f"{_med(noop['busy_cores'][key]):.1f} of {os.cpu_count()}",
            )
        console.print(table)
        console.print(
            f"Milepost's CLI run spends {noop['milepost_cli_import_ms']:,.0f} ms importing "
            f"modules (-X importtime, one run); importing milepost and the flows in process "
            f"took {noop['milepost_inprocess']['import_seconds'] * 1000:,.0f} ms."
        )
    targets = Table(title="Targets and figures")
    for name in ("Benchmark", "Milepost", "Compared with", "Ratio", "Target", "Result"):
        targets.add_column(name)
    for b in summary["benchmarks"]:
        targets.add_row(
            b["label"], b["milepost"], b["other"], b["ratio"], b["target"], verdict[b["passed"]]
        )
    console.print(targets)
    checks = Table(title="Checks")
    for name in ("Check", "Detail", "Result"):
        checks.add_column(name)
    for c in summary["checks"]:
        checks.add_row(c["name"], c["detail"], verdict[c["passed"]])
    console.print(checks)
    for note in summary["notes"]:
        console.print(note)
    judged = [b for b in summary["benchmarks"] if b["passed"] is not None]
    met = sum(bool(b["passed"]) for b in judged)
    colour = "green" if met == len(judged) else "red"
    console.print(
        f"[bold {colour}]{met}/{len(judged)} targets met[/]; checks passed: "
        f"{sum(bool(c['passed']) for c in summary['checks'])}/{len(summary['checks'])}. "
        f"Took {meta['elapsed_seconds']:.0f} s; load average "
        f"{meta['machine']['load_average_at_start']:.1f} at start, "
        f"{meta['machine']['load_average_at_end']:.1f} at the end."
    )
    console.print(f"Results written to {meta['results_file']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, a 20k-row sweep")
    parser.add_argument("--only", choices=["noop", "sweep"], help="run one part only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="wait up to S seconds before each part for the machine to be quiet",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.7:
        print(f"Warning: load average {load_at_start:.1f}; other work skews the figures.")
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    parts = [args.only] if args.only else ["noop", "sweep"]
    versions = {"python": platform.python_version()}
    if "noop" in parts:
        for peer in PEERS:
            ensure_venv(peer)
            versions[peer] = peer_version(peer)
    tmp = Path(tempfile.mkdtemp(prefix="milepost-bench-pipelines-"))
    raw: dict[str, Any] = {}
    try:
        versions["milepost_source"] = compile_sources(tmp)
        for part, run_part in (("noop", run_noop), ("sweep", run_sweep)):
            if part not in parts:
                continue
            if args.quiet_wait:
                print(f"Waiting up to {args.quiet_wait:g} s for a quiet machine", flush=True)
            quiet = wait_quiet(args.quiet_wait)
            raw[part] = {**run_part(mode, tmp), "before": quiet}
    finally:
        if args.keep:
            print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    first = raw.get("noop", {}).get("milepost_inprocess") or raw.get("sweep") or {}
    versions["milepost"] = first.get("version", "?")
    summary = evaluate(raw, mode)
    out = QUICK_RESULTS_FILE if mode_name == "quick" else RESULTS_FILE
    if args.only:  # a partial run never replaces the recorded results
        out = WORK_DIR / f"pipelines-{mode_name}-{args.only}.json"
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode_name,
        "mode_settings": mode,
        "parts": parts,
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
        },
        "elapsed_seconds": time.perf_counter() - started,
        "results_file": str(out.relative_to(HERE.parent)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2, default=str) + "\n")
    report(summary, raw, meta)


if __name__ == "__main__":
    main()
