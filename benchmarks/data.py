"""Data versioning speed and memory: registering a big Parquet file, against DuckDB.

Run it from the repository root::

    .venv/bin/python benchmarks/data.py           # 10 million rows, a few minutes
    .venv/bin/python benchmarks/data.py --quick   # 1 million rows, under a minute

The input is one Parquet file of 20 columns (10 float64, five of them with about 1%
nulls; 5 int64, one a unique row id; 3 low-cardinality strings; 1 timestamp; 1 bool),
generated once from a seeded NumPy RNG in 1-million-row chunks and cached in
``benchmarks/.work/``. Every measurement runs in its own Python process, one after the
other so none competes for the two cores, and each process's peak memory is its own.

``register``
    ``milepost.data.register("bench", path)`` in a fresh Milepost home: stage the file
    (used in place), hash its canonical content, profile every column with DuckDB, copy
    the snapshot into the local artifact store and record the version. Wall clock of
    that one call. Target: at most 2x DuckDB's ``SUMMARIZE`` of the same file, timed in
    the same run.
``peak memory``
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the registering process, read right
    after the call returns (so it includes the interpreter and Milepost's imports).
    Target: < 1 GiB. The parent also polls the process's RSS with psutil every 50 ms as a
    second opinion (it can miss a spike shorter than that).
``DuckDB SUMMARIZE``
    ``duckdb.connect().sql("SUMMARIZE SELECT * FROM read_parquet(...)").fetchall()`` with
    DuckDB's defaults (as many threads as cores, memory limit 80% of RAM), timed from
    ``connect()`` to the last row; peak memory measured the same way.

Reported without a target:

- registering the same file again (it hashes the content, finds the version and
  returns it without profiling or copying);
- a DuckDB full scan that decodes every column (``SELECT max(COLUMNS(*))``), the floor
  for any tool that reads all the values (``count(*)`` alone is answered from the
  Parquet footer, so it would measure nothing);
- ``milepost.data.validate(version, suite)`` with seven checks (not null, between, in
  set, unique on the 10-million-value id column, row count, and two PSI distribution
  checks against the version itself), time and peak memory;
- once, after the repetitions, where register's time and memory go: staging and
  hashing, profiling, and copying into the artifact store, each timed separately
  through Milepost's internal modules.

Times are the median of the repetitions (3 by default) and peak memory is the largest
seen in any of them. Each repetition runs DuckDB first, then Milepost, in a fresh home.

The table is printed and the numbers are written to ``benchmarks/results/data.json``.
A missed target is reported as FAIL; the exit code is 0 all the same (this is a report,
not a test). Worker processes are this script started again with ``--worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK_DIR = HERE / ".work"
RESULTS_FILE = HERE / "results" / "data.json"

# Bump when the generated data changes, so a cached file from an older layout is not reused.
GENERATOR_VERSION = 1
SEED = 20_261_127
CHUNK_ROWS = 1_000_000
SIZES = {"full": 10_000_000, "quick": 1_000_000}

RATIO_TARGET = 2.0
MEMORY_TARGET_MIB = 1024.0
POLL_SECONDS = 0.05

# the generated string columns' categories; s0 is skewed, s1 and s2 uniform
S0_VALUES = ["red", "green", "blue", "yellow", "black"]
S0_WEIGHTS = [0.4, 0.3, 0.15, 0.1, 0.05]
S1_VALUES = [f"country_{i:02d}" for i in range(50)]
S2_VALUES = [f"sku_{i:04d}" for i in range(1000)]
NULLABLE_FLOATS = ["f5", "f6", "f7", "f8", "f9"]
NULL_RATE = 0.01
TS_BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def _mib(n_bytes: float) -> float:
    return n_bytes / (1 << 20)


def _maxrss_mib() -> float:
    """This process's peak resident set so far, in MiB (Linux reports KiB).

    Linux carries ``ru_maxrss`` over ``fork`` and ``exec``: a worker starts at its
    parent's peak at the time it was started. The driver therefore stays small (it
    generates the data in a worker too) and ``_hwm_mib`` cross-checks.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mib() -> float | None:
    """``VmHWM`` from ``/proc/self/status``: the peak of this process image only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- the data -----------------------------------------------------------------------------


def _chunk(rng: Any, start: int, n: int) -> Any:
    """``n`` rows starting at row ``start``, as an Arrow table."""
    import numpy as np
    import pyarrow as pa

    cols: dict[str, Any] = {}
    cols["id"] = pa.array(np.arange(start, start + n, dtype=np.int64))
    cols["i0"] = pa.array(rng.integers(0, 1001, n, dtype=np.int64))
    cols["i1"] = pa.array(rng.integers(0, 1_000_000_000, n, dtype=np.int64))
    cols["i2"] = pa.array(rng.integers(-50, 50, n, dtype=np.int64))
    cols["i3"] = pa.array(rng.poisson(3.0, n).astype(np.int64))
    floats = {
        "f0": rng.standard_normal(n),
        "f1": rng.normal(100.0, 15.0, n),
        "f2": rng.exponential(2.0, n),
        "f3": rng.random(n),
        "f4": rng.lognormal(0.0, 1.0, n),
    }
    for name in NULLABLE_FLOATS:
        floats[name] = rng.normal(0.0, 10.0, n)
    for name, values in floats.items():
        mask = rng.random(n) < NULL_RATE if name in NULLABLE_FLOATS else None
        cols[name] = pa.array(values, mask=mask)
    for name, values, idx in (
        ("s0", S0_VALUES, rng.choice(len(S0_VALUES), n, p=S0_WEIGHTS)),
        ("s1", S1_VALUES, rng.integers(0, len(S1_VALUES), n)),
        ("s2", S2_VALUES, rng.integers(0, len(S2_VALUES), n)),
    ):
        dictionary = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), values)
        cols[name] = dictionary.cast(pa.string())  # plain strings, as most writers produce
    ts = TS_BASE_US + np.arange(start, start + n, dtype=np.int64) * 3_000_000
    ts += rng.integers(0, 1_000_000, n)
    cols["ts"] = pa.array(ts, type=pa.timestamp("us"))
    cols["flag"] = pa.array(rng.random(n) < 0.3)
    return pa.table(cols)


def data_path(rows: int) -> Path:
    """Where the generated file of ``rows`` rows is cached (its facts: the same, .json)."""
    label = f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else str(rows)
    return WORK_DIR / f"data-{label}-v{GENERATOR_VERSION}.parquet"


def generate(rows: int, path: Path) -> dict[str, Any]:
    """Write the Parquet file chunk by chunk (memory stays at about one chunk).

    The facts (row count, null counts, file size) are computed while generating and
    kept next to the file as JSON; the checks compare Milepost's profile with them.
    """
    import numpy as np
    import pyarrow.parquet as pq

    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    nulls = dict.fromkeys(NULLABLE_FLOATS, 0)
    tmp = path.with_suffix(".parquet.tmp")
    writer = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            table = _chunk(rng, start, min(CHUNK_ROWS, rows - start))
            for name in NULLABLE_FLOATS:
                nulls[name] += table.column(name).null_count
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    facts = {
        "rows": rows,
        "columns": 20,
        "seed": SEED,
        "nulls": nulls,
        "size_bytes": path.stat().st_size,
        "generated_seconds": time.perf_counter() - started,
    }
    path.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def ensure_data(rows: int) -> tuple[Path, dict[str, Any]]:
    """The cached file and its facts, generated (in a worker process) when missing."""
    path = data_path(rows)
    facts_path = path.with_suffix(".json")
    if not (path.is_file() and facts_path.is_file()):
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        print(f"Generating {path.relative_to(HERE.parent)} ({rows:,} rows x 20 columns)...")
        with tempfile.TemporaryDirectory(prefix="milepost-bench-gen-") as tmp:
            run_worker("generate", {"file": str(path), "rows": rows}, Path(tmp))
    facts: dict[str, Any] = json.loads(facts_path.read_text())
    print(
        f"Data: {path.relative_to(HERE.parent)}, {facts['rows']:,} rows, "
        f"{_mib(facts['size_bytes']):,.0f} MiB",
        flush=True,
    )
    return path, facts


def suite_checks(reference: str) -> list[Any]:
    """The validation suite's checks (every one passes on the generated data)."""
    from milepost.data import Between, Distribution, InSet, NotNull, RowCount, Unique

    return [
        NotNull(column="f0"),
        Between(column="i0", min=0, max=1000),
        InSet(column="s0", values=S0_VALUES),
        Unique(columns=["id"]),
        RowCount(min=1),
        Distribution(column="f1", reference=reference),
        Distribution(column="s1", reference=reference),
    ]


