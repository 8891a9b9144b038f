"""Feature store speed and memory: Milepost against Feast and a hand-written DuckDB query.

Run it from the repository root::

    .venv/bin/python benchmarks/features.py           # 100k, 1M and 10M feature rows
    .venv/bin/python benchmarks/features.py --quick   # 100k feature rows only

The data (generated once per size from a seeded NumPy RNG and cached in
``benchmarks/.work/features-<size>/``): 10,000 entities, 10 float64 features, event
times spread over 90 days, 1% corrected rows (a second row for an existing entity and
event time, created later, with different values) and 100,000 label rows (entity and
time, random within the 90 days). Every view has a 3-day TTL. Every measurement runs in
its own process, one after the other so none competes for the two cores, and reports
its own peak memory (``ru_maxrss``, read right after the measured call).

Historical retrieval
    ``FeatureStore.get_historical_features(labels, 10 features)`` to a pandas frame,
    against the exact query written by hand for DuckDB on the same files (ties dropped
    by latest ``created``, ``ASOF LEFT JOIN`` per entity, the TTL as a mask, label order
    kept) and against Feast's default offline store (``file``, Dask) and its DuckDB
    offline store. Targets: <= 1.5x the DuckDB query, >= 10x faster than Feast's
    default store, faster than Feast's DuckDB store, the DuckDB query's values cell by
    cell (0 differences), and < 1 GiB peak memory at 10M rows. Feast is not run at 10M
    rows: its default store needs about 3 GB and 13 s at 1M rows and grows with them.
Materialize
    The newest row per entity of the 1M-row file (its time-shifted copy, below) into the
    SQLite online store, Milepost against Feast: <= 1/3 of Feast's time. Milepost also
    materializes the whole 100k, 1M and 10M-row files, each into a fresh store: its
    peak memory at 10M rows must stay within 1.25x of its peak at 1M.
Online reads, in process
    1 entity x 10 features per call, and 100 entities per call: p50 and p99 of each
    call, <= 1/2 of Feast's (p50 and p99, 1 entity) and <= 1/4 (p99, 100 entities).
Online reads over HTTP
    ``milepost features serve`` against ``feast serve`` on loopback, 1 connection,
    ``wrk`` pinned to the other core: p50 <= 1/2 of Feast's, p99 <= 2 ms, and no stall
    (no request over 100 ms; Feast's server restarts its worker every 1,000 requests).
    The percentiles are wrk's, which corrects them for coordinated omission; the wrk
    script also times every request itself, for raw percentiles and the stall count.
Push
    One row per call: p50 <= 1 ms.

Online numbers are measured on SQLite (the targets) and Redis (reported) for both
tools. Online reads honour the TTL relative to now, so that part uses a copy of the
data shifted by whole days to end an hour ago and reads entities whose newest row is
less than two days old.

Feast is never installed into Milepost's environment: the first run creates
``benchmarks/.venv-feast`` and installs Feast 0.67 into it; ``_feast_worker.py`` runs
there with telemetry off (``FEAST_USAGE=False``); the Milepost and DuckDB measurements
are in ``_features_worker.py``. The table is printed and the numbers are written to
``benchmarks/results/features.json``. A missed target is reported as FAIL; the exit code
is 0 all the same (this is a report, not a test).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# the other-work measurement and policy of serving.py, shared rather than copied
from serving import (
    ATTEMPTS,
    FOREIGN_CPU_WARN,
    QUIET_CPU,
    QUIET_WAIT_SECONDS,
    _busy_seconds,
    _children_seconds,
    process_tree,
    wait_for_quiet,
)

HERE = Path(__file__).resolve().parent
WORK_DIR = HERE / ".work"
RESULTS_FILE = HERE / "results" / "features.json"
#: --quick runs write here, so they never replace the full run's numbers.
QUICK_RESULTS_FILE = HERE / "results" / "features-quick.json"
FEAST_VENV = HERE / ".venv-feast"
FEAST_WORKER = HERE / "_feast_worker.py"
WORKER = HERE / "_features_worker.py"
FEAST_REQUIREMENT = "feast[duckdb,redis]==0.67.*"
BIN = Path(sys.executable).parent

# Bump when the generated data changes, so cached files from an older layout are not reused.
GENERATOR_VERSION = 1
SEED = 20_261_128
ENTITIES = 10_000
DAYS = 90
TTL_DAYS = 3
CORRECTED_FRACTION = 0.01
LABEL_ROWS = 100_000
CHUNK_ROWS = 1_000_000
ROW_GROUP_ROWS = 131_072
WINDOW_START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=DAYS)
ROWS = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
FEATURES = [f"f{i}" for i in range(10)]
REFS = [f"stats:{f}" for f in FEATURES]
REDIS_URL = "redis://127.0.0.1:6379/14"

MODES: dict[str, dict[str, Any]] = {
    "full": {
        "historical": ["100k", "1M", "10M"],
        "feast_historical": ["100k", "1M"],
        "online": "1M",
        "materialize": ["100k", "1M", "10M"],
        "feast_materialize": ["100k", "1M"],
        "repetitions": 3,
        "reads_one": 2_000,
        "reads_batch": 500,
        "batch_entities": 100,
        "pushes": 1_000,
        "http_seconds": 10,
    },
    "quick": {
        "historical": ["100k"],
        "feast_historical": ["100k"],
        "online": "100k",
        "materialize": ["100k"],
        "feast_materialize": ["100k"],
        "repetitions": 3,
        "reads_one": 500,
        "reads_batch": 100,
        "batch_entities": 100,
        "pushes": 300,
        "http_seconds": 5,
    },
}

HISTORICAL_VS_DUCKDB = 1.5  # Milepost time / DuckDB query time, at most
HISTORICAL_VS_FEAST_FILE = 0.1  # at least 10x faster than Feast's default offline store
MEMORY_TARGET_MIB = 1024.0
MATERIALIZE_VS_FEAST = 1 / 3
MATERIALIZE_GROWTH = 1.25  # peak at the largest range / peak at 1M rows, at most
READ_ONE_VS_FEAST = 0.5
READ_BATCH_P99_VS_FEAST = 0.25
HTTP_P50_VS_FEAST = 0.5
HTTP_P99_MS = 2.0
STALL_MS = 100.0
PUSH_P50_MS = 1.0
READ_ONE_P50_US = 25.0  # in process, 1 entity x 10 features, SQLite
READ_BATCH_P99_MS = 0.5  # in process, 100 entities x 10 features, SQLite
POLL_SECONDS = 0.05

# The hand-written exact point-in-time query: the reference for every tool's values.
# (Ties are ranked by `created` only: in DuckDB 2.0.1 an ASOF join over a subquery whose
# window orders by file_row_number returns wrong results.)
REFERENCE_SQL = """
WITH feats AS (
    SELECT entity_id, event_timestamp, {features}
    FROM read_parquet({files})
    QUALIFY row_number() OVER (
        PARTITION BY entity_id, event_timestamp ORDER BY created DESC) = 1
)
SELECT l.label_id, l.entity_id, l.event_timestamp, {masked}
FROM labels l
ASOF LEFT JOIN feats f
    ON l.entity_id = f.entity_id AND l.event_timestamp >= f.event_timestamp
