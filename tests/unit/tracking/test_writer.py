"""The metric writer's failure paths, against an in-memory store with the same contract:
a transaction writes all of its rows or none; a refused row raises Conflict; an outage
raises BackendUnavailable."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.errors import BackendUnavailable, Conflict
from milepost.tracking._writer import MetricWriter
from milepost.tracking.backends.sql import MetricRow


class MemoryStore:
    """Rows in a list; ``refuse`` picks the rows a constraint rejects."""

    def __init__(self, refuse: Callable[[MetricRow], bool] = lambda row: False) -> None:
        self.rows: list[MetricRow] = []
        self.refuse = refuse
        self.down = False
        self.crash: Exception | None = None
        self.down_after: int | None = None  # go down after this many successful inserts
        self.errors: dict[str, tuple[int, str]] = {}
        self.errors_down = False
        self.transactions = 0

    def insert_metrics(self, rows: Sequence[MetricRow]) -> None:
        if self.crash is not None:
            raise self.crash
        if self.down_after is not None and self.transactions >= self.down_after:
            self.down = True
        if self.down:
            raise BackendUnavailable("the database is down")
        bad = [r for r in rows if self.refuse(r)]
        if bad:
            raise Conflict(f"row {bad[0][2]}@{bad[0][5]} breaks a constraint")
        self.transactions += 1
        self.rows.extend(rows)

    def record_metric_errors(self, errors: Mapping[str, tuple[int, str]]) -> None:
        if self.errors_down:
            raise BackendUnavailable("the database is down")
        for run_id, (count, first) in errors.items():
            before, first_before = self.errors.get(run_id, (0, first))
            self.errors[run_id] = (before + count, first_before)

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        pass


def _writer(store: MemoryStore, *, retry_for: float = 0.0) -> MetricWriter:
    return MetricWriter(
        store,
        flush_interval=0.01,
        batch_size=10**9,
        heartbeat_interval=3600,
        live_runs=list,
        retry_for=retry_for,
    )


def _rows(n: int, run: str = "r") -> list[MetricRow]:
    return [(run, 1, "m", float(i), 1000 + i, i) for i in range(n)]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.01)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), bad=st.sets(st.integers(0, 299), max_size=20))
def test_refused_rows_are_isolated_and_every_other_row_is_written_in_order(
    n: int, bad: set[int]
) -> None:
    store = MemoryStore(refuse=lambda row: row[5] in bad)
    writer = _writer(store)
    writer.extend(_rows(n))
    writer.flush()
    expected_bad = {i for i in bad if i < n}
    assert [r[5] for r in store.rows] == [i for i in range(n) if i not in expected_bad]
    assert writer.pending == 0 and writer.refused_total == len(expected_bad)
    if expected_bad:
        count, first = store.errors["r"]
        assert count == len(expected_bad) and f"at step {min(expected_bad)}" in first
    else:
        assert store.errors == {}
    writer.close()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 200),
    bad=st.sets(st.integers(0, 199), min_size=1, max_size=10),
    down_after=st.integers(0, 12),
)
def test_an_outage_during_bisection_loses_and_duplicates_nothing(
    n: int, bad: set[int], down_after: int
) -> None:
    store = MemoryStore(refuse=lambda row: row[5] in bad)
    store.down_after = down_after
    writer = _writer(store)
    writer.extend(_rows(n))
    try:
        writer.flush()
    except BackendUnavailable as exc:
        assert "metric values could not be written" in str(exc)
    store.down_after, store.down = None, False
    writer.flush()
    good = [i for i in range(n) if i not in bad]
    assert sorted(r[5] for r in store.rows) == good  # each exactly once
    assert writer.pending == 0
    writer.close()


def test_flush_raises_while_the_database_stays_down_and_keeps_the_values() -> None:
    store = MemoryStore()
    store.down = True
    writer = _writer(store, retry_for=0.2)
    writer.extend(_rows(5))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"^5 metric values could not be written in 0\.2"):
        writer.flush()
    assert 0.1 < time.monotonic() - started < 20  # it retried, and gave up
    assert writer.pending == 5 and store.errors == {}
    store.down = False
    writer.flush()
    assert [r[5] for r in store.rows] == [0, 1, 2, 3, 4]
    writer.close()


def test_the_thread_survives_an_unexpected_error_and_writes_later_values() -> None:
    store = MemoryStore()
    store.crash = RuntimeError("a bug in a store")
    writer = _writer(store)
    writer.extend(_rows(3))
    _wait_for(lambda: isinstance(writer.last_error, RuntimeError), "the thread to hit the bug")
    assert writer.pending == 3  # nothing dropped
    store.crash = None
    writer.extend([("r", 1, "later", 1.0, 1, 0)])
    _wait_for(lambda: len(store.rows) == 4, "the thread to write everything")
    assert writer.last_error is None
    writer.close()


def test_refused_rows_are_recorded_once_the_database_is_back() -> None:
    store = MemoryStore(refuse=lambda row: row[5] == 1)
    store.errors_down = True
    writer = _writer(store)
    writer.extend(_rows(3))
    with pytest.raises(BackendUnavailable):
        writer.flush()
    assert [r[5] for r in store.rows] == [0, 2]  # written; only the record is waiting
    store.errors_down = False
    writer.flush()
    assert store.errors["r"][0] == 1
    writer.close()


def test_a_run_that_cannot_take_the_record_does_not_block_the_others() -> None:
    class NoTagsForGhosts(MemoryStore):
        def record_metric_errors(self, errors: Mapping[str, tuple[int, str]]) -> None:
            if "ghost" in errors:
                raise Conflict("run ghost does not exist")
            super().record_metric_errors(errors)

    store = NoTagsForGhosts(refuse=lambda row: row[5] == 0)
    writer = _writer(store)
    writer.extend(_rows(2, "ghost") + _rows(2, "real"))
    writer.flush()
    assert store.errors == {"real": (1, store.errors["real"][1])}
    assert [(r[0], r[5]) for r in store.rows] == [("ghost", 1), ("real", 1)]
    writer.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (3.12+)
def test_a_fork_child_starts_with_no_queued_or_refused_values() -> None:
    store = MemoryStore(refuse=lambda row: row[0] == "r" and row[5] == 0)
    store.errors_down = True
    writer = _writer(store)
    writer.extend(_rows(3))
    with pytest.raises(BackendUnavailable):
        writer.flush()  # row 0 refused, its record waits; rows 1 and 2 written
    store.down = True
    writer.extend(_rows(2, "later"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            state = (writer.pending, dict(writer._refused), writer.last_error)
            os.write(write, repr(state).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    assert report == "(0, {}, None)"
    assert writer.pending == 2  # the parent still has its values
    store.down = store.errors_down = False
    writer.flush()
    assert store.errors["r"][0] == 1 and [r[0] for r in store.rows] == ["r", "r", "later", "later"]
    writer.close()