# -- the workers (each runs in its own process) ---------------------------------------------


def _worker_duckdb(file: str, query: str) -> dict[str, Any]:
    import duckdb

    source = "read_parquet('" + file.replace("'", "''") + "')"
    baseline = _maxrss_mib()
    start = time.perf_counter()
    con = duckdb.connect()
    cur = con.sql(query.format(source=source))
    columns = cur.columns
    rows = cur.fetchall()
    seconds = time.perf_counter() - start
    peak = _maxrss_mib()
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    memory_limit = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.close()
    out: dict[str, Any] = {
        "seconds": seconds,
        "peak_mib": peak,
        "baseline_mib": baseline,
        "version": duckdb.__version__,
        "threads": int(threads),
        "memory_limit": str(memory_limit),
    }
    if columns and columns[0] == "column_name":  # SUMMARIZE: keep a few numbers per column
        keep = ("column_type", "count", "null_percentage", "avg", "approx_unique")
        out["summary"] = {
            r[0]: {k: str(r[columns.index(k)]) for k in keep if k in columns} for r in rows
        }
    return out


def _profile_excerpt(profile: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "f1": {k: profile["f1"].get(k) for k in ("mean", "std", "min", "max")},
        "f5": {k: profile["f5"].get(k) for k in ("nulls", "null_fraction")},
        "i0": {k: profile["i0"].get(k) for k in ("min", "max", "mean")},
        "s0": {"top": profile["s0"].get("top", [])[:2]},
        "nulls": {c: profile[c]["nulls"] for c in NULLABLE_FLOATS},
    }


