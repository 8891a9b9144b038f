"""The Feast half of ``benchmarks/features.py``; runs in ``benchmarks/.venv-feast``.

Usage: ``python _feast_worker.py KIND CONFIG.json`` with KIND ``historical``,
``materialize`` or ``online``. The config names the feature repository directory to create (its
``feature_store.yaml`` is written here: SQLite or Redis online store, the ``file`` or
``duckdb`` offline store), the Parquet source, what to measure and where to write the
results (JSON). ``FEAST_USAGE=False`` comes from the environment. The definitions
mirror Milepost's: entity ``entity_id``, view ``stats`` (10 float features, 3-day
TTL, created timestamp column) and a push source ``live_push`` feeding view ``live``.

Only the standard library, pandas and Feast are imported: this file runs in Feast's
venv, which has no Milepost in it.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

FEATURE_STORE_YAML = """project: {project}
registry: {repo}/registry.db
provider: local
online_store:
{online}
offline_store:
  type: {offline}
entity_key_serialization_version: 3
"""


def maxrss_mib() -> float:
    """This process's peak resident set so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mib() -> float | None:
    """``VmHWM`` from ``/proc/self/status``: the peak of this process image only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def percentiles(nanoseconds: list[int]) -> dict[str, float]:
    """p50, p99, max and mean in ms (nearest rank), as in features.py."""
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


def make_store(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Write the repository's feature_store.yaml, build the store and apply the objects."""
    from feast import (
        Entity,
        FeatureStore,
        FeatureView,
        Field,
        FileSource,
        PushSource,
        ValueType,
    )
    from feast.types import Float64

    repo = Path(config["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    if config["online"] == "redis":
        online = f'  type: redis\n  connection_string: "{config["redis"]}"'
    else:
        online = f"  type: sqlite\n  path: {repo}/online.db"
    (repo / "feature_store.yaml").write_text(
        FEATURE_STORE_YAML.format(
            project=config.get("project", "bench"),
            repo=repo,
            online=online,
            offline=config["offline"],
        )
    )
    features = config["features"]
    ttl = timedelta(days=config["ttl_days"])
    schema = [Field(name=f, dtype=Float64) for f in features]
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="stats_source",
        path=config["source"],
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    stats = FeatureView(name="stats", entities=[entity], ttl=ttl, schema=schema, source=source)
    # a push source needs a batch source: one old row with the same columns
    seed = repo / "live_seed.parquet"
    pd.DataFrame(
        {
            "entity_id": [0],
            "event_timestamp": [pd.Timestamp("2000-01-01", tz="UTC")],
            **{f: [0.0] for f in features},
        }
    ).to_parquet(seed)
    push_source = PushSource(
        name="live_push",
        batch_source=FileSource(
            name="live_seed", path=str(seed), timestamp_field="event_timestamp"
        ),
    )
    live = FeatureView(name="live", entities=[entity], ttl=ttl, schema=schema, source=push_source)
    store = FeatureStore(repo_path=str(repo))
    objects = [entity, source, stats, push_source, live]
    store.apply(objects)
    return store, {"entity": entity, "stats": stats, "live": live}


def historical(config: dict[str, Any]) -> dict[str, Any]:
    """``get_historical_features(...).to_df()`` once (Feast's default store takes seconds)."""
    import feast

    store, _ = make_store(config)
    labels = pd.read_parquet(config["labels"])
    refs = [f"stats:{f}" for f in config["features"]]
    baseline = maxrss_mib()
    start = time.perf_counter()
    out = store.get_historical_features(entity_df=labels, features=refs).to_df()
    seconds = time.perf_counter() - start
    peak = maxrss_mib()
    out[["label_id", *config["features"]]].to_parquet(config["answer"])
    return {
        "seconds": [seconds],
        "median_seconds": seconds,
        "peak_mib": peak,
        "baseline_mib": baseline,
        "rows": len(out),
        "version": feast.__version__,
        "offline": config["offline"],
    }


def read_loop(store: Any, refs: list[str], batches: list[list[int]]) -> dict[str, Any]:
    """Time ``get_online_features(...).to_dict()`` per call; count non-null values."""
    for ids in batches[:50]:  # warm-up
        store.get_online_features(features=refs, entity_rows=[{"entity_id": e} for e in ids])
    times, present, cells = [], 0, 0
    clock = time.perf_counter_ns
    names = [r.split(":")[1] for r in refs]
    for ids in batches:
        rows = [{"entity_id": e} for e in ids]
        start = clock()
        values = store.get_online_features(features=refs, entity_rows=rows).to_dict()
        times.append(clock() - start)
        for name in names:
            present += sum(v is not None for v in values[name])
            cells += len(values[name])
    return {**percentiles(times), "present_fraction": present / cells}


def push(store: Any, config: dict[str, Any]) -> dict[str, Any]:
    """One row per ``store.push`` call (Feast's default: to the online store only)."""
    features = config["features"]
    n = config["pushes"]
    now = datetime.now(UTC)
    frames = [
        pd.DataFrame(
            {
                "entity_id": [i % 10_000],
                "event_timestamp": [pd.Timestamp(now + timedelta(microseconds=i))],
                **{f: [float(i) + j / 10] for j, f in enumerate(features)},
            }
        )
        for i in range(n + 50)
    ]
    for frame in frames[:50]:  # warm-up
        store.push("live_push", frame)
    times = []
    clock = time.perf_counter_ns
    for frame in frames[50:]:
        start = clock()
        store.push("live_push", frame)
        times.append(clock() - start)
    last = frames[-1]
    back = store.get_online_features(
        features=[f"live:{f}" for f in features],
        entity_rows=[{"entity_id": int(last["entity_id"][0])}],
    ).to_dict()
    return {
        **percentiles(times),
        "read_back": [back[f][0] for f in features] == [float(last[f][0]) for f in features],
    }


def count_online_rows(config: dict[str, Any], store: Any) -> int | None:
    """Entities stored for ``stats`` (SQLite only; Redis keys are shared across views)."""
    if config["online"] != "sqlite":
        return None
    project = store.config.project
    with closing(sqlite3.connect(Path(config["repo"]) / "online.db")) as conn:
        row = conn.execute(f'SELECT count(DISTINCT entity_key) FROM "{project}_stats"').fetchone()
    return int(row[0])


def clean_redis(config: dict[str, Any], store: Any, objects: dict[str, Any]) -> int:
    """Delete this project's keys: Feast's teardown, then any key left ending in its name."""
    import redis

    store.teardown()
    host, _, rest = config["redis"].partition(":")
    port, _, db = rest.partition(",db=")
    client = redis.Redis(host=host, port=int(port), db=int(db or 0))
    keys = list(client.scan_iter(match=f"*{config['project']}", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()
    return len(keys)


def materialize(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize one file's range into a fresh store: time, peak memory, entities."""
    import feast

    store, _ = make_store(config)
    baseline = maxrss_mib()
    start = time.perf_counter()
    store.materialize(
        start_date=datetime.fromisoformat(config["start"]),
        end_date=datetime.fromisoformat(config["end"]),
        feature_views=["stats"],
    )
    return {
        "seconds": time.perf_counter() - start,
        "peak_mib": maxrss_mib(),
        "baseline_mib": baseline,
        "rows_written": count_online_rows(config, store),
        "version": feast.__version__,
    }


def online(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize, read in process (1 and 100 entities per call) and push, on one store."""
    import feast

    store, objects = make_store(config)
    refs = [f"stats:{f}" for f in config["features"]]
    result: dict[str, Any] = {"version": feast.__version__, "backend": config["online"]}
    try:
        baseline = maxrss_mib()
        start = time.perf_counter()
        store.materialize(
            start_date=datetime.fromisoformat(config["start"]),
            end_date=datetime.fromisoformat(config["end"]),
            feature_views=["stats"],
        )
        result["materialize"] = {
            "seconds": time.perf_counter() - start,
            "peak_mib": maxrss_mib(),
            "baseline_mib": baseline,
            "rows_written": count_online_rows(config, store),
        }
        result["read_one"] = read_loop(store, refs, [[e] for e in config["reads_one"]])
        result["read_batch"] = read_loop(store, refs, config["reads_batch"])
        check = [int(e) for e in config["check"]]
        values = store.get_online_features(
            features=refs, entity_rows=[{"entity_id": e} for e in check]
        ).to_dict()
        result["check_values"] = {
            str(e): [values[f][i] for f in config["features"]] for i, e in enumerate(check)
        }
        result["push"] = push(store, config)
    finally:
        if config["online"] == "redis":
            result["redis_keys_deleted"] = clean_redis(config, store, objects)
    return result


def main() -> None:
    kind, config_path = sys.argv[1], Path(sys.argv[2])
    config = json.loads(config_path.read_text())
    os.environ.setdefault("FEAST_USAGE", "False")
    if kind == "historical":
        result = historical(config)
    elif kind == "online":
        result = online(config)
    elif kind == "materialize":
        result = materialize(config)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    result["hwm_mib"] = hwm_mib()
    Path(config["out"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