ORDER BY l.label_id
"""

MILEPOST_DEFINITIONS = '''"""Feature definitions for benchmarks/features.py (written by it)."""

from datetime import timedelta

from milepost.features import Entity, FeatureView, Field, FileSource, PushSource

entity = Entity("entity", join_keys=["entity_id"])
stats = FeatureView(
    name="stats",
    entity=entity,
    source=FileSource({source!r}),
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
    ttl=timedelta(days={ttl_days}),
    schema=[Field(f"f{{i}}") for i in range(10)],
)
live = FeatureView(
    name="live",
    entity=entity,
    source=PushSource("live"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days={ttl_days}),
    schema=[Field(f"f{{i}}") for i in range(10)],
)
'''


def _mib(n_bytes: float) -> float:
    return n_bytes / (1 << 20)


def maxrss_mib() -> float:
    """This process's peak resident set so far, in MiB (Linux reports KiB).

    Linux carries ``ru_maxrss`` over ``fork`` and ``exec``, so the driver stays small
    (it generates and compares data in workers too); ``hwm_mib`` cross-checks.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mib() -> float | None:
    """``VmHWM`` from ``/proc/self/status``: the peak of this process image only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def percentiles(nanoseconds: list[int]) -> dict[str, float]:
    """p50, p99, max and mean in ms (nearest rank)."""
    ms = sorted(n / 1e6 for n in nanoseconds)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    return {
        "n": len(ms),
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
    }


# -- the data -----------------------------------------------------------------------------


def data_dir(size: str) -> Path:
    """Where the feature rows of one size are cached (Parquet parts and facts.json)."""
    return WORK_DIR / f"features-{size}"


def labels_path() -> Path:
    """The cached label rows."""
    return WORK_DIR / "features-labels" / "labels.parquet"


def _chunk(rng: Any, n: int) -> Any:
    """``n`` feature rows, 1% of them corrections of others in the chunk, shuffled."""
    import numpy as np
    import pyarrow as pa

    corrected = round(n * CORRECTED_FRACTION)
    plain = n - corrected
    start_us = int(WINDOW_START.timestamp()) * 1_000_000
    entity = rng.integers(0, ENTITIES, plain, dtype=np.int64)
    # whole seconds, so label times tie with event times now and then (both count)
    ts = start_us + rng.integers(0, DAYS * 86_400, plain, dtype=np.int64) * 1_000_000
    # microseconds, so no two rows of one entity and event time share a created time
    created = ts + rng.integers(0, 3_600_000_000, plain, dtype=np.int64)
    values = rng.standard_normal((plain, len(FEATURES)))
    pick = rng.choice(plain, corrected, replace=False)
    later = rng.integers(3_600_000_000, 2 * 86_400_000_000, corrected, dtype=np.int64)
    entity = np.concatenate([entity, entity[pick]])
    ts = np.concatenate([ts, ts[pick]])
    created = np.concatenate([created, created[pick] + later])
    values = np.concatenate([values, rng.standard_normal((corrected, len(FEATURES)))])
    order = rng.permutation(n)
    utc = pa.timestamp("us", tz="UTC")
    cols = {
        "entity_id": pa.array(entity[order]),
        "event_timestamp": pa.array(ts[order], type=utc),
        "created": pa.array(created[order], type=utc),
    }
    for j, name in enumerate(FEATURES):
        cols[name] = pa.array(values[order, j])
    return pa.table(cols), corrected


def generate(size: str) -> dict[str, Any]:
    """Write one size's Parquet parts (1M rows each) and its facts."""
    import numpy as np
    import pyarrow.parquet as pq

    started = time.perf_counter()
    target = data_dir(size)
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows, corrected = ROWS[size], 0
    for part, start in enumerate(range(0, rows, CHUNK_ROWS)):
        rng = np.random.default_rng([SEED, rows, part])
        table, fixed = _chunk(rng, min(CHUNK_ROWS, rows - start))
        corrected += fixed
        pq.write_table(table, tmp / f"part-{part:05d}.parquet", row_group_size=ROW_GROUP_ROWS)
    facts = {
        "generator_version": GENERATOR_VERSION,
        "rows": rows,
        "corrected_rows": corrected,
        "entities": ENTITIES,
        "window": [WINDOW_START.isoformat(), WINDOW_END.isoformat()],
        "files": len(list(tmp.glob("*.parquet"))),
        "size_bytes": sum(f.stat().st_size for f in tmp.glob("*.parquet")),
        "generated_seconds": time.perf_counter() - started,
    }
    (tmp / "facts.json").write_text(json.dumps(facts, indent=2) + "\n")
    tmp.rename(target)
    return facts