def _worker_register(file: str, home: str) -> dict[str, Any]:
    import milepost

    milepost.configure(home=Path(home))
    baseline = _maxrss_mib()
    start = time.perf_counter()
    v = milepost.data.register("bench", file)
    first = time.perf_counter() - start
    peak_first = _maxrss_mib()
    start = time.perf_counter()
    again = milepost.data.register("bench", file)
    second = time.perf_counter() - start
    return {
        "version": milepost.__version__,
        "seconds": first,
        "peak_mib": peak_first,
        "baseline_mib": baseline,
        "again_seconds": second,
        "peak_mib_after_again": _maxrss_mib(),
        "ref": v.ref,
        "again_ref": again.ref,
        "num_rows": v.num_rows,
        "num_files": v.num_files,
        "size_bytes": v.size_bytes,
        "content_hash": v.content_hash,
        "again_content_hash": again.content_hash,
        "profile": _profile_excerpt(v.profile),
    }


def _worker_validate(home: str) -> dict[str, Any]:
    import milepost
    from milepost.data import Suite

    milepost.configure(home=Path(home))
    v = milepost.data.get("bench@1")
    suite = Suite(name="bench", checks=suite_checks(v.ref))
    baseline = _maxrss_mib()
    start = time.perf_counter()
    result = milepost.data.validate(v, suite)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mib": _maxrss_mib(),
        "baseline_mib": baseline,
        "success": result.success,
        "num_rows": result.num_rows,
        "checks": [
            {"name": c.name, "kind": c.kind, "success": c.success, "observed": c.observed}
            for c in result.checks
        ],
        "text": result.to_text(),
    }


