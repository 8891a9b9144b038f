"""Materialization watermarks belong to one online store and cover what was written.

Every test runs on each metadata backend (SQLite, PostgreSQL) and each online store
(SQLite, Redis). "Restarted empty" is what a Redis restart without persistence does to
our keys (they are gone) or a deleted SQLite file; "restored from an older snapshot" is
an RDB restore (or a file copied back from a backup).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.errors import Conflict, InvalidInput
from milepost.features import Entity, FeatureStore, FeatureView, Field, FileSource

NOW = datetime.now(UTC).replace(microsecond=0)
END = NOW + timedelta(seconds=1)
TTL = timedelta(days=2)
customer = Entity("customer", join_keys=["customer_id"])
EARLY = (6, 7, 8)  # customers whose only row lies 36 hours back


def _frame() -> pd.DataFrame:
    rows = []
    for c in range(1, 6):
        for hours, spend in ((40, 1.0), (30, 2.0), (2, 3.0)):
            rows.append({"customer_id": c, "ts": NOW - timedelta(hours=hours), "spend": spend * c})
    for c in EARLY:
        rows.append({"customer_id": c, "ts": NOW - timedelta(hours=36), "spend": 100.0 + c})
    return pd.DataFrame(rows)


def _newest(before: datetime) -> dict[int, float]:
    """Each customer's newest spend with event time before ``before``."""
    frame = _frame()
    frame = frame[frame["ts"] < before].sort_values("ts")
    return {int(k): float(v) for k, v in frame.groupby("customer_id")["spend"].last().items()}


def _view(path: Path) -> FeatureView:
    return FeatureView(
        name="spend",
        entity=customer,
        source=FileSource(str(path)),
        timestamp_field="ts",
        ttl=TTL,
        schema=[Field("spend")],
    )


@dataclass
class Env:
    """The project: metadata, an online store that can be wiped, snapshotted, swapped."""

    tmp: Path
    metadata_uri: str
    online_uri: str
    wipe: Callable[[], None]
    snapshot: Callable[[], Callable[[], None]]

    def open(self, online_uri: str | None = None) -> FeatureStore:
        """A fresh runtime (like a new process) on the same metadata and home."""
        milepost.configure(
            home=self.tmp / "home",
            metadata_uri=self.metadata_uri,
            online_uri=online_uri or self.online_uri,
            user="tester",
        )
        return FeatureStore([customer, _view(self.tmp / "spend.parquet")])

    def online(self, fs: FeatureStore, customers: Any = range(1, 9)) -> dict[int, Any]:
        rows = [{"customer_id": c} for c in customers]
        got = fs._service.get_online_features(fs.definitions, ["spend:spend"], rows, now=NOW)
        return dict(zip(customers, got.values["spend"], strict=True))


def _sqlite_env(tmp: Path, metadata_uri: str) -> Env:
    db = tmp / "online.db"
    files = [db, db.with_name("online.db-wal"), db.with_name("online.db-shm")]

    def wipe() -> None:
        milepost.reset()  # the process ends; its file goes with it
        for f in files:
            f.unlink(missing_ok=True)

    def snapshot() -> Callable[[], None]:
        milepost.reset()
        backup = tmp / "backup"
        backup.mkdir(exist_ok=True)
        saved = [f for f in files if f.exists()]
        for f in saved:
            shutil.copy2(f, backup / f.name)

        def restore() -> None:
            wipe()
            for f in saved:
                shutil.copy2(backup / f.name, f)

        return restore

    return Env(tmp, metadata_uri, f"sqlite:///{db}", wipe, snapshot)


def _redis_env(tmp: Path, metadata_uri: str, url: str) -> Env:
    import redis

    prefix = url.partition("prefix=")[2]
    client = redis.Redis.from_url(url.partition("?")[0])

    def keys() -> list[bytes]:
        return list(client.scan_iter(match=f"{prefix}:*", count=1000))

    def wipe() -> None:  # a restart without persistence: our keys are gone
        found = keys()
        if found:
            client.delete(*found)

    def snapshot() -> Callable[[], None]:
        dumped = {k: client.dump(k) for k in keys()}

        def restore() -> None:  # a restart that loads an older RDB file
            wipe()
            for k, v in dumped.items():
                client.restore(k, 0, v)  # type: ignore[arg-type]

        return restore

    return Env(tmp, metadata_uri, url, wipe, snapshot)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def env(request: pytest.FixtureRequest, metadata_uri: str, tmp_path: Path) -> Iterator[Env]:
    _frame().to_parquet(tmp_path / "spend.parquet")
    if request.param == "sqlite":
        made = _sqlite_env(tmp_path, metadata_uri)
    else:
        made = _redis_env(tmp_path, metadata_uri, request.getfixturevalue("redis_url"))
    made.open().apply()
    yield made
    milepost.reset()


def test_incremental_refills_a_store_that_lost_its_data(env: Env) -> None:
    fs = env.open()
    first = fs.materialize_incremental(END)
    assert first["spend:v1"] == 8
    assert env.online(fs) == _newest(END)
    env.wipe()
    fs = env.open()
    with pytest.raises(Conflict, match=r"spend:v1 is not materialized .*lost its data"):
        env.online(fs)  # refused, never read as "missing"
    again = fs.materialize_incremental(END)
    assert again["spend:v1"] == 8
    assert env.online(fs) == _newest(END)
    reason = again.details["spend:v1"].reason
    assert "holds none of its rows" in reason and "refilled from" in reason, reason
    done = fs.materialize_incremental(END)
    assert done["spend:v1"] == 0 and "already" in done.details["spend:v1"].reason