def generate_labels() -> dict[str, Any]:
    """Write the label rows: label_id, entity_id, event_timestamp (whole seconds, UTC)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([SEED, 0])
    start_us = int(WINDOW_START.timestamp()) * 1_000_000
    ts = start_us + rng.integers(0, DAYS * 86_400, LABEL_ROWS, dtype=np.int64) * 1_000_000
    table = pa.table(
        {
            "label_id": pa.array(np.arange(LABEL_ROWS, dtype=np.int64)),
            "entity_id": pa.array(rng.integers(0, ENTITIES, LABEL_ROWS, dtype=np.int64)),
            "event_timestamp": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        }
    )
    path = labels_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    facts = {"generator_version": GENERATOR_VERSION, "rows": LABEL_ROWS}
    path.with_name("facts.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _cached_facts(facts_path: Path) -> dict[str, Any] | None:
    if not facts_path.is_file():
        return None
    facts: dict[str, Any] = json.loads(facts_path.read_text())
    return facts if facts.get("generator_version") == GENERATOR_VERSION else None


def ensure_data(sizes: list[str], root: Path) -> dict[str, Any]:
    """Facts of every size and of the labels, generating what is missing (in workers)."""
    facts: dict[str, Any] = {}
    generated: dict[str, float] = {}
    if _cached_facts(labels_path().with_name("facts.json")) is None:
        print("Generating the label rows...", flush=True)
        run_worker("generate-labels", {}, root / "generate")
    facts["labels"] = _cached_facts(labels_path().with_name("facts.json"))
    for size in sizes:
        found = _cached_facts(data_dir(size) / "facts.json")
        if found is None:
            print(f"Generating {ROWS[size]:,} feature rows in {data_dir(size)}...", flush=True)
            found = run_worker("generate", {"size": size}, root / "generate")
            generated[size] = found["generated_seconds"]
        facts[size] = found
        print(
            f"Data: {data_dir(size).relative_to(HERE.parent)}, {found['rows']:,} rows "
            f"({found['corrected_rows']:,} corrected), {_mib(found['size_bytes']):,.0f} MiB",
            flush=True,
        )
    facts["generated_seconds"] = generated
    return facts


def _parquet_glob(size: str) -> str:
    return str(data_dir(size) / "*.parquet")


def _write_definitions(workdir: Path, source: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "features.py"
    path.write_text(MILEPOST_DEFINITIONS.format(source=source, ttl_days=TTL_DAYS))
    return path


# -- the driver -------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any MILEPOST_* or FEAST_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILEPOST_", "FEAST_"))}
    env.update(extra)
    return env


def feast_env() -> dict[str, str]:
    """Feast's environment: its venv first on PATH, no telemetry."""
    return clean_env(
        PATH=f"{FEAST_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(FEAST_VENV),
        FEAST_USAGE="False",
        DO_NOT_TRACK="1",
    )


def ensure_feast_venv() -> str:
    """The Feast venv's python, creating the venv and installing Feast when missing."""
    python = FEAST_VENV / "bin" / "python"
    probe = [str(python), "-c", "import feast, duckdb, redis; print(feast.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False, env=feast_env())
        if done.returncode == 0:
            return str(python)
    print(f"Creating {FEAST_VENV} and installing {FEAST_REQUIREMENT} (a few minutes, once)...")
    subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, FEAST_REQUIREMENT, "pandas<3"], check=False).returncode != 0:
        print("That failed; installing the newest Feast that installs instead...")
        unpinned = FEAST_REQUIREMENT.partition("==")[0]
        subprocess.run([*pip, unpinned, "pandas<3"], check=True)
    return str(python)


def run_worker(
    kind: str, config: dict[str, Any], cwd: Path, *, feast: bool = False
) -> dict[str, Any]:
    """Run one worker process while polling its RSS; its results plus the polled peak."""
    import psutil

    cwd.mkdir(parents=True, exist_ok=True)
    out = cwd / f"{kind}.json"
    config_path = cwd / f"{kind}.config.json"
    config_path.write_text(json.dumps({**config, "out": str(out)}))
    log_path = cwd / f"{kind}.log"
    if feast:
        cmd = [str(FEAST_VENV / "bin" / "python"), str(FEAST_WORKER), kind, str(config_path)]
        env = feast_env()
    else:
        cmd = [sys.executable, str(WORKER), kind, str(config_path)]
        env = clean_env()
    peak = 0
    start = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=log)
        watched = psutil.Process(proc.pid)
        done = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    peak = max(peak, watched.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        code = proc.wait()
        done.set()
        poller.join()
    wall = time.perf_counter() - start
    if code != 0:
        print(log_path.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"The {kind} worker failed with exit code {code} (output above).")
    result: dict[str, Any] = json.loads(out.read_text())
    result["polled_peak_mib"] = _mib(peak)
    result["process_seconds"] = wall
    return result


def run_historical(mode: dict[str, Any], root: Path) -> dict[str, Any]:
    """Every historical retrieval of every size, then the comparisons with the reference."""
    out: dict[str, Any] = {}
    labels = str(labels_path())
    for size in mode["historical"]:
        work = root / f"historical-{size}"
        res: dict[str, Any] = {}
        base = {"labels": labels, "repetitions": mode["repetitions"]}
        res["duckdb"] = run_worker(
            "duckdb-historical",
            {**base, "files": _parquet_glob(size), "answer": str(work / "duckdb.parquet")},
            work,
        )
        definitions = _write_definitions(work / "milepost", str(data_dir(size)))
        res["milepost"] = run_worker(
            "milepost-historical",
            {
                **base,
                "home": str(work / "milepost" / "home"),
                "definitions": str(definitions),
                "answer": str(work / "milepost.parquet"),
            },
            work / "milepost",
        )
        if size in mode["feast_historical"]:
            parts = sorted(data_dir(size).glob("*.parquet"))
            assert len(parts) == 1, "Feast reads one file: sizes up to 1M rows"
            for offline in ("file", "duckdb"):
                res[f"feast-{offline}"] = run_worker(
                    "historical",
                    {
                        "repo": str(work / f"feast-{offline}"),
                        "offline": offline,
                        "online": "sqlite",
                        "source": str(parts[0]),
                        "labels": labels,
                        "answer": str(work / f"feast-{offline}.parquet"),
                        "features": FEATURES,
                        "ttl_days": TTL_DAYS,
                    },
                    work / f"feast-{offline}",
                    feast=True,
                )
        answers = {name: str(work / f"{name}.parquet") for name in res if name != "duckdb"}
        res["compare"] = run_worker(
            "compare", {"reference": str(work / "duckdb.parquet"), "answers": answers}, work
        )
        line = ", ".join(
            f"{name} {r['median_seconds']:.2f} s / {r['peak_mib']:,.0f} MiB"
            for name, r in res.items()
            if name != "compare"
        )
        diffs = ", ".join(
            f"{n} {c['cells_differing']:,}" for n, c in res["compare"]["answers"].items()
        )
        print(f"  historical {size}: {line}; cells differing: {diffs}", flush=True)
        out[size] = res
    return out


def redis_available() -> bool:
    """True when Redis answers PING on 127.0.0.1:6379."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_online(mode: dict[str, Any], root: Path, quiet_wait: float) -> dict[str, Any]:
    """Materialize, in-process reads and push, for each tool on SQLite and Redis (each
    worker starts once the machine is quiet, as the HTTP loads do)."""
    size = mode["online"]
    work = root / "online"
    recent = work / f"features-{size}-recent.parquet"
    prep = run_worker(
        "prepare-online",
        {"files": _parquet_glob(size), "target": str(recent)},
        work / "prepare",
    )
    print(
        f"  online data: {size} rows shifted by {prep['shift_days']} days; "
        f"{len(prep['fresh']):,} of {prep['entities_with_rows']:,} entities fresh",
        flush=True,
    )
    rng = random.Random(SEED)
    fresh = prep["fresh"]
    reads_one = [rng.choice(fresh) for _ in range(mode["reads_one"])]
    reads_batch = [rng.sample(fresh, mode["batch_entities"]) for _ in range(mode["reads_batch"])]
    common = {
        "start": prep["start"],
        "end": prep["end"],
        "reads_one": reads_one,
        "reads_batch": reads_batch,
        "check": list(prep["check"]),
        "pushes": mode["pushes"],
    }
    backends = ["sqlite", "redis"] if redis_available() else ["sqlite"]
    results: dict[str, Any] = {"prepare": prep, "backends": backends, "runs": {}}
    for backend in backends:
        tag = uuid.uuid4().hex[:8]
        mp_dir = work / f"milepost-{backend}"
        definitions = _write_definitions(mp_dir, str(recent))
        wait_for_quiet(quiet_wait)
        results["runs"][f"milepost-{backend}"] = run_worker(
            "milepost-online",
            {
                **common,
                "backend": backend,
                "home": str(mp_dir / "home"),
                "definitions": str(definitions),
                "online_uri": f"{REDIS_URL}?prefix=bench-{tag}" if backend == "redis" else None,
                "redis_prefix": f"bench-{tag}",
            },
            mp_dir,
        )
        wait_for_quiet(quiet_wait)
        results["runs"][f"feast-{backend}"] = run_worker(
            "online",
            {
                **common,
                "backend": backend,
                "repo": str(work / f"feast-{backend}"),
                "offline": "file",
                "online": backend,
                "redis": "127.0.0.1:6379,db=14",
                "project": f"bench_{tag}",
                "source": str(recent),
                "features": FEATURES,
                "ttl_days": TTL_DAYS,
            },
            work / f"feast-{backend}",
            feast=True,
        )
        for tool in ("milepost", "feast"):
            r = results["runs"][f"{tool}-{backend}"]
            print(
                f"  online {tool}/{backend}: materialize {r['materialize']['seconds']:.2f} s "
                f"/ {r['materialize']['peak_mib']:,.0f} MiB; read 1 p50 "
                f"{r['read_one']['p50_ms']:.3f} ms; read {mode['batch_entities']} p50 "
                f"{r['read_batch']['p50_ms']:.2f} ms; push p50 {r['push']['p50_ms']:.2f} ms",
                flush=True,
            )
    return results


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median time, largest peak and the rows written, over repeated runs."""
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mib": max(r["peak_mib"] for r in runs),
        "rows_written": runs[0]["rows_written"],
        "runs": runs,
    }