def _worker_breakdown(file: str, home: str) -> dict[str, Any]:
    """Register's steps one by one, through the internal modules (diagnostic only)."""
    import milepost
    from milepost.data import _ingest, _profile

    runtime = milepost.configure(home=Path(home))
    steps: dict[str, dict[str, float | None]] = {}

    def step(name: str, start: float) -> None:
        steps[name] = {"seconds": time.perf_counter() - start, "peak_mib": _maxrss_mib()}

    steps["imports + configure"] = {"seconds": None, "peak_mib": _maxrss_mib()}
    with tempfile.TemporaryDirectory(prefix="milepost-bench-stage-") as tmp:
        start = time.perf_counter()
        staged = _ingest.stage(file, workdir=Path(tmp))
        digest, rows = _ingest.content_hash(staged.files, staged.schema)
        step("stage + content hash", start)
        start = time.perf_counter()
        _profile.profile_files(staged.files, staged.schema, rows)
        step("profile (DuckDB)", start)
        start = time.perf_counter()
        for path in staged.files:
            runtime.data.blobs.put_file(path)
        step("copy into the artifact store", start)
    return {"steps": steps, "content_hash": digest, "rows": rows}


def worker(kind: str, config_path: Path) -> None:
    """Run one measurement; the parent reads the JSON written to ``config['out']``."""
    config = json.loads(config_path.read_text())
    file, home = config["file"], config.get("home", "")
    if kind == "duckdb-summarize":
        result = _worker_duckdb(file, "SUMMARIZE SELECT * FROM {source}")
    elif kind == "duckdb-scan":
        result = _worker_duckdb(file, "SELECT max(COLUMNS(*)) FROM {source}")
    elif kind == "milepost-register":
        result = _worker_register(file, home)
    elif kind == "milepost-validate":
        result = _worker_validate(home)
    elif kind == "milepost-breakdown":
        result = _worker_breakdown(file, home)
    elif kind == "generate":
        result = generate(config["rows"], Path(file))
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    result["hwm_mib"] = _hwm_mib()
    Path(config["out"]).write_text(json.dumps(result, default=str))


# -- the driver -------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This environment without any MILEPOST_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}


