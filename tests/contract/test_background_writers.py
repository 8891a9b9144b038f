"""The three users of the one batcher (metric writer, push buffer, prediction log) against
the real stores of every metadata backend, made to fail by a thin wrapper that raises
before delegating: a store that fails N times then recovers loses nothing; one that stays
down fails ``flush()`` and ``close()`` with a clear error and keeps the items; the bound
follows each user's policy; a process that exits without flushing still writes.

Retries run on an injected clock and sleeper, so no test here waits for a backoff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import prometheus_client
import pyarrow.parquet as pq
import pytest

import milepost
from milepost import Client
from milepost._context import Runtime
from milepost.errors import BackendUnavailable
from milepost.features import Entity, FeatureStore, FeatureView, Field, PushSource
from milepost.features.push import PushBuffer
from milepost.serving.feedback import find_request
from milepost.serving.logger import PredictionLogger, new_request_id
from milepost.tracking._writer import MetricWriter
from milepost.tracking.backends.sql import MetricRow


class FakeTime:
    """A clock that moves only when ``sleep`` is called."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Failing:
    """Wraps a real store: ``method`` raises ``error`` its next ``fail`` calls, or while
    ``down``; everything else goes to the real store."""

    def __init__(self, real: Any, method: str, error: Exception, fail: int = 0) -> None:
        self._real = real
        self._method = method
        self._error = error
        self.fail = fail
        self.down = False
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name != self._method:
            return attr

        def failing(*args: Any, **kwargs: Any) -> Any:
            if self.down or self.fail > 0:
                self.fail -= 1
                self.failures += 1
                raise self._error
            return attr(*args, **kwargs)

        return failing


def _locked() -> BackendUnavailable:
    return BackendUnavailable("The metadata database is locked (injected).")


# -- the metric writer ---------------------------------------------------------------------


def _metric_writer(failing: Failing, fake: FakeTime, **kw: Any) -> MetricWriter:
    return MetricWriter(
        failing,
        flush_interval=3600,
        batch_size=10**9,
        heartbeat_interval=3600,
        live_runs=list,
        clock=fake.clock,
        sleep=fake.sleep,
        **kw,
    )


def _metric_rows(run: Any, n: int) -> list[MetricRow]:
    ts = int(time.time() * 1000)
    return [(run.run_id, run.experiment_id, "loss", float(i), ts, i) for i in range(n)]


def _history(run_id: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in Client().get_metric_history(run_id, "loss")]


def test_metric_writer_rides_out_failures_and_loses_nothing(runtime: Runtime) -> None:
    fake = FakeTime()
    failing = Failing(runtime.tracking.store, "insert_metrics", _locked(), fail=5)
    writer = _metric_writer(failing, fake)
    with milepost.start_run() as run:
        writer.extend(_metric_rows(run, 100))
        writer.flush()
    assert _history(run.run_id) == [(i, float(i)) for i in range(100)]
    assert failing.failures == 5 and len(fake.sleeps) == 5
    assert writer.pending == 0 and writer.last_error is None
    writer.close()


def test_metric_writer_on_a_store_that_stays_down_fails_clearly(runtime: Runtime) -> None:
    fake = FakeTime()
    failing = Failing(runtime.tracking.store, "insert_metrics", _locked())
    failing.down = True
    writer = _metric_writer(failing, fake, retry_for=5.0)
    with milepost.start_run() as run:
        writer.extend(_metric_rows(run, 10))
        with pytest.raises(BackendUnavailable) as failed:
            writer.flush()
        assert failed.value.message == (
            "10 metric values could not be written in 5 s of retries: "
            "The metadata database is locked (injected)."
        )
        assert "Check that the metadata database is reachable" in str(failed.value.hint)
        with pytest.raises(BackendUnavailable, match=r"^10 metric values could not be written"):
            writer.close()
        assert writer.pending == 10
        failing.down = False
        writer.flush()  # nothing was lost
    assert _history(run.run_id) == [(i, float(i)) for i in range(10)]


def test_metric_writer_at_its_bound_blocks_then_refuses_the_value(runtime: Runtime) -> None:
    fake = FakeTime()
    failing = Failing(runtime.tracking.store, "insert_metrics", _locked())
    failing.down = True
    writer = _metric_writer(failing, fake, max_pending=10, retry_for=0.05)
    with milepost.start_run() as run:
        rows = _metric_rows(run, 11)
        writer.extend(rows[:10])
        with pytest.raises(BackendUnavailable) as full:
            writer.append(rows[10])
        assert full.value.message.startswith(
            "10 metric values are waiting to be written, the limit of 10; this one was not "
            "queued after waiting 0.05 s"
        )
        failing.down = False
        writer.close()
    assert _history(run.run_id) == [(i, float(i)) for i in range(10)]