def run_materialize(mode: dict[str, Any], root: Path) -> dict[str, Any]:
    """Materialize each size's whole file into a fresh SQLite store, a few times per tool."""
    out: dict[str, Any] = {}
    span = {
        "start": (WINDOW_START - timedelta(days=1)).isoformat(),
        "end": (WINDOW_END + timedelta(days=1)).isoformat(),
    }
    for size in mode["materialize"]:
        res: dict[str, Any] = {}
        runs = []
        for rep in range(mode["repetitions"]):
            work = root / f"materialize-{size}" / f"milepost-{rep}"
            definitions = _write_definitions(work, str(data_dir(size)))
            config = {**span, "home": str(work / "home"), "definitions": str(definitions)}
            runs.append(run_worker("milepost-materialize", config, work))
        res["milepost"] = _summary(runs)
        if size in mode["feast_materialize"]:
            parts = sorted(data_dir(size).glob("*.parquet"))
            assert len(parts) == 1, "Feast reads one file: sizes up to 1M rows"
            runs = []
            for rep in range(mode["repetitions"]):
                work = root / f"materialize-{size}" / f"feast-{rep}"
                config = {
                    **span,
                    "repo": str(work / "repo"),
                    "offline": "file",
                    "online": "sqlite",
                    "source": str(parts[0]),
                    "features": FEATURES,
                    "ttl_days": TTL_DAYS,
                }
                runs.append(run_worker("materialize", config, work, feast=True))
            res["feast"] = _summary(runs)
        print(
            f"  materialize {size}: "
            + ", ".join(
                f"{tool} {r['seconds']:.2f} s / {r['peak_mib']:,.0f} MiB, "
                f"{r['rows_written']:,} entities"
                for tool, r in res.items()
            ),
            flush=True,
        )
        out[size] = res
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cmd: list[str], core: int) -> list[str]:
    """``cmd`` pinned to one core with taskset (when there is one and two cores)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


# wrk's own percentiles are corrected for coordinated omission (a slow response adds
# synthetic samples for the requests that could not be sent meanwhile). The script also
# times each request itself (request() to response(), CLOCK_MONOTONIC through LuaJIT's
# FFI) for raw percentiles and a true count of requests over the stall threshold.
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local ids = {%(ids)s}
local template = [[%(template)s]]
local prepared = {}
local i = 0
local started = 0
local threads = {}
raw = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for k, id in ipairs(ids) do
    prepared[k] = wrk.format(nil, nil, nil, (template:gsub("ENTITY", tostring(id))))
  end
end

function request()
  i = i %% #prepared + 1
  started = now_us()
  return prepared[i]
end

function response(status, headers, body)
  raw[#raw + 1] = now_us() - started
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("raw")) do all[#all + 1] = v end
  end
  table.sort(all)
  local n = #all
  local stalls = 0
  for _, v in ipairs(all) do
    if v > %(stall_us)d then stalls = stalls + 1 end
  end
  local function pick(q) return all[math.floor(q * (n - 1) + 0.5) + 1] end
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f, "raw_n": %%d, "raw_p50_us": %%.1f, ' ..
    '"raw_p99_us": %%.1f, "raw_max_us": %%.1f, "stalls": %%d, "socket_errors": %%d, ' ..
    '"status_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, latency.mean, n, pick(0.5), pick(0.99), all[n], stalls,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _wrk(url: str, template: str, entities: list[int], seconds: int, workdir: Path) -> Any:
    script = workdir / "load.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "ids": ", ".join(str(e) for e in entities),
            "template": template,
            "stall_us": int(STALL_MS * 1000),
        }
    )
    cmd = _pinned(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url], 1
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests": raw["requests"],
        "requests_per_second": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "raw_p50_ms": raw["raw_p50_us"] / 1000,
        "raw_p99_ms": raw["raw_p99_us"] / 1000,
        "raw_max_ms": raw["raw_max_us"] / 1000,
        "stalls": raw["stalls"],
        "socket_errors": raw["socket_errors"],
        "errors": raw["status_errors"],
        "client": "wrk -t1 -c1",
    }


def _post(url: str, body: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL built here
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _serve(
    name: str,
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    port: int,
    path: str,
    template: str,
    entities: list[int],
    seconds: int,
    quiet_wait: float,
) -> dict[str, Any]:
    """Start a server pinned to core 0, check one answer, load it, stop it.

    Other work on the machine is handled as ``serving.py`` does, with its helpers: the
    load starts once other processes use under ``QUIET_CPU`` of a CPU (or after
    ``quiet_wait`` seconds), the CPU they took during it is recorded, and a load during
    which they took over ``FOREIGN_CPU_WARN`` of a CPU is run again (up to ``ATTEMPTS``
    times in all; the last one is kept). The selection is on the disturbance, never on the
    latencies, and is the same for every server.
    """
    log = (cwd / f"{name}-server.log").open("w")
    proc = subprocess.Popen(
        _pinned(cmd, 0), cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"The {name} server did not start:\n"
                        + (cwd / f"{name}-server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.2)
        sample = _post(base + path, template.replace("ENTITY", str(entities[0])))
        config = {"url": base, "path": path, "template": template, "entities": entities}
        if shutil.which("wrk"):
            _wrk(base + path, template, entities, 2, cwd)  # warm-up
        else:
            run_worker("http-client", {**config, "seconds": 2}, cwd / "warm-up")
        disturbed: list[float] = []
        for attempt in range(1, ATTEMPTS + 1):
            waited = wait_for_quiet(quiet_wait)
            busy, served, children = (
                _busy_seconds(),
                _tree_seconds(proc.pid),
                _children_seconds(),
            )
            started = time.perf_counter()
            if shutil.which("wrk"):
                result = _wrk(base + path, template, entities, seconds, cwd)
            else:
                result = run_worker("http-client", {**config, "seconds": seconds}, cwd)
            # CPU the machine spent on anything but this server and its load generator, as
            # a share of one CPU (a stolen core is what turns a p99 into a stall)
            used = _tree_seconds(proc.pid) - served + _children_seconds() - children
            foreign = max(0.0, (_busy_seconds() - busy - used) / (time.perf_counter() - started))
            result["foreign_cpu"], result["waited_s"] = foreign, waited
            if foreign <= FOREIGN_CPU_WARN or attempt == ATTEMPTS:
                break
            disturbed.append(foreign)
            print(f"  HTTP {name}: other processes took {foreign:.0%} of a CPU: measuring again")
        result["attempts"], result["disturbed_foreign_cpu"] = attempt, disturbed
        result["load_average"] = os.getloadavg()[0]
        result["sample"] = sample
        result["sample_entity"] = entities[0]
        return result
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_seconds(pid: int) -> float:
    """CPU seconds of a server: its live processes (walked now, with ``serving.py``'s
    ``process_tree``) and, through each one's ``cutime``/``cstime``, the children it has
    reaped. ``feast serve``'s gunicorn replaces its worker every 1,000 requests: a
    snapshot of the tree taken before the load would count the new workers as others'
    work and lose the old ones."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