def run_worker(kind: str, config: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run one worker process while polling its RSS; its results plus the polled peak."""
    import psutil

    cwd.mkdir(parents=True, exist_ok=True)
    out = cwd / f"{kind}.json"
    config_path = cwd / f"{kind}.config.json"
    config_path.write_text(json.dumps({**config, "out": str(out)}))
    log_path = cwd / f"{kind}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(config_path)]
    peak = 0
    start = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=clean_env(), cwd=cwd, stdout=log, stderr=log)
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


def run_all(file: Path, repetitions: int, root: Path) -> dict[str, Any]:
    """Every repetition of every worker, then the breakdown; raw results per worker."""
    raw: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("duckdb-scan", "duckdb-summarize", "milepost-register", "milepost-validate")
    }
    # one untimed full read so the first timed one does not pay for a cold page cache
    with file.open("rb") as fh:
        while fh.read(1 << 20):
            pass
    for rep in range(1, repetitions + 1):
        rep_dir = root / f"rep{rep}"
        home = rep_dir / "home"
        for kind, runs in raw.items():
            result = run_worker(kind, {"file": str(file), "home": str(home)}, rep_dir)
            runs.append(result)
            print(
                f"  rep {rep}/{repetitions} {kind:<18} {result['seconds']:6.2f} s, "
                f"peak {result['peak_mib']:,.0f} MiB (polled {result['polled_peak_mib']:,.0f})"
                + (
                    f"; again {result['again_seconds']:.2f} s"
                    if kind == "milepost-register"
                    else ""
                ),
                flush=True,
            )
        shutil.rmtree(rep_dir, ignore_errors=True)  # the snapshot copy is as big as the file
    print("  breakdown of register's steps (once)", flush=True)
    breakdown = run_worker(
        "milepost-breakdown", {"file": str(file), "home": str(root / "breakdown" / "home")}, root
    )
    return {**raw, "milepost-breakdown": breakdown}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _peak(runs: list[dict[str, Any]], key: str = "peak_mib") -> float:
    return max(float(r[key]) for r in runs)


def evaluate(raw: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Targets, reported numbers and checks as plain data (the table and the JSON)."""
    reg, summ = raw["milepost-register"], raw["duckdb-summarize"]
    scan, val = raw["duckdb-scan"], raw["milepost-validate"]
    mp_s, dd_s = _median(reg, "seconds"), _median(summ, "seconds")
    mp_mem, dd_mem = _peak(reg), _peak(summ)
    benchmarks = [
        {
            "name": "register_seconds",
            "label": "register (hash + profile + store) vs SUMMARIZE, s",
            "milepost": mp_s,
            "duckdb": dd_s,
            "ratio": mp_s / dd_s,
            "target": f"<= {RATIO_TARGET:g}x DuckDB",
            "passed": mp_s / dd_s <= RATIO_TARGET,
            "unit": "s",
        },
        {
            "name": "register_peak_mib",
            "label": "peak memory (ru_maxrss), MiB",
            "milepost": mp_mem,
            "duckdb": dd_mem,
            "ratio": mp_mem / dd_mem,
            "target": f"< {MEMORY_TARGET_MIB:,.0f} MiB",
            "passed": mp_mem < MEMORY_TARGET_MIB,
            "unit": "MiB",
        },
    ]
    reported = [
        ("register, polled RSS peak (psutil, 50 ms)", _peak(reg, "polled_peak_mib"), "MiB"),
        ("register again (same content: hash only)", _median(reg, "again_seconds"), "s"),
        ("DuckDB SUMMARIZE, polled RSS peak", _peak(summ, "polled_peak_mib"), "MiB"),
        ("DuckDB full scan, max(COLUMNS(*))", _median(scan, "seconds"), "s"),
        ("register / DuckDB full scan", mp_s / _median(scan, "seconds"), "x"),
        ("DuckDB full scan, peak memory", _peak(scan), "MiB"),
        ("validate, 7 checks", _median(val, "seconds"), "s"),
        ("validate, peak memory (ru_maxrss)", _peak(val), "MiB"),
        ("validate, polled RSS peak", _peak(val, "polled_peak_mib"), "MiB"),
    ]
    first = reg[0]
    nulls_ok = all(r["profile"]["nulls"] == facts["nulls"] for r in reg)
    dd_f1_avg = float(summ[0]["summary"]["f1"]["avg"])
    mp_f1_mean = first["profile"]["f1"]["mean"]
    checks = [
        {
            "name": "register: num_rows of the version",
            "detail": f"{first['num_rows']:,} of {facts['rows']:,}",
            "passed": all(r["num_rows"] == facts["rows"] for r in reg),
        },
        {
            "name": "register: one content hash in every repetition",
            "detail": first["content_hash"][:16] + "...",
            "passed": len({r["content_hash"] for r in reg}) == 1,
        },
        {
            "name": "register again: the same version returned",
            "detail": f"{first['ref']} -> {first['again_ref']}",
            "passed": all(
                r["again_ref"] == r["ref"] and r["again_content_hash"] == r["content_hash"]
                for r in reg
            ),
        },
        {
            "name": "profile: null counts of f5..f9 as generated",
            "detail": f"f5 {first['profile']['nulls']['f5']:,} of {facts['nulls']['f5']:,}",
            "passed": nulls_ok,
        },
        {
            "name": "profile: mean of f1 (Milepost / DuckDB SUMMARIZE)",
            "detail": f"{mp_f1_mean:.6f} / {dd_f1_avg:.6f}",
            "passed": abs(mp_f1_mean - dd_f1_avg) < 1e-6 * abs(dd_f1_avg),
        },
        {
            "name": "breakdown: the same content hash as register",
            "detail": raw["milepost-breakdown"]["content_hash"][:16] + "...",
            "passed": raw["milepost-breakdown"]["content_hash"] == first["content_hash"],
        },
        {
            "name": "validate: every check passes",
            "detail": "{} of {} ({})".format(
                sum(c["success"] for c in val[0]["checks"]),
                len(val[0]["checks"]),
                ", ".join(c["kind"] for c in val[0]["checks"]),
            ),
            "passed": all(r["success"] for r in val),
        },
    ]
    n = len(reg)
    timing = (
        f"Times are the median of {n} repetitions; peak memory is the largest of the {n}."
        if n > 1
        else "Times and peak memory are from a single repetition."
    )
    notes = [
        f"{timing} "
        f"DuckDB {summ[0]['version']} with its defaults: {summ[0]['threads']} threads, "
        f"memory_limit {summ[0]['memory_limit']}.",
        "SUMMARIZE computes more per column than Milepost's profile (t-digest quartiles "
        "and a HyperLogLog distinct count for every column, where Milepost takes reservoir "
        "quantiles of numbers and distinct counts of text only), but Milepost also hashes "
        "every value and copies the file; the full scan is the floor for reading it all.",
        "Peak memory includes each process's interpreter and imports: "
        f"{_peak(reg, 'baseline_mib'):,.0f} MiB for Milepost after configure(), "
        f"{_peak(summ, 'baseline_mib'):,.0f} MiB for DuckDB before connect().",
    ]
    return {
        "benchmarks": benchmarks,
        "reported": [{"label": lbl, "value": v, "unit": u} for lbl, v, u in reported],
        "breakdown": raw["milepost-breakdown"]["steps"],
        "checks": checks,
        "notes": notes,
    }


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:,.2f}x"
    return f"{value:,.2f} s" if unit == "s" else f"{value:,.0f} MiB"