# -- the push buffer -----------------------------------------------------------------------


@pytest.fixture
def store(runtime: Runtime) -> FeatureStore:
    """A feature store with one view that reads push source ``clicks``."""
    customer = Entity("customer", join_keys=["customer_id"])
    clicks = FeatureView(
        name="clicks",
        entity=customer,
        source=PushSource("clicks"),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("clicks", "int")],
    )
    fs = FeatureStore([customer, clicks])
    fs.apply()
    return fs


def _full_disk() -> OSError:
    return OSError(28, "No space left on device (injected)")


def _clicks(now: datetime, start: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [1, 2], "ts": [now, now], "clicks": [start, start + 1]}
    ).astype({"ts": "datetime64[us, UTC]"})


def _offline_clicks(fs: FeatureStore, at: datetime) -> list[int]:
    labels = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at, at]})
    return list(fs.get_historical_features(labels, ["clicks:clicks"])["clicks"])


def test_push_buffer_rides_out_failures_and_loses_nothing(
    runtime: Runtime,
    store: FeatureStore,
) -> None:
    fake = FakeTime()
    offline = Failing(runtime.features.offline, "push_dir", _full_disk(), fail=3)
    buffer = PushBuffer(offline, interval=3600, clock=fake.clock, sleep=fake.sleep)  # type: ignore[arg-type]
    now = datetime.now(UTC).replace(microsecond=0)
    buffer.append("clicks", _clicks(now, 3))
    buffer.append("clicks", [{"customer_id": 1, "ts": now + timedelta(seconds=1), "clicks": 7}])
    assert buffer.pending_rows == 3
    buffer.flush()
    assert offline.failures == 3 and len(fake.sleeps) == 3 and buffer.pending_rows == 0
    assert _offline_clicks(store, now + timedelta(seconds=2)) == [7, 4]
    buffer.close()


def test_push_buffer_on_a_store_that_stays_down_fails_clearly(
    runtime: Runtime,
    store: FeatureStore,
) -> None:
    fake = FakeTime()
    offline = Failing(runtime.features.offline, "push_dir", _full_disk())
    offline.down = True
    buffer = PushBuffer(offline, interval=3600, clock=fake.clock, sleep=fake.sleep)  # type: ignore[arg-type]
    now = datetime.now(UTC).replace(microsecond=0)
    buffer.append("clicks", _clicks(now, 3))
    with pytest.raises(BackendUnavailable) as failed:
        buffer.flush()
    assert failed.value.message == (
        "2 pushed rows could not be written in 10 s of retries: "
        "OSError: [Errno 28] No space left on device (injected)"
    )
    assert "the online store already has these rows" in str(failed.value.hint)
    with pytest.raises(BackendUnavailable):
        buffer.close()
    assert buffer.pending_rows == 2
    offline.down = False
    buffer.flush()
    assert _offline_clicks(store, now + timedelta(seconds=1)) == [3, 4]


def test_push_buffer_at_its_bound_blocks_then_refuses_the_push(
    runtime: Runtime,
    store: FeatureStore,
) -> None:
    offline = Failing(runtime.features.offline, "push_dir", _full_disk())
    offline.down = True
    buffer = PushBuffer(offline, interval=3600, max_pending_rows=2, block_for=0.05)  # type: ignore[arg-type]
    now = datetime.now(UTC).replace(microsecond=0)
    buffer.append("clicks", _clicks(now, 3))
    with pytest.raises(BackendUnavailable, match=r"^2 pushed rows are waiting to be written"):
        buffer.append("clicks", _clicks(now, 5))
    offline.down = False
    buffer.close()
    assert _offline_clicks(store, now + timedelta(seconds=1)) == [3, 4]


# -- the prediction log --------------------------------------------------------------------


def _log_row(rid: str, i: int, endpoint: str) -> dict[str, Any]:
    return {
        "request_id": rid,
        "row": i,
        "ts": time.time_ns() // 1_000_000,
        "endpoint": endpoint,
        "variant": "v1",
        "model": "churn",
        "version": 1,
        "role": "primary",
        "key": "k",
        "features": "{}",
        "prediction": "1",
        "latency_ms": 1.0,
        "status": "ok",
        "error": None,
    }


def _prediction_logger(
    runtime: Runtime, failing: Failing, fake: FakeTime, endpoint: str, **kw: Any
) -> PredictionLogger:
    return PredictionLogger(
        endpoint,
        runtime.settings.home / "predictions",
        failing,  # type: ignore[arg-type]
        interval=3600,
        clock=fake.clock,
        sleep=fake.sleep,
        **kw,
    )


