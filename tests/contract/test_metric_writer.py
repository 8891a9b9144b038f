"""Metric logging on every metadata backend: checked at the call, and a writer that a bad
row, a bug or an outage never kills and that never loses the other values."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.errors import BackendUnavailable, InvalidInput

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _calls(run_id: str, value: Any, step: Any, timestamp: Any) -> list[Callable[[], None]]:
    """Every public entry point that logs a metric."""
    c = Client()
    calls: list[Callable[[], None]] = [
        lambda: milepost.log_metric("m", value, step=step, timestamp=timestamp),
        lambda: milepost.log_metrics({"m": value}, step=step, timestamp=timestamp),
        lambda: c.log_metric(run_id, "m", value, step=step, timestamp=timestamp),
    ]
    if timestamp is None:
        calls.append(lambda: c.log_batch(run_id, metrics={"m": value}, step=step))
    return calls


@pytest.mark.parametrize(
    ("value", "step", "timestamp", "match"),
    [
        (10**400, None, None, r"Metric 'm' .*too large for a float"),
        (-(10**400), None, None, r"too large for a float"),
        (Decimal("1e400"), None, None, r"too large for a float"),
        (True, None, None, r"Metric 'm' must be a real number, got True \(bool\)"),
        (None, None, None, r"must be a real number, got None"),
        ("0.5", None, None, r"must be a real number"),
        (np.bool_(True), None, None, r"must be a real number"),
        (np.array([1.0, 2.0]), None, None, r"must be a real number"),
        (1.0, INT64_MAX + 1, None, r"step must fit a signed 64-bit integer.*9223372036854775808"),
        (1.0, INT64_MIN - 1, None, r"step must fit a signed 64-bit integer"),
        (1.0, 10**400, None, r"step must fit a signed 64-bit integer"),
        (1.0, None, 10**400, r"timestamp must fit a signed 64-bit integer"),
        (1.0, None, INT64_MAX + 1, r"timestamp must fit"),
        (1.0, None, 1e30, r"timestamp must fit"),
        (1.0, 1.5, None, r"step must be a whole number \(an integer\), got 1\.5"),
        (1.0, float("nan"), None, r"step must be a whole number \(an integer\), got nan"),
        (1.0, float("inf"), None, r"step must be a whole number \(an integer\), got inf"),
        (1.0, True, None, r"step must be an integer, got True"),
        (1.0, "3", None, r"step must be an integer, got '3'"),
        (1.0, None, "now", r"timestamp must be an integer, got 'now'"),
    ],
)
def test_values_steps_and_timestamps_are_checked_at_the_call(
    runtime: Runtime, value: Any, step: Any, timestamp: Any, match: str
) -> None:
    with milepost.start_run() as run:
        for call in _calls(run.run_id, value, step, timestamp):
            with pytest.raises(InvalidInput, match=match):
                call()
        milepost.log_metric("ok", 1.0)
    got = Client().get_run(run.run_id)
    assert got.metrics == {"ok": 1.0} and "milepost.metric_errors" not in got.tags


def test_wrong_shapes_of_arguments_are_invalid_input(runtime: Runtime) -> None:
    with milepost.start_run() as run:
        with pytest.raises(InvalidInput, match="mapping of metric names to values"):
            milepost.log_metrics([("m", 1.0)])  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="run id"):
            Client().log_metric(["x"], "m", 1.0)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="run id"):
            Client().log_metric(None, "m", 1.0)  # type: ignore[arg-type]
    assert Client().get_run(run.run_id).metrics == {}


def test_accepted_numbers_and_the_int64_bounds_round_trip(runtime: Runtime) -> None:
    with milepost.start_run() as run:
        milepost.log_metric("np32", np.float32(0.5), step=np.int64(3))
        milepost.log_metric("npint", np.int64(7), step=np.float64(4.0))
        milepost.log_metric("frac", Fraction(1, 4), step=2.0)
        milepost.log_metric("dec", Decimal("0.125"))
        milepost.log_metric("big", 10**300)
        milepost.log_metric("edge", 1.0, step=INT64_MAX, timestamp=INT64_MAX)
        milepost.log_metric("edge", 2.0, step=INT64_MIN, timestamp=INT64_MIN)
    got = Client().get_run(run.run_id)
    assert got.metrics == {
        "big": 1e300,
        "dec": 0.125,
        "edge": 1.0,
        "frac": 0.25,
        "np32": 0.5,
        "npint": 7.0,
    }
    history = Client().get_metric_history(run.run_id, "edge")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (INT64_MIN, INT64_MIN, 2.0),
        (INT64_MAX, INT64_MAX, 1.0),
    ]
    assert [m.step for m in Client().get_metric_history(run.run_id, "npint")] == [4]


# -- rows the database refuses ----------------------------------------------------------


def _refuse_poison(runtime: Runtime) -> None:
    """A real constraint in the database: metric rows named 'poison' are refused."""
    with runtime.db.write() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER no_poison BEFORE INSERT ON metrics WHEN NEW.key = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poison is not allowed'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION no_poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.key = 'poison' THEN RAISE EXCEPTION 'poison is not allowed' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER no_poison BEFORE INSERT ON metrics "
                "FOR EACH ROW EXECUTE FUNCTION no_poison()"
            )


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.02)


def test_a_row_the_database_refuses_is_isolated_recorded_and_the_rest_kept(
    runtime: Runtime, tmp_path: Path
) -> None:
    _refuse_poison(runtime)
    with milepost.start_run() as run:
        for step in range(200):
            milepost.log_metric("loss", float(step), step=step)
            if step in (50, 120):
                milepost.log_metric("poison", 1.0, step=step)
        milepost.flush()  # the refused rows do not fail the flush
        got = Client().get_run(run.run_id)
        assert got.metrics == {"loss": 199.0}
        assert got.tags["milepost.metric_errors"] == "2"
        first = got.tags["milepost.metric_errors.first"]
        assert "'poison' = 1.0 at step 50" in first and "poison is not allowed" in first
        # the writer thread is alive: later values arrive without a flush
        milepost.log_metric("later", 3.0, step=1)
        _wait_for(
            lambda: Client().get_run(run.run_id).metrics.get("later") == 3.0,
            "the background writer to write a later value",
        )
    assert len(Client().get_metric_history(run.run_id, "loss")) == 200
    assert Client().get_metric_history(run.run_id, "poison") == []
    # visible where people look: `milepost runs show`
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env.update(MILEPOST_METADATA_URI=runtime.db.uri, MILEPOST_HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "milepost"), "runs", "show", run.run_id],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "300"},
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "milepost.metric_errors" in out.stdout and "poison is not allowed" in out.stdout


def test_a_row_that_bypassed_the_checks_never_kills_the_writer(runtime: Runtime) -> None:
    """A step too large for BIGINT (SQLite: OverflowError, PostgreSQL: DataError)."""
    writer = runtime.tracking.writer
    with milepost.start_run() as run:
        ts = int(time.time() * 1000)
        writer.extend(
            [
                (run.run_id, run.experiment_id, "a", 1.0, ts, 1),
                (run.run_id, run.experiment_id, "a", 2.0, ts, 2**70),
                (run.run_id, run.experiment_id, "a", 3.0, ts, 3),
            ]
        )
        _wait_for(lambda: writer.pending == 0, "the background writer to drain")
        milepost.log_metric("a", 4.0, step=4)
    history = Client().get_metric_history(run.run_id, "a")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (3, 3.0), (4, 4.0)]
    tags = Client().get_run(run.run_id).tags
    assert tags["milepost.metric_errors"] == "1"
    assert str(2**70) in tags["milepost.metric_errors.first"]


# -- an unavailable database: retried, nothing lost, a clear error if it stays down --------


@contextlib.contextmanager
def _metrics_locked(uri: str) -> Iterator[Callable[[], None]]:
    """Another connection holds a lock that blocks every insert into ``metrics``.

    Yields a function that releases it early.
    """
    url = sa.engine.make_url(uri)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                conn.rollback()

        try:
            yield release
        finally:
            release()
            conn.close()
        return
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    pg = engine.connect()
    pg.execute(sa.text("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"))
    done = threading.Event()

    def release_pg() -> None:
        if not done.is_set():
            done.set()
            pg.rollback()

    try:
        yield release_pg
    finally:
        release_pg()
        pg.close()
        engine.dispose()


def _quick(runtime: Runtime, *, flush_timeout: float) -> Runtime:
    return milepost.configure(
        home=runtime.settings.home,
        metadata_uri=runtime.db.uri,
        metric_flush_interval=0.05,
        sqlite_busy_timeout=0.2,
        db_statement_timeout=0.3,
        metric_flush_timeout=flush_timeout,
        user="tester",
    )


def test_a_database_that_stays_down_fails_flush_clearly_and_loses_nothing(
    runtime: Runtime,
) -> None:
    rt = _quick(runtime, flush_timeout=0.5)
    with milepost.start_run() as run:
        with _metrics_locked(rt.db.uri):
            for step in range(10):
                milepost.log_metric("m", float(step), step=step)
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match=r"metric values could not be written"):
                milepost.flush()
            assert time.monotonic() - started < 30
            assert rt.tracking.writer.last_error is not None
        milepost.flush()  # the lock is gone
    history = Client().get_metric_history(run.run_id, "m")
    assert [(m.step, m.value) for m in history] == [(s, float(s)) for s in range(10)]
    assert "milepost.metric_errors" not in Client().get_run(run.run_id).tags


def test_flush_rides_out_a_short_outage(runtime: Runtime) -> None:
    rt = _quick(runtime, flush_timeout=60)
    writer = rt.tracking.writer
    with milepost.start_run() as run, _metrics_locked(rt.db.uri) as release:
        for step in range(10):
            milepost.log_metric("m", float(step), step=step)

        def release_once_a_write_failed() -> None:
            _wait_for(lambda: writer.last_error is not None, "a failed write")
            release()

        helper = threading.Thread(target=release_once_a_write_failed)
        helper.start()
        milepost.flush()  # retries until the lock is released, then succeeds
        helper.join()
    assert len(Client().get_metric_history(run.run_id, "m")) == 10