def run_http(
    mode: dict[str, Any], root: Path, online: dict[str, Any], quiet_wait: float
) -> dict[str, Any]:
    """Both servers over the SQLite stores materialized by the online workers."""
    work = root / "online"
    # the first entity's answer is checked against its newest row before the load
    first = next(iter(online["prepare"]["check"]))
    entities = [int(first), *random.Random(SEED + 1).sample(online["prepare"]["fresh"], 999)]
    features = json.dumps(REFS)
    out: dict[str, Any] = {}
    port = _free_port()
    mp_dir = work / "milepost-sqlite"
    out["milepost"] = _serve(
        "milepost",
        [
            str(BIN / "milepost"),
            "features",
            "serve",
            "--repo",
            "features.py",
            "--port",
            str(port),
        ],
        cwd=mp_dir,
        env=clean_env(MILEPOST_HOME=str(mp_dir / "home")),
        port=port,
        path="/v1/features/online",
        template=f'{{"features": {features}, "entities": [{{"entity_id": ENTITY}}]}}',
        entities=entities,
        seconds=mode["http_seconds"],
        quiet_wait=quiet_wait,
    )
    port = _free_port()
    out["feast"] = _serve(
        "feast",
        [
            str(FEAST_VENV / "bin" / "feast"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=work / "feast-sqlite",
        env=feast_env(),
        port=port,
        path="/get-online-features",
        template=f'{{"features": {features}, "entities": {{"entity_id": [ENTITY]}}}}',
        entities=entities,
        seconds=mode["http_seconds"],
        quiet_wait=quiet_wait,
    )
    for name, r in out.items():
        print(
            f"  HTTP {name}: {r['requests']:,} requests, p50 {r['p50_ms']:.2f} ms, "
            f"p99 {r['p99_ms']:.2f} ms (raw {r['raw_p99_ms']:.2f} ms), "
            f"max {r['max_ms']:.1f} ms, {r['stalls']} over {STALL_MS:g} ms; "
            f"other processes took {r['foreign_cpu']:.0%} of a CPU",
            flush=True,
        )
    return out


# -- the verdicts and the tables ----------------------------------------------------------------


def _http_values(name: str, sample: dict[str, Any]) -> list[Any]:
    """The 10 feature values in a server's answer (Feast's come in no fixed order)."""
    if name == "milepost":
        return [sample["values"][f][0] for f in FEATURES]
    names = sample["metadata"]["feature_names"]
    return [sample["results"][names.index(f)]["values"][0] for f in FEATURES]


def _target(
    label: str,
    milepost: float,
    other: float | None,
    other_name: str,
    unit: str,
    target: str,
    passed: bool,
) -> dict[str, Any]:
    return {
        "label": label,
        "milepost": milepost,
        "other": other,
        "other_name": other_name,
        "unit": unit,
        "ratio": milepost / other if other and unit not in ("cells", "requests") else None,
        "target": target,
        "passed": passed,
    }


def _historical_targets(mode: dict[str, Any], historical: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for size, res in historical.items():
        mp, dd = res["milepost"]["median_seconds"], res["duckdb"]["median_seconds"]
        out.append(
            _target(
                f"historical, {size} rows: time",
                mp,
                dd,
                "DuckDB query",
                "s",
                f"<= {HISTORICAL_VS_DUCKDB:g}x",
                mp <= HISTORICAL_VS_DUCKDB * dd,
            )
        )
        if "feast-file" in res:
            ff = res["feast-file"]["median_seconds"]
            out.append(
                _target(
                    f"historical, {size} rows: time",
                    mp,
                    ff,
                    "Feast file (default)",
                    "s",
                    f"<= {HISTORICAL_VS_FEAST_FILE:g}x (10x faster)",
                    mp <= HISTORICAL_VS_FEAST_FILE * ff,
                )
            )
        if "feast-duckdb" in res:
            fd = res["feast-duckdb"]["median_seconds"]
            out.append(
                _target(
                    f"historical, {size} rows: time",
                    mp,
                    fd,
                    "Feast DuckDB store",
                    "s",
                    "< 1x (faster)",
                    mp < fd,
                )
            )
        diff = res["compare"]["answers"]["milepost"]["cells_differing"]
        out.append(
            _target(
                f"historical, {size} rows: cells differing from the DuckDB query",
                diff,
                None,
                "",
                "cells",
                "0",
                diff == 0,
            )
        )
    largest = mode["historical"][-1]
    peak = historical[largest]["milepost"]["peak_mib"]
    out.append(
        _target(
            f"historical, {largest} rows: peak memory",
            peak,
            historical[largest]["duckdb"]["peak_mib"],
            "DuckDB query",
            "MiB",
            f"< {MEMORY_TARGET_MIB:,.0f} MiB",
            peak < MEMORY_TARGET_MIB,
        )
    )
    return out


def _online_targets(
    mode: dict[str, Any],
    online: dict[str, Any],
    materialize: dict[str, Any],
    http: dict[str, Any],
) -> list[dict[str, Any]]:
    mp, fe = online["runs"]["milepost-sqlite"], online["runs"]["feast-sqlite"]
    out = []
    size = mode["feast_materialize"][-1]
    m, f = materialize[size]["milepost"]["seconds"], materialize[size]["feast"]["seconds"]
    out.append(
        _target(
            f"materialize {size} rows (SQLite): time",
            m,
            f,
            "Feast",
            "s",
            "<= 0.33x",
            m <= MATERIALIZE_VS_FEAST * f,
        )
    )
    sizes = list(materialize)
    if len(sizes) > 1 and "1M" in materialize:
        big = materialize[sizes[-1]]["milepost"]["peak_mib"]
        mid = materialize["1M"]["milepost"]["peak_mib"]
        out.append(
            _target(
                f"materialize peak memory, {sizes[-1]} rows",
                big,
                mid,
                "Milepost, 1M rows",
                "MiB",
                f"<= {MATERIALIZE_GROWTH:g}x",
                big <= MATERIALIZE_GROWTH * mid,
            )
        )
    batch = mode["batch_entities"]
    for key, label, stat, ratio in (
        ("read_one", "online read, 1 entity x 10 features", "p50_ms", READ_ONE_VS_FEAST),
        ("read_one", "online read, 1 entity x 10 features", "p99_ms", READ_ONE_VS_FEAST),
        ("read_batch", f"online read, {batch} entities x 10 features", "p99_ms", None),
    ):
        need = ratio if ratio is not None else READ_BATCH_P99_VS_FEAST
        m, f = mp[key][stat], fe[key][stat]
        out.append(
            _target(f"{label}: {stat[:3]}", m, f, "Feast", "ms", f"<= {need:g}x", m <= need * f)
        )
    if "raw_read_one" in mp:  # against the physical reference: sqlite3 + msgpack alone
        m, r = mp["read_one"]["p50_ms"], mp["raw_read_one"]["p50_ms"]
        out.append(
            _target(
                "online read, 1 entity x 10 features: p50",
                m,
                r,
                "raw sqlite3",
                "ms",
                f"<= {READ_ONE_P50_US:g} us",
                m * 1000 <= READ_ONE_P50_US,
            )
        )
        m, r = mp["read_batch"]["p99_ms"], mp["raw_read_batch"]["p99_ms"]
        out.append(
            _target(
                f"online read, {batch} entities x 10 features: p99",
                m,
                r,
                "raw sqlite3",
                "ms",
                f"<= {READ_BATCH_P99_MS:g} ms",
                m <= READ_BATCH_P99_MS,
            )
        )
    hm, hf = http["milepost"], http["feast"]
    out.append(
        _target(
            "HTTP, 1 entity x 10 features: p50 (wrk)",
            hm["p50_ms"],
            hf["p50_ms"],
            "feast serve",
            "ms",
            f"<= {HTTP_P50_VS_FEAST:g}x",
            hm["p50_ms"] <= HTTP_P50_VS_FEAST * hf["p50_ms"],
        )
    )
    out.append(
        _target(
            "HTTP, 1 entity x 10 features: p99 (wrk)",
            hm["p99_ms"],
            hf["p99_ms"],
            "feast serve",
            "ms",
            f"<= {HTTP_P99_MS:g} ms",
            hm["p99_ms"] <= HTTP_P99_MS,
        )
    )
    out.append(
        _target(
            f"HTTP: requests over {STALL_MS:g} ms (stalls)",
            hm["stalls"],
            hf["stalls"],
            "feast serve",
            "requests",
            "0",
            hm["stalls"] == 0,
        )
    )
    m, f = mp["push"]["p50_ms"], fe["push"]["p50_ms"]
    out.append(
        _target(
            "push 1 row (SQLite): p50",
            m,
            f,
            "Feast",
            "ms",
            f"<= {PUSH_P50_MS:g} ms",
            m <= PUSH_P50_MS,
        )
    )
    return out


def _checks(
    historical: dict[str, Any],
    online: dict[str, Any],
    materialize: dict[str, Any],
    http: dict[str, Any],
) -> list[dict[str, Any]]:
    checks = []
    for size, res in historical.items():
        m = res["milepost"]
        checks.append(
            {
                "name": f"historical {size}: Milepost returned every label row, in order",
                "detail": f"{m['rows']:,} rows, order kept: {m['order_kept']}",
                "passed": m["rows"] == LABEL_ROWS and m["order_kept"],
            }
        )
        checks.append(
            {
                "name": f"historical {size}: the DuckDB query returned every label row",
                "detail": f"{res['duckdb']['rows']:,} rows",
                "passed": res["duckdb"]["rows"] == LABEL_ROWS,
            }
        )
    prep = online["prepare"]
    expected = prep["check"]
    for name, run in online["runs"].items():
        mat = run["materialize"]
        if mat["rows_written"] is not None:
            checks.append(
                {
                    "name": f"{name}: entities in the online store after materialize",
                    "detail": f"{mat['rows_written']:,} of {prep['entities_with_rows']:,}",
                    "passed": mat["rows_written"] == prep["entities_with_rows"],
                }
            )
        wrong = sum(
            a != b
            for e, vals in expected.items()
            for a, b in zip(vals, run["check_values"][e], strict=False)
        )
        present = min(run["read_one"]["present_fraction"], run["read_batch"]["present_fraction"])
        checks.append(
            {
                "name": f"{name}: online values = the newest row ({len(expected)} entities); "
                "timed reads all present",
                "detail": f"{wrong} cells differ; {present:.1%} present",
                "passed": wrong == 0 and present == 1.0,
            }
        )
        checks.append(
            {
                "name": f"{name}: the last pushed row reads back",
                "detail": str(run["push"]["read_back"]),
                "passed": bool(run["push"]["read_back"]),
            }
        )
    for name, r in http.items():
        got = _http_values(name, r["sample"])
        want = expected[str(r["sample_entity"])]
        checks.append(
            {
                "name": f"HTTP {name}: answer = the newest row; responses >= 400",
                "detail": f"{sum(a != b for a, b in zip(got, want, strict=False))} cells differ; "
                f"{r['errors']} errors",
                "passed": got == want and r["errors"] == 0,
            }
        )
    for size, res in materialize.items():
        for tool, r in res.items():
            checks.append(
                {
                    "name": f"materialize {size} rows, {tool}: entities in the online store",
                    "detail": f"{r['rows_written']:,} of {ENTITIES:,}",
                    "passed": r["rows_written"] == ENTITIES,
                }
            )
    return checks


def evaluate(
    mode: dict[str, Any],
    historical: dict[str, Any],
    online: dict[str, Any],
    materialize: dict[str, Any],
    http: dict[str, Any],
) -> dict[str, Any]:
    """Targets, checks and notes as plain data (what the tables show and the JSON keeps)."""
    benchmarks = _historical_targets(mode, historical)
    benchmarks += _online_targets(mode, online, materialize, http)
    checks = _checks(historical, online, materialize, http)
    reps = mode["repetitions"]
    notes = [
        f"Historical times are the median of {reps} calls in one process (Feast's: one call, "
        "which takes seconds); peak memory is ru_maxrss after the calls, interpreter and "
        "imports included. Feast is not run at 10M rows (its default store needs about 3 GB "
        "and 13 s at 1M rows and grows with them).",
        "Feast's default (file) store returns only the label rows that have a feature row "
        "within the TTL (the others are dropped, not null), and for some labels an older "
        "row than the exact answer: see 'rows missing' and 'other value' above.",
        "HTTP: p50/p99/max are wrk's, corrected for coordinated omission (a slow response "
        "adds samples for the requests it held up); 'raw' percentiles and the count of "
        f"requests over {STALL_MS:g} ms are timed per request in the wrk script. Servers "
        "on core 0, wrk on core 1; feast serve runs with its defaults plus --no-access-log "
        "(gunicorn, 1 worker, restarted every 1,000 +- 50 requests). Other work on the "
        f"machine, as benchmarks/serving.py handles it: each load starts once other processes "
        f"use under {QUIET_CPU:.0%} of a CPU, and is run again (up to {ATTEMPTS} times, the "
        f"last kept) when they took over {FOREIGN_CPU_WARN:.0%} of a CPU during it; the "
        "share they took is printed beside the HTTP table ('Others' CPU').",
        "Push: Milepost's push writes the online store and queues the row for the offline "
        "store (written by a background thread each second); Feast's default push "
        "(PushMode.ONLINE) writes the online store only. On SQLite, Milepost commits in WAL "
        "mode with synchronous=NORMAL (no fsync per commit), Feast with SQLite's defaults "
        "(rollback journal, an fsync per commit); Redis has no such difference.",
    ]
    return {"benchmarks": benchmarks, "checks": checks, "notes": notes}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "ms":
        return f"{value:,.3f} ms" if value < 1 else f"{value:,.2f} ms"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,.0f}"


def report(summary: dict[str, Any], raw: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]"}
    versions = meta["versions"]
    table = Table(
        title=f"Features: Milepost {versions['milepost']} vs Feast {versions['feast']} and "
        f"DuckDB {versions['duckdb']} ({meta['mode']} sizes)"
    )
    for name, justify in (
        ("Benchmark", "left"),
        ("Milepost", "right"),
        ("Compared with", "right"),
        ("Milepost / other", "right"),
        ("Target", "left"),
        ("Result", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for b in summary["benchmarks"]:
        other = (
            f"{b['other_name']} {_fmt(b['other'], b['unit'])}" if b["other"] is not None else "-"
        )
        ratio = f"{b['ratio']:.2f}x" if b["ratio"] is not None else "-"
        table.add_row(
            b["label"],
            _fmt(b["milepost"], b["unit"]),
            other,
            ratio,
            b["target"],
            verdict[b["passed"]],
        )
    console.print(table)

    hist = Table(title=f"Historical retrieval: {LABEL_ROWS:,} labels x 10 features")
    for name in ("Feature rows", "Tool", "Time", "Peak memory", "Rows returned", "Cells differing"):
        hist.add_column(name, justify="left" if name in ("Feature rows", "Tool") else "right")
    hist.add_column("of which: rows missing / null / other value", justify="right")
    tools = {
        "milepost": "Milepost",
        "duckdb": "DuckDB query (reference)",
        "feast-file": "Feast, file store (default)",
        "feast-duckdb": "Feast, DuckDB store",
    }
    for size, res in raw["historical"].items():
        for key, label in tools.items():
            if key not in res:
                continue
            r = res[key]
            c = res["compare"]["answers"].get(key)
            hist.add_row(
                size,
                label,
                _fmt(r["median_seconds"], "s"),
                _fmt(r["peak_mib"], "MiB"),
                f"{r['rows']:,}",
                "-" if c is None else f"{c['cells_differing']:,}",
                "-"
                if c is None
                else f"{c['missing_rows']:,} / {c['null_where_value']:,} / {c['other_value']:,}",
            )
    console.print(hist)

    online = raw["online"]
    batch = meta["sizes"]["batch_entities"]
    onl = Table(
        title=f"Materialize {meta['sizes']['online']} rows and read in process "
        f"(p50 / p99; {meta['sizes']['reads_one']:,} and {meta['sizes']['reads_batch']:,} "
        f"calls, {meta['sizes']['pushes']:,} pushes)"
    )
    for name in (
        "Tool, online store",
        "Materialize (once)",
        "Peak memory",
        "Read 1 entity",
        f"Read {batch} entities",
        "Push 1 row",
    ):
        onl.add_column(name, justify="left" if name.startswith("Tool") else "right")
    for name, r in online["runs"].items():

        def pair(d: dict[str, float]) -> str:
            return f"{_fmt(d['p50_ms'], 'ms')} / {_fmt(d['p99_ms'], 'ms')}"

        tool, backend = name.split("-")
        onl.add_row(
            f"{tool.capitalize()}, {'SQLite' if backend == 'sqlite' else 'Redis'}",
            _fmt(r["materialize"]["seconds"], "s"),
            _fmt(r["materialize"]["peak_mib"], "MiB"),
            pair(r["read_one"]),
            pair(r["read_batch"]),
            pair(r["push"]),
        )
        if "raw_read_one" in r:  # the physical reference, measured in the same worker
            onl.add_row(
                "raw sqlite3 + msgpack (reference)",
                "",
                "",
                pair(r["raw_read_one"]),
                pair(r["raw_read_batch"]),
                "",
            )
    console.print(onl)

    scale = Table(
        title="Materialize a whole file into a fresh SQLite store (median time and largest "
        f"peak of {meta['sizes']['repetitions']} runs)"
    )
    for name in ("Feature rows", "Milepost", "Peak memory", "Feast", "Peak memory"):
        scale.add_column(name, justify="left" if name == "Feature rows" else "right")
    for size, res in raw["materialize"].items():
        cells = [size]
        for tool in ("milepost", "feast"):
            r = res.get(tool)
            cells += (
                ["-", "-"] if r is None else [_fmt(r["seconds"], "s"), _fmt(r["peak_mib"], "MiB")]
            )
        scale.add_row(*cells)
    console.print(scale)

    web = Table(
        title=f"HTTP on loopback, 1 entity x 10 features, 1 connection, "
        f"{meta['sizes']['http_seconds']} s ({raw['http']['milepost']['client']})"
    )
    for name in (
        "Server",
        "Requests/s",
        "p50",
        "p99",
        "Max",
        "Raw p50",
        "Raw p99",
        f"Over {STALL_MS:g} ms",
        "Socket errors",
        "Others' CPU",
        "Runs",
    ):
        web.add_column(name, justify="left" if name == "Server" else "right")
    for name, r in raw["http"].items():
        web.add_row(
            "milepost features serve" if name == "milepost" else "feast serve",
            f"{r['requests_per_second']:,.0f}",
            _fmt(r["p50_ms"], "ms"),
            _fmt(r["p99_ms"], "ms"),
            _fmt(r["max_ms"], "ms"),
            _fmt(r["raw_p50_ms"], "ms"),
            _fmt(r["raw_p99_ms"], "ms"),
            f"{r['stalls']:,}",
            f"{r['socket_errors']:,}",
            f"{r['foreign_cpu']:.0%}" if "foreign_cpu" in r else "-",
            str(r.get("attempts", 1)),
        )
    console.print(web)

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
    generated = meta["generated_seconds"]
    console.print(
        f"[bold {colour}]{met}/{total} targets met[/]; checks passed: "
        f"{sum(c['passed'] for c in summary['checks'])}/{len(summary['checks'])}. "
        f"Took {meta['elapsed_seconds']:.0f} s ("
        + (
            "data from the cache"
            if not generated
            else f"generating data {sum(generated.values()):.0f} s"
        )
        + ")."
    )
    out = QUICK_RESULTS_FILE if meta["mode"] == "quick" else RESULTS_FILE
    console.print(f"Results written to {out.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k feature rows only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET_WAIT_SECONDS,
        help="seconds to wait, before each online worker and HTTP load, for other processes "
        "to go quiet "
        f"(default {QUIET_WAIT_SECONDS:g}, as benchmarks/serving.py)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.7:
        print(f"Warning: load average {load_at_start:.1f}; other work skews the figures.")
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    ensure_feast_venv()
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk): HTTP load from a sequential Python client")
    root = Path(tempfile.mkdtemp(prefix="milepost-bench-features-"))
    try:
        sizes = sorted({*mode["historical"], *mode["materialize"], mode["online"]}, key=ROWS.get)
        facts = ensure_data(sizes, root)
        print("Historical retrieval", flush=True)
        historical = run_historical(mode, root)
        print("Materialize, online reads and push", flush=True)
        online = run_online(mode, root, args.quiet_wait)
        print("HTTP", flush=True)
        http = run_http(mode, root, online, args.quiet_wait)
        print("Materialize by range size", flush=True)
        materialize = run_materialize(mode, root)
    finally:
        if args.keep:
            print(f"Kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    summary = evaluate(mode, historical, online, materialize, http)
    online["prepare"]["fresh"] = len(online["prepare"]["fresh"])  # keep the JSON small
    for run in online["runs"].values():
        run.pop("check_values", None)
    online["prepare"].pop("check", None)
    raw = {"historical": historical, "online": online, "materialize": materialize, "http": http}
    first = next(iter(historical.values()))
    feast_run = online["runs"]["feast-sqlite"]
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode_name,
        "sizes": mode,
        "versions": {
            "milepost": first["milepost"]["version"],
            "feast": feast_run["version"],
            "duckdb": first["duckdb"]["version"],
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
        },
        "data": facts,
        "generated_seconds": facts["generated_seconds"],
        "elapsed_seconds": time.perf_counter() - started,
    }
    out = QUICK_RESULTS_FILE if meta["mode"] == "quick" else RESULTS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2, default=str) + "\n")
    report(summary, raw, meta)


if __name__ == "__main__":
    main()
