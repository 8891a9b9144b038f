"""The prediction log in an S3 artifact store (moto on 127.0.0.1), read from another host.

Each "host" is its own home directory, its own connection to one shared metadata
database and its own S3 client, in this process: two replicas' loggers write, a third
home reads through ``milepost.configure`` (as a monitor or the canary controller would).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import BackendUnavailable
from milepost.monitoring import _segments, prediction_counts, read_predictions, variant_stats
from milepost.serving.backends.sql import SqlServingStore
from milepost.serving.feedback import find_request
from milepost.serving.logger import PredictionLogger, new_request_id
from milepost.stores.blobs_s3 import S3BlobStore
from milepost.stores.metadata import MetadataStore

pytestmark = pytest.mark.s3

EP = "churn-ep"


class FakeTime:
    """A clock that moves only when ``sleep`` is called (flush retries, no waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _row(rid: str, i: int, variant: str, at: int) -> dict[str, Any]:
    return {
        "request_id": rid,
        "row": i,
        "ts": at,
        "endpoint": EP,
        "variant": variant,
        "model": "churn",
        "version": 1,
        "role": "primary",
        "key": rid,
        "features": '{"age": 40}',
        "prediction": str(i % 2),
        "latency_ms": 1.5 + i,
        "status": "ok",
        "error": None,
    }


class Host:
    """One machine: a home, a connection to the shared database, an S3 client."""

    def __init__(self, root: Path, name: str, meta_uri: str, art_uri: str, s3: str) -> None:
        self.home = root / name
        self.home.mkdir(parents=True)
        self.db = MetadataStore(meta_uri)
        self.store = SqlServingStore(
            self.db, storage_options={"client_kwargs": {"endpoint_url": s3}}
        )
        self.blobs = S3BlobStore(art_uri, endpoint_url=s3)

    def logger(self, **kw: Any) -> PredictionLogger:
        return PredictionLogger(
            EP, self.home / "predictions", self.store, blobs=self.blobs, interval=3600, **kw
        )

    def close(self) -> None:
        self.db.engine.dispose()


@pytest.fixture
def shared(s3_server: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    return {
        "meta_uri": f"sqlite:///{(tmp_path / 'shared-meta.db').as_posix()}",
        "art_uri": f"s3://{s3_server['bucket']}/plog-{tmp_path.name}",
        "s3": s3_server["endpoint_url"],
    }


def _reader(tmp_path: Path, shared: dict[str, str]) -> Any:
    """A third host: its own home, configured like a monitor's."""
    return milepost.configure(
        home=tmp_path / "host-c",
        metadata_uri=shared["meta_uri"],
        artifact_uri=shared["art_uri"],
        s3_endpoint_url=shared["s3"],
    )


def test_two_replicas_write_to_s3_and_a_third_host_reads_both(
    tmp_path: Path, shared: dict[str, str]
) -> None:
    a = Host(tmp_path, "host-a", shared["meta_uri"], shared["art_uri"], shared["s3"])
    b = Host(tmp_path, "host-b", shared["meta_uri"], shared["art_uri"], shared["s3"])
    now = time.time_ns() // 1_000_000
    rids: dict[str, list[str]] = {"replica-a": [], "replica-b": []}
    for host, variant in ((a, "replica-a"), (b, "replica-b")):
        logger = host.logger()
        for k in range(30):
            rid = new_request_id(now + k)
            rids[variant].append(rid)
            for i in range(2):  # two predicted rows per request
                logger.append(_row(rid, i, variant, now + k))
        logger.flush()
        logger.close()

    rt = _reader(tmp_path, shared)
    try:
        locations = rt.serving.store.segments(EP)
        assert len(locations) == 2
        assert all(loc.startswith(shared["art_uri"] + "/sha256/") for loc in locations)
        for host in (a, b):  # nothing of the log stayed on the writers' disks
            assert not list(host.home.rglob("*.parquet"))

        table = read_predictions(rt.serving.store, EP, since_ms=now - 1000)
        assert table is not None and table.num_rows == 120
        got = table.select(["request_id", "row", "variant"]).to_pylist()
        assert sorted((r["request_id"], r["row"]) for r in got) == sorted(
            (rid, i) for v in rids.values() for rid in v for i in range(2)
        )
        assert {r["variant"] for r in got} == {"replica-a", "replica-b"}
        one = read_predictions(rt.serving.store, EP, since_ms=now - 1000, variant="replica-b")
        assert one is not None and set(one.column("request_id").to_pylist()) == set(
            rids["replica-b"]
        )

        stats = variant_stats(rt.serving.store, EP, since_ms=now - 1000)
        assert {v: s.requests for v, s in stats.items()} == {"replica-a": 30, "replica-b": 30}
        assert stats["replica-a"].p50_ms == pytest.approx(1.5)  # row 0 of each request
        counts = prediction_counts(
            rt.serving.store, EP, ["replica-a", "replica-b"], since_ms=now - 1000
        )
        assert counts == [{"0": 30, "1": 30}, {"0": 30, "1": 30}]

        # feedback on the third host finds a request answered by replica a
        found = find_request(rids["replica-a"][7], endpoint=EP, store=rt.serving.store, logger=None)
        assert found.rows == 2 and found.status == "ok"
    finally:
        milepost.reset()
        a.close()
        b.close()


def test_a_tampered_segment_in_s3_is_a_clear_error(tmp_path: Path, shared: dict[str, str]) -> None:
    a = Host(tmp_path, "host-a", shared["meta_uri"], shared["art_uri"], shared["s3"])
    now = time.time_ns() // 1_000_000
    logger = a.logger()
    logger.append(_row(new_request_id(now), 0, "v1", now))
    logger.close()
    (location,) = a.store.segments(EP)
    a.blobs.fs.pipe_file(location, b"PAR1 not the bytes that were written")
    try:
        with pytest.raises(BackendUnavailable, match="does not match its checksum"):
            read_predictions(a.store, EP, since_ms=now - 1000)
    finally:
        a.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_s3_down_the_rows_wait_and_are_written_once_when_it_is_back(
    tmp_path: Path, shared: dict[str, str]
) -> None:
    """The object store stops answering: flush retries and fails clearly, the rows stay
    queued (feedback still finds them), and once S3 is back every row is written once."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    own = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    own.start()
    endpoint = f"http://127.0.0.1:{port}"
    art = f"s3://milepost/down-{tmp_path.name}"  # moto's state is per process: same bucket
    host = Host(tmp_path, "host-a", shared["meta_uri"], art, endpoint)
    # fail fast while down (no s3fs or botocore retries, each waiting in real time):
    # the logger does the retrying, on the injected clock
    host.blobs.fs.retries = 1
    host.blobs.fs.config_kwargs = {"retries": {"total_max_attempts": 1}}
    fake = FakeTime()
    logger = host.logger(retry_for=5, clock=fake.clock, sleep=fake.sleep)
    now = time.time_ns() // 1_000_000
    rid = new_request_id(now)
    try:
        logger.append(_row(rid, 0, "v1", now))
        logger.flush()  # S3 up: one segment
        own.stop()  # S3 goes down
        rest = [new_request_id(now + k) for k in range(1, 6)]
        for k, r in enumerate(rest, start=1):
            logger.append(_row(r, 0, "v1", now + k))
        with pytest.raises(BackendUnavailable, match="5 prediction log rows") as failed:
            logger.flush()
        assert "object store" in str(failed.value)
        assert len(fake.sleeps) >= 2  # retried with backoff before giving up
        assert logger.queued == 5 and len(logger.pending(rest[2])) == 1
        assert len(host.store.segments(EP)) == 1  # nothing half-registered

        own = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        own.start()  # S3 is back
        logger.flush()
        assert logger.queued == 0 and logger.dropped == 0
        reader = SqlServingStore(
            host.db, storage_options={"client_kwargs": {"endpoint_url": endpoint}}
        )
        table = read_predictions(reader, EP, since_ms=now - 1000)
        assert table is not None
        assert sorted(table.column("request_id").to_pylist()) == sorted([rid, *rest])
    finally:
        logger.close()
        own.stop()
        host.close()


def test_registration_fails_after_the_upload_no_row_is_read_twice(
    tmp_path: Path, shared: dict[str, str]
) -> None:
    """The blob is in S3 but the database refused the segment: the retry registers one
    segment, and readers see each row once."""

    class Flaky(SqlServingStore):
        fail = 2

        def add_segments(self, rows: Any) -> None:
            if self.fail:
                self.fail -= 1
                raise BackendUnavailable("The metadata database is locked (injected).")
            super().add_segments(rows)

    host = Host(tmp_path, "host-a", shared["meta_uri"], shared["art_uri"], shared["s3"])
    flaky = Flaky(host.db, storage_options=host.store.storage_options)
    fake = FakeTime()
    logger = PredictionLogger(
        EP,
        host.home / "predictions",
        flaky,
        blobs=host.blobs,
        interval=3600,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    now = time.time_ns() // 1_000_000
    rids = [new_request_id(now + k) for k in range(10)]
    try:
        for k, rid in enumerate(rids):
            logger.append(_row(rid, 0, "v1", now + k))
        logger.flush()
        assert len(fake.sleeps) == 2
        assert len(host.store.segments(EP)) == 1
        table = read_predictions(host.store, EP, since_ms=now - 1000)
        assert table is not None and sorted(table.column("request_id").to_pylist()) == rids
    finally:
        logger.close()
        host.close()


def test_the_segment_cache_stays_within_its_bound(
    tmp_path: Path, shared: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = Host(tmp_path, "host-a", shared["meta_uri"], shared["art_uri"], shared["s3"])
    now = time.time_ns() // 1_000_000
    logger = host.logger()
    for k in range(3):  # three segments
        logger.append(_row(new_request_id(now + k), 0, "v1", now + k))
        logger.flush()
    logger.close()
    locations = host.store.segments(EP)
    assert len(locations) == 3
    sizes = [host.blobs.fs.size(loc) for loc in locations]
    monkeypatch.setattr(_segments, "CACHE_BYTES", max(sizes) + 1)  # room for one
    try:
        table = read_predictions(host.store, EP, since_ms=now - 1000)
        assert table is not None and table.num_rows == 3  # all three held while read
        cache = _segments._state()
        assert cache.size <= max(sizes) + 1 and len(cache.files) == 1
        assert not cache.pins
        assert cache.dir is not None
        assert len(list(cache.dir.glob("*.parquet"))) == 1
    finally:
        host.close()