def _segment_rows(runtime: Runtime, endpoint: str) -> int:
    files = sorted((runtime.settings.home / "predictions" / endpoint).glob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


def test_prediction_log_rides_out_failures_and_loses_nothing(runtime: Runtime) -> None:
    fake = FakeTime()
    failing = Failing(runtime.serving.store, "add_segments", _locked(), fail=4)
    logger = _prediction_logger(runtime, failing, fake, "flaky-ep")
    rid = new_request_id()
    for i in range(10):
        logger.append(_log_row(rid, i, "flaky-ep"))
    logger.flush()
    assert failing.failures == 4 and len(fake.sleeps) == 4
    found = find_request(rid, endpoint="flaky-ep", store=runtime.serving.store, logger=None)
    assert found.rows == 10
    # the segments whose registration failed were removed: each row is in one segment
    assert _segment_rows(runtime, "flaky-ep") == 10
    logger.close()


def test_prediction_log_on_a_store_that_stays_down_fails_clearly(runtime: Runtime) -> None:
    fake = FakeTime()
    failing = Failing(runtime.serving.store, "add_segments", _locked())
    failing.down = True
    logger = _prediction_logger(runtime, failing, fake, "down-ep")
    rid = new_request_id()
    for i in range(3):
        logger.append(_log_row(rid, i, "down-ep"))
    with pytest.raises(BackendUnavailable) as failed:
        logger.flush()
    assert failed.value.message == (
        "3 prediction log rows of endpoint 'down-ep' could not be written in 10 s of "
        "retries: The metadata database is locked (injected)."
    )
    with pytest.raises(BackendUnavailable):
        logger.close()
    assert len(logger.pending(rid)) == 3 and _segment_rows(runtime, "down-ep") == 0
    failing.down = False
    logger.flush()
    assert find_request(rid, endpoint="down-ep", store=runtime.serving.store, logger=None).rows == 3


def _dropped_metric(endpoint: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "milepost_prediction_log_dropped_total", {"endpoint": endpoint}
    )
    return value or 0.0


def test_prediction_log_at_its_bound_drops_the_newest_and_counts_them(runtime: Runtime) -> None:
    fake = FakeTime()
    endpoint = f"full-ep-{new_request_id()[-6:]}"
    failing = Failing(runtime.serving.store, "add_segments", _locked())
    failing.down = True
    logger = _prediction_logger(runtime, failing, fake, endpoint, max_pending=5)
    rid = new_request_id()
    started = time.monotonic()
    for i in range(8):
        logger.append(_log_row(rid, i, endpoint))  # never blocks the request
    assert time.monotonic() - started < 5
    assert logger.dropped == 3 and logger.queued == 5
    assert _dropped_metric(endpoint) == 3.0  # exposed on /metrics
    from milepost.serving import metrics

    assert f'milepost_prediction_log_dropped_total{{endpoint="{endpoint}"}} 3.0' in (
        metrics.exposition().decode()
    )
    failing.down = False
    logger.close()
    rows = pq.read_table(
        list((runtime.settings.home / "predictions" / endpoint).glob("*.parquet"))
    ).column("row")
    assert sorted(rows.to_pylist()) == [0, 1, 2, 3, 4]  # the oldest were kept


# -- at exit -------------------------------------------------------------------------------

_EXIT_SCRIPT = """
import sys
import time
import milepost
from milepost.serving.logger import PredictionLogger, new_request_id

rt = milepost.configure(home=sys.argv[1], metadata_uri=sys.argv[2], user="tester",
                        metric_flush_interval=3600)
with milepost.start_run() as run:
    pass
# after the run ended: only the exit drain can write these
rt.tracking.writer.extend(
    [(run.run_id, run.experiment_id, "late", float(i), 1, i) for i in range(5)]
)
logger = PredictionLogger("exit-ep", rt.settings.home / "predictions", rt.serving.store,
                          interval=3600)
rid = new_request_id()
logger.append({"request_id": rid, "row": 0, "ts": int(time.time() * 1000),
               "endpoint": "exit-ep", "variant": "v1", "model": "churn", "version": 1,
               "role": "primary", "prediction": "1", "status": "ok"})
print(run.run_id, rid)
"""


def test_writers_drain_at_exit(runtime: Runtime, tmp_path: Path) -> None:
    script = tmp_path / "exit_writers.py"
    script.write_text(_EXIT_SCRIPT)
    home = runtime.settings.home
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    done = subprocess.run(
        [sys.executable, str(script), str(home), runtime.db.uri],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert "lost" not in done.stderr
    run_id, rid = done.stdout.split()
    history = Client().get_metric_history(run_id, "late")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(5)]
    assert find_request(rid, endpoint="exit-ep", store=runtime.serving.store, logger=None).rows