def report(summary: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 132)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]"}
    table = Table(
        title=f"Data: Milepost {meta['versions']['milepost']} register vs DuckDB "
        f"{meta['versions']['duckdb']} SUMMARIZE ({meta['rows']:,} rows x 20 columns, "
        f"{_mib(meta['file_bytes']):,.0f} MiB Parquet)"
    )
    table.add_column("Benchmark")
    table.add_column("Milepost", justify="right")
    table.add_column("DuckDB", justify="right")
    table.add_column("Milepost / DuckDB", justify="right")
    table.add_column("Target")
    table.add_column("Result", justify="center")
    for b in summary["benchmarks"]:
        table.add_row(
            b["label"],
            _fmt(b["milepost"], b["unit"]),
            _fmt(b["duckdb"], b["unit"]),
            f"{b['ratio']:.2f}x",
            b["target"],
            verdict[b["passed"]],
        )
    console.print(table)
    reported = Table(title="Reported (no target)")
    reported.add_column("Measure")
    reported.add_column("Value", justify="right")
    for r in summary["reported"]:
        reported.add_row(r["label"], _fmt(r["value"], r["unit"]))
    console.print(reported)
    steps = Table(title="Where register goes (one run, step by step; peak memory so far)")
    steps.add_column("Step")
    steps.add_column("Time", justify="right")
    steps.add_column("Peak memory", justify="right")
    for name, s in summary["breakdown"].items():
        took = "-" if s["seconds"] is None else _fmt(s["seconds"], "s")
        steps.add_row(name, took, _fmt(s["peak_mib"], "MiB"))
    console.print(steps)
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
        f"Took {meta['elapsed_seconds']:.0f} s ("
        + (
            "data file from the cache"
            if meta["generation_seconds"] is None
            else f"generating the data file {meta['generation_seconds']:.0f} s"
        )
        + ")."
    )
    console.print(f"Results written to {RESULTS_FILE.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 million rows (under a minute)")
    parser.add_argument(
        "--repetitions", type=int, default=3, help="repetitions per measurement (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    rows = SIZES[mode]
    cached = data_path(rows).is_file() and data_path(rows).with_suffix(".json").is_file()
    gen_start = time.perf_counter()
    file, facts = ensure_data(rows)
    generation_seconds = None if cached else time.perf_counter() - gen_start
    root = Path(tempfile.mkdtemp(prefix="milepost-bench-data-"))
    try:
        print(f"Measuring in {root}: {args.repetitions} repetition(s)", flush=True)
        raw = run_all(file, max(1, args.repetitions), root)
    finally:
        if args.keep:
            print(f"Kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    summary = evaluate(raw, facts)
    import psutil

    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "rows": rows,
        "file": str(file.relative_to(HERE.parent)),
        "file_bytes": facts["size_bytes"],
        "repetitions": len(raw["milepost-register"]),
        "versions": {
            "milepost": raw["milepost-register"][0]["version"],
            "duckdb": raw["duckdb-summarize"][0]["version"],
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        },
        "generation_seconds": generation_seconds,
        "elapsed_seconds": time.perf_counter() - started,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps({**meta, **summary, "facts": facts, "raw": raw}, indent=2, default=str) + "\n"
    )
    report(summary, meta)


if __name__ == "__main__":
    main()