def test_incremental_after_a_range_fills_what_lies_before_it(env: Env) -> None:
    fs = env.open()
    ranged = fs.materialize(NOW - timedelta(hours=24), END)
    assert ranged["spend:v1"] == 5
    assert [env.online(fs)[c] for c in EARLY] == [None, None, None]
    fs = env.open()  # later, in another process
    filled = fs.materialize_incremental(END)
    assert filled["spend:v1"] == 8
    assert env.online(fs) == _newest(END)  # the older rows never replace newer ones
    status = fs.online_status()[0]
    assert status.intervals == [(END - TTL, END)]
    detail = filled.details["spend:v1"]
    assert detail.written == [(END - TTL, NOW - timedelta(hours=24))]
    assert "before" in detail.reason, detail.reason
    assert fs.materialize_incremental(END)["spend:v1"] == 0


def test_a_range_in_the_middle_leaves_both_sides_to_incremental(env: Env) -> None:
    fs = env.open()
    fs.materialize(NOW - timedelta(hours=35), NOW - timedelta(hours=10))
    assert env.online(fs) == {**_newest(NOW - timedelta(hours=10)), **dict.fromkeys(EARLY, None)}
    fs = env.open()
    filled = fs.materialize_incremental(END)
    assert env.online(fs) == _newest(END)
    assert filled.details["spend:v1"].written == [
        (END - TTL, NOW - timedelta(hours=35)),
        (NOW - timedelta(hours=10), END),
    ]


def test_a_store_restored_from_an_older_snapshot_is_refilled(env: Env) -> None:
    fs = env.open()
    fs.materialize_incremental(NOW - timedelta(hours=20))
    restore = env.snapshot()
    fs = env.open()
    fs.materialize_incremental(END)
    assert env.online(fs) == _newest(END)
    restore()  # the store went back in time; the metadata still says "through END"
    fs = env.open()
    assert env.online(fs) == _newest(NOW - timedelta(hours=20))
    again = fs.materialize_incremental(END)
    assert again["spend:v1"] == 8
    assert env.online(fs) == _newest(END)
    assert "older than" in again.details["spend:v1"].reason


def test_retire_then_reactivate_refills(env: Env) -> None:
    fs = env.open()
    fs.materialize_incremental(END)
    fs.retire("spend", 1)  # deletes the version's online rows
    fs.apply()  # the same definition: v1 again
    assert fs.materialize_incremental(END)["spend:v1"] == 8
    assert env.online(fs) == _newest(END)


def test_a_reset_during_materialization_records_nothing(env: Env) -> None:
    fs = env.open()
    calls: list[int] = []

    def progress(view: str, rows: int) -> None:
        if not calls:
            env.wipe() if "redis" in env.online_uri else _forget_sqlite_identity(env)
        calls.append(rows)

    result = fs.materialize_incremental(END, progress=progress)
    assert "reset while" in result.details["spend:v1"].reason
    fs = env.open()
    assert "never materialized into this store" in fs.online_status()[0].describe()
    assert fs.materialize_incremental(END)["spend:v1"] == 8


def _forget_sqlite_identity(env: Env) -> None:
    import sqlite3

    with sqlite3.connect(env.online_uri.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM online_meta")


@pytest.mark.redis
def test_switching_the_online_store_fills_the_new_one(
    metadata_uri: str, tmp_path: Path, redis_url: str
) -> None:
    _frame().to_parquet(tmp_path / "spend.parquet")
    sqlite = _sqlite_env(tmp_path, metadata_uri)
    fs = sqlite.open()
    fs.apply()
    assert fs.materialize_incremental(END)["spend:v1"] == 8
    fs = sqlite.open(redis_url)
    switched = fs.materialize_incremental(END)
    assert switched["spend:v1"] == 8
    assert sqlite.online(fs) == _newest(END)
    assert "holds none of its rows" in switched.details["spend:v1"].reason
    assert fs.online_status()[0].intervals == [(END - TTL, END)]

    fs = sqlite.open()  # back to SQLite: it still holds its rows, and the metadata knows
    assert fs.materialize_incremental(END)["spend:v1"] == 0
    assert sqlite.online(fs) == _newest(END)


@pytest.mark.redis
def test_status_and_serving_know_which_store_holds_a_version(
    metadata_uri: str, tmp_path: Path, redis_url: str
) -> None:
    from sklearn.linear_model import LinearRegression

    _frame().to_parquet(tmp_path / "spend.parquet")
    sqlite = _sqlite_env(tmp_path, metadata_uri)
    fs = sqlite.open()
    fs.apply()
    status = fs.online_status()[0]
    assert status.intervals == [] and "never materialized into this store" in status.describe()
    fs.materialize(NOW - timedelta(hours=24), END)
    assert "missing" in fs.online_status()[0].describe()  # a range: not the whole TTL window
    fs.materialize_incremental(END)
    assert fs.online_status()[0].describe().startswith("through ")
    labels = pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [NOW] * 3, "y": [1, 2, 3]})
    with milepost.start_run():
        train = fs.get_historical_features(labels, ["spend:spend"])
        milepost.log_model(
            LinearRegression().fit(train[["spend"]], train["y"]),
            "spender",
            input_example=train[["spend"]].head(2),
        )
    milepost.get_runtime().features.serving_reader(["spend:v1:spend"])

    fs = sqlite.open(redis_url)  # the new store holds nothing: serving must not read "missing"
    status = fs.online_status()[0]
    assert status.intervals == [] and "never materialized into this store" in status.describe()
    with pytest.raises(InvalidInput, match="not materialized into the current online store"):
        milepost.get_runtime().features.serving_reader(["spend:v1:spend"])
    fs.materialize_incremental(END)
    milepost.get_runtime().features.serving_reader(["spend:v1:spend"])
