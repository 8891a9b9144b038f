"""The Milepost and DuckDB halves of ``benchmarks/features.py``, one measurement per process.

Usage: ``python _features_worker.py KIND CONFIG.json``; ``features.py`` starts it once
per measurement, in a fresh directory, and reads the JSON it writes to ``config["out"]``.
KIND is one of ``generate``, ``generate-labels``, ``duckdb-historical``,
``milepost-historical``, ``compare``, ``prepare-online``, ``milepost-online``,
``milepost-materialize`` and ``http-client`` (the fallback load without wrk). Peak
memory is this process's ``ru_maxrss``, read right after the measured call.

It runs in Milepost's environment and imports the shared constants and the data
generator from ``features.py`` (which imports only the standard library at the top).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from features import (
    ENTITIES,
    FEATURES,
    REDIS_URL,
    REFERENCE_SQL,
    REFS,
    ROW_GROUP_ROWS,
    SEED,
    STALL_MS,
    TTL_DAYS,
    WINDOW_END,
    WINDOW_START,
    generate,
    generate_labels,
    hwm_mib,
    maxrss_mib,
    percentiles,
)


def _worker_duckdb_historical(config: dict[str, Any]) -> dict[str, Any]:
    """The hand-written exact query, repeated; its answer is the reference."""
    import duckdb
    import pandas as pd

    labels = pd.read_parquet(config["labels"])
    features = ", ".join(FEATURES)
    masked = ", ".join(
        f"CASE WHEN f.event_timestamp > l.event_timestamp - INTERVAL {TTL_DAYS} DAY "
        f"THEN f.{c} END AS {c}"
        for c in FEATURES
    )
    sql = REFERENCE_SQL.format(
        features=features, masked=masked, files="'" + config["files"].replace("'", "''") + "'"
    )
    baseline = maxrss_mib()
    times, out = [], None
    for _ in range(config["repetitions"]):
        start = time.perf_counter()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("labels", labels)
        out = con.sql(sql).df()
        times.append(time.perf_counter() - start)
        con.close()
    peak = maxrss_mib()
    assert out is not None
    out[["label_id", *FEATURES]].to_parquet(config["answer"])
    return {
        "seconds": times,
        "median_seconds": statistics.median(times),
        "peak_mib": peak,
        "baseline_mib": baseline,
        "rows": len(out),
        "version": duckdb.__version__,
        "threads": duckdb.connect().sql("SELECT current_setting('threads')").fetchall()[0][0],
    }


def _milepost_store(config: dict[str, Any]) -> Any:
    """Configure a fresh home, load the definitions file and apply it."""
    import milepost
    from milepost.features import FeatureStore

    overrides = {"online_uri": config["online_uri"]} if config.get("online_uri") else {}
    milepost.configure(home=Path(config["home"]), **overrides)
    store = FeatureStore(config["definitions"])
    store.apply()
    return store


def _worker_milepost_historical(config: dict[str, Any]) -> dict[str, Any]:
    import duckdb  # noqa: F401 - imported before the clock starts, as the reference does
    import pandas as pd

    import milepost

    store = _milepost_store(config)
    labels = pd.read_parquet(config["labels"])
    baseline = maxrss_mib()
    times, out = [], None
    for _ in range(config["repetitions"]):
        start = time.perf_counter()
        out = store.get_historical_features(labels, REFS)
        times.append(time.perf_counter() - start)
    peak = maxrss_mib()
    assert out is not None
    out[["label_id", *FEATURES]].to_parquet(config["answer"])
    return {
        "seconds": times,
        "median_seconds": statistics.median(times),
        "peak_mib": peak,
        "baseline_mib": baseline,
        "rows": len(out),
        "order_kept": out["label_id"].tolist() == labels["label_id"].tolist(),
        "version": milepost.__version__,
    }


def _compare(reference: Any, answer: Any) -> dict[str, Any]:
    """Cell-by-cell differences of one answer from the reference (NaN equals NaN)."""
    import numpy as np

    returned = len(answer)
    duplicates = int(answer["label_id"].duplicated().sum())
    answer = answer.drop_duplicates("label_id").set_index("label_id")
    missing = int((~reference.index.isin(answer.index)).sum())
    aligned = answer.reindex(reference.index)
    a = reference[FEATURES].to_numpy(dtype="float64")
    b = aligned[FEATURES].to_numpy(dtype="float64")
    a_nan, b_nan = np.isnan(a), np.isnan(b)
    differs = ~((a == b) | (a_nan & b_nan))
    return {
        "rows_returned": returned,
        "duplicate_rows": duplicates,
        "missing_rows": missing,
        "cells_differing": int(differs.sum()),
        "rows_differing": int(differs.any(axis=1).sum()),
        "null_where_value": int((b_nan & ~a_nan).sum()),
        "value_where_null": int((~b_nan & a_nan).sum()),
        "other_value": int((differs & ~a_nan & ~b_nan).sum()),
    }


def _worker_compare(config: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    reference = pd.read_parquet(config["reference"]).set_index("label_id").sort_index()
    values = reference[FEATURES].to_numpy(dtype="float64")
    out: dict[str, Any] = {
        "reference_rows": len(reference),
        "reference_rows_with_values": int((~np.isnan(values)).any(axis=1).sum()),
        "answers": {},
    }
    for name, path in config["answers"].items():
        out["answers"][name] = _compare(reference, pd.read_parquet(path))
    return out


def _worker_prepare_online(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of one size shifted by whole days to end an hour ago; the entities to read.

    Returns the shift, the materialize range, the entities whose newest row is under two
    days old (well inside the TTL) and, for a sample of them, the newest row's values.
    """
    import duckdb

    now = datetime.now(UTC)
    days = (now - timedelta(hours=1) - WINDOW_END) // timedelta(days=1)
    shift_us = days * 86_400 * 1_000_000
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = "'" + config["files"].replace("'", "''") + "'"
    target = config["target"]
    con.execute(
        f"COPY (SELECT entity_id, event_timestamp + to_microseconds({shift_us}) AS "
        f"event_timestamp, created + to_microseconds({shift_us}) AS created, "
        f"{', '.join(FEATURES)} FROM read_parquet({files})) TO '{target}' "
        f"(FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    )
    newest = con.sql(
        f"SELECT entity_id, {', '.join(FEATURES)}, epoch_us(event_timestamp) AS ts "
        f"FROM read_parquet('{target}') QUALIFY row_number() OVER "
        "(PARTITION BY entity_id ORDER BY event_timestamp DESC, created DESC) = 1"
    ).fetchall()
    fresh_after = (now - timedelta(days=2)).timestamp() * 1e6
    fresh = sorted(r[0] for r in newest if r[-1] > fresh_after)
    rng = random.Random(SEED)
    check = sorted(rng.sample(fresh, min(200, len(fresh))))
    by_entity = {r[0]: list(r[1:-1]) for r in newest}
    shift = timedelta(days=days)
    return {
        "shift_days": days,
        "start": (WINDOW_START + shift - timedelta(days=1)).isoformat(),
        "end": (WINDOW_END + shift + timedelta(minutes=30)).isoformat(),
        "entities_with_rows": len(newest),
        "fresh": fresh,
        "check": {str(e): by_entity[e] for e in check},
    }


def _read_loop(store: Any, batches: list[list[int]]) -> dict[str, Any]:
    """Time ``get_online_features`` per call; count present values."""
    for ids in batches[:50]:  # warm-up
        store.get_online_features(REFS, [{"entity_id": e} for e in ids])
    times, present, cells = [], 0, 0
    clock = time.perf_counter_ns
    for ids in batches:
        rows = [{"entity_id": e} for e in ids]
        start = clock()
        response = store.get_online_features(REFS, rows)
        times.append(clock() - start)
        for statuses in response.statuses.values():
            present += statuses.count("present")
            cells += len(statuses)
    return {**percentiles(times), "present_fraction": present / cells}


def _raw_read_loop(db_path: Path, batches: list[list[int]]) -> dict[str, Any]:
    """The physical floor: the same reads straight through sqlite3 and msgpack.

    The fastest plain way found to read the rows and unpack them into Milepost's output
    shape, ``{feature: [value per entity]}``: one entity is one point read; a batch is one
    statement, the keys bound as one JSON array joined to the primary key through
    ``json_each`` (faster than ``IN (?, ...)`` with a parameter per key, which also needs
    a dict to put the rows back in order; 100 point reads are slower still). No refs, no
    TTL, no statuses, no checks, no missing rows handled (every entity read has one).
    """
    import sqlite3

    import msgpack

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    one = "SELECT value FROM online_features WHERE view = ? AND entity = ?"
    many = (
        "SELECT f.value FROM json_each(?1) AS k LEFT JOIN online_features AS f"
        " ON f.view = ?2 AND f.entity = k.value ORDER BY k.key"
    )
    view = "stats:v1"
    unpackb = msgpack.unpackb

    def read(ids: list[int]) -> dict[str, list[Any]]:
        if len(ids) == 1:
            blob = conn.execute(one, (view, f"n:{ids[0]!r}")).fetchone()[0]
            return dict(zip(FEATURES, ([v] for v in unpackb(blob)[2]), strict=True))
        keys = json.dumps([f"n:{e!r}" for e in ids])
        rows = [unpackb(r[0])[2] for r in conn.execute(many, (keys, view)).fetchall()]
        return dict(zip(FEATURES, map(list, zip(*rows, strict=True)), strict=True))

    for ids in batches[:50]:  # warm-up
        read(ids)
    times, present, cells = [], 0, 0
    clock = time.perf_counter_ns
    for ids in batches:
        start = clock()
        columns = read(ids)
        times.append(clock() - start)
        present += sum(v is not None for v in columns[FEATURES[0]])
        cells += len(ids)
    conn.close()
    return {**percentiles(times), "present_fraction": present / cells}


def _worker_milepost_online(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize, read in process (1 and 100 entities per call) and push, on one store."""
    import duckdb  # noqa: F401 - imported before the clock starts, as Feast's is

    import milepost

    store = _milepost_store(config)
    start_at = datetime.fromisoformat(config["start"])
    end_at = datetime.fromisoformat(config["end"])
    result: dict[str, Any] = {"version": milepost.__version__, "backend": config["backend"]}
    try:
        baseline = maxrss_mib()
        start = time.perf_counter()
        written = store.materialize(start_at, end_at, views=["stats"])
        result["materialize"] = {
            "seconds": time.perf_counter() - start,
            "peak_mib": maxrss_mib(),
            "baseline_mib": baseline,
            "rows_written": sum(written.values()),
        }
        result["read_one"] = _read_loop(store, [[e] for e in config["reads_one"]])
        result["read_batch"] = _read_loop(store, config["reads_batch"])
        if config["backend"] == "sqlite":  # the physical reference, same entities, same run
            db_path = Path(config["home"]) / "online.db"
            result["raw_read_one"] = _raw_read_loop(db_path, [[e] for e in config["reads_one"]])
            result["raw_read_batch"] = _raw_read_loop(db_path, config["reads_batch"])
        check = [int(e) for e in config["check"]]
        response = store.get_online_features(REFS, [{"entity_id": e} for e in check])
        result["check_values"] = {
            str(e): [response.values[f][i] for f in FEATURES] for i, e in enumerate(check)
        }
        result["push"] = _milepost_push(store, config)
    finally:
        if config["backend"] == "redis":
            result["redis_keys_deleted"] = _delete_redis_keys(config["redis_prefix"])
    return result


def _milepost_push(store: Any, config: dict[str, Any]) -> dict[str, Any]:
    """One row per ``push`` call; then check the last pushed row reads back."""
    n = config["pushes"]
    now = datetime.now(UTC)
    payloads = [
        [
            {
                "entity_id": i % ENTITIES,
                "event_timestamp": now + timedelta(microseconds=i),
                **{f: float(i) + j / 10 for j, f in enumerate(FEATURES)},
            }
        ]
        for i in range(n + 50)
    ]
    for rows in payloads[:50]:  # warm-up
        store.push("live", rows)
    times = []
    clock = time.perf_counter_ns
    for rows in payloads[50:]:
        start = clock()
        store.push("live", rows)
        times.append(clock() - start)
    last = payloads[-1][0]
    back = store.get_online_features(
        [f"live:{f}" for f in FEATURES], [{"entity_id": last["entity_id"]}]
    )
    store.flush()
    return {
        **percentiles(times),
        "read_back": [back.values[f][0] for f in FEATURES] == [last[f] for f in FEATURES],
    }


def _delete_redis_keys(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()
    return len(keys)


def _worker_milepost_materialize(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize a whole file (the range size) into a fresh SQLite online store."""
    import duckdb  # noqa: F401

    store = _milepost_store(config)
    baseline = maxrss_mib()
    start = time.perf_counter()
    written = store.materialize(
        datetime.fromisoformat(config["start"]),
        datetime.fromisoformat(config["end"]),
        views=["stats"],
    )
    return {
        "seconds": time.perf_counter() - start,
        "peak_mib": maxrss_mib(),
        "baseline_mib": baseline,
        "rows_written": sum(written.values()),
    }


def _worker_http_client(config: dict[str, Any]) -> dict[str, Any]:
    """The fallback load when wrk is missing: one sequential httpx client."""
    import httpx

    bodies = [config["template"].replace("ENTITY", str(e)) for e in config["entities"]]
    headers = {"Content-Type": "application/json"}
    times, errors = [], 0
    clock = time.perf_counter_ns
    with httpx.Client(base_url=config["url"]) as client:
        deadline = time.monotonic() + config["seconds"]
        i = 0
        while time.monotonic() < deadline:
            start = clock()
            response = client.post(config["path"], content=bodies[i % len(bodies)], headers=headers)
            times.append(clock() - start)
            errors += response.status_code >= 400
            i += 1
    stats = percentiles(times)
    return {
        "requests": len(times),
        "requests_per_second": len(times) / config["seconds"],
        **{f"{p}{k}": stats[k] for p in ("", "raw_") for k in ("p50_ms", "p99_ms", "max_ms")},
        "mean_ms": stats["mean_ms"],
        "stalls": sum(t / 1e6 > STALL_MS for t in times),
        "socket_errors": 0,
        "errors": errors,
        "client": "httpx (sequential, Python)",
    }


def main() -> None:
    """Run one measurement; the parent reads the JSON written to ``config['out']``."""
    kind, config_path = sys.argv[1], Path(sys.argv[2])
    config = json.loads(config_path.read_text())
    handlers = {
        "generate": lambda c: generate(c["size"]),
        "generate-labels": lambda c: generate_labels(),
        "duckdb-historical": _worker_duckdb_historical,
        "milepost-historical": _worker_milepost_historical,
        "compare": _worker_compare,
        "prepare-online": _worker_prepare_online,
        "milepost-online": _worker_milepost_online,
        "milepost-materialize": _worker_milepost_materialize,
        "http-client": _worker_http_client,
    }
    if kind not in handlers:
        raise SystemExit(f"unknown worker {kind!r}")
    result = handlers[kind](config)
    result["hwm_mib"] = hwm_mib()
    Path(config["out"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
