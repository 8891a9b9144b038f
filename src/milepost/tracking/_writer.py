"""The background metric writer: the caller's cost of ``log_metric`` is an append.

Built on :class:`milepost._batcher.Batcher` (shared with the push buffer and the
prediction log). Values go into a deque; one daemon thread per process writes them every
``flush_interval`` seconds, or sooner when ``batch_size`` values are waiting, each batch
in one transaction of at most 50,000 rows. ``flush()`` holds the write lock while it
writes, so it also waits for a batch the thread is writing, then writes the rest itself:
when it returns, every value appended before the call is committed (or was refused by
the database, see below). At interpreter exit the queue is drained. A fork child starts
with an empty queue of its own.

Two kinds of failure, never confused:

- **A row the database refuses** (a value out of range, a constraint: the store raises
  ``InvalidInput`` or ``Conflict``). The batch is split in halves until the refused rows
  stand alone; every other row is written. Each refused row is dropped and counted on
  its run (run tags ``milepost.metric_errors`` and ``milepost.metric_errors.first``, shown
  by ``get_run`` and ``milepost runs show``), and logged. It never fails a flush.
- **The database is unavailable** (down, locked, a timeout: any other error). Nothing is
  dropped: the rows not yet written go back to the front of the queue, in order. The
  thread retries with exponential backoff (up to 30 s); ``flush()`` retries for up to
  ``retry_for`` seconds (setting ``metric_flush_timeout``), then raises
  ``BackendUnavailable`` and the values stay queued. Values still unwritten at exit are
  logged as lost, with the reason.

**When the bound is hit: backpressure.** At most ``max_pending`` values (default
500,000, about 90 MB) wait in memory. Then ``log_metric`` blocks until the writer makes
room, for up to ``retry_for`` seconds, and then raises ``BackendUnavailable``: the value
was not logged. Metric values are the record of an experiment, so the writer slows the
training loop down rather than losing values silently; the caller sees the error.

Nothing raised while writing stops the thread.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

from milepost._batcher import Backoff, Batcher, Overflow, Unwritten
from milepost.errors import Conflict, InvalidInput, MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from milepost.tracking.backends.sql import MetricRow

__all__ = ["MAX_PENDING", "MetricStore", "MetricWriter", "write_isolating"]

log = logging.getLogger("milepost.tracking")

MAX_PENDING = 500_000  # values waiting in memory before log_metric blocks
_MAX_ROWS_PER_TRANSACTION = 50_000
_MAX_BACKOFF = 30.0
_MAX_MESSAGE = 1000
# What a store raises when a row is to blame (see the module docstring).
_ROW_ERRORS = (InvalidInput, Conflict)


class MetricStore(Protocol):
    """What the writer needs from a tracking store."""

    def insert_metrics(self, rows: Sequence[MetricRow]) -> None:
        """Write rows in one transaction (InvalidInput or Conflict: a row is to blame)."""

    def record_metric_errors(self, errors: Mapping[str, tuple[int, str]]) -> None:
        """Count refused values on their runs: run id -> (count, first message)."""

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Record that these runs' owner is alive."""


class MetricWriter:
    """Buffers metric rows and writes them in batches from a background thread."""

    def __init__(
        self,
        store: MetricStore,
        *,
        flush_interval: float,
        batch_size: int,
        heartbeat_interval: float,
        live_runs: Callable[[], list[str]],
        retry_for: float = 10.0,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._heartbeat_interval = heartbeat_interval
        self._live_runs = live_runs
        self._last_beat = -float("inf")
        # refused rows not yet recorded on their runs: run id -> (count, first message)
        self._refused: dict[str, tuple[int, str]] = {}
        self.refused_total = 0
        self._batcher: Batcher[MetricRow] = Batcher(
            self._write,
            name="milepost-metric-writer",
            what="metric values",
            hint="Check that the metadata database is reachable and not locked "
            "(setting metadata_uri), then call milepost.flush().",
            interval=flush_interval,
            batch_size=batch_size,
            max_batch=_MAX_ROWS_PER_TRANSACTION,
            max_pending=max_pending,
            overflow=Overflow.BLOCK,
            block_for=retry_for,
            retry_for=retry_for,
            backoff=Backoff(first=2 * flush_interval, cap=_MAX_BACKOFF),
            after_write=self._record_refused,
            on_tick=self._heartbeat,
            on_fork=self._reset_in_child,
            clock=clock,
            sleep=sleep,
        )

    def append(self, row: MetricRow) -> None:
        """Queue one value (no I/O; blocks only when ``max_pending`` values wait).

        Raises:
            BackendUnavailable: the queue stayed full for ``retry_for`` seconds.
        """
        self._batcher.append(row)

    def extend(self, rows: list[MetricRow]) -> None:
        """Queue several values (no I/O; blocks only when ``max_pending`` values wait)."""
        self._batcher.extend(rows)

    @property
    def pending(self) -> int:
        """Values queued and not yet written."""
        return self._batcher.pending

    @property
    def last_error(self) -> BaseException | None:
        """The error of the last failed write, ``None`` once a write succeeded."""
        return self._batcher.last_error

    def flush(self) -> None:
        """Write everything queued so far.

        Rows the database refuses are dropped and recorded on their runs; they do not
        make this fail. While the database is unavailable this retries with backoff for
        up to ``retry_for`` seconds.

        Raises:
            BackendUnavailable: the database stayed unavailable; the values stay queued
                and the background thread keeps retrying.
        """
        self._batcher.flush()

    def close(self) -> None:
        """Flush and stop the thread (raises as :meth:`flush` does)."""
        self._batcher.close()

    def start(self) -> None:
        """Start the background thread (it also sends heartbeats for live runs)."""
        self._batcher.start()

    def _write(self, batch: list[MetricRow]) -> None:
        """Write a batch, isolating refused rows by bisection.

        On any other error the rows not yet written are handed back, in their order.
        """
        todo = [batch]  # a stack: the next part to write is the last
        while todo:
            part = todo.pop()
            try:
                self._store.insert_metrics(part)
            except _ROW_ERRORS as exc:
                if len(part) == 1:
                    self._refuse(part[0], exc)
                else:
                    middle = len(part) // 2
                    todo += [part[middle:], part[:middle]]
            except BaseException as exc:
                unwritten = [row for chunk in [part, *reversed(todo)] for row in chunk]
                raise Unwritten(unwritten) from exc

    def _refuse(self, row: MetricRow, exc: MilepostError) -> None:
        _count_refused(self._refused, row, exc)
        self.refused_total += 1

    def _record_refused(self) -> None:
        """Count refused rows on their runs (caller holds the write lock).

        A database that is unavailable leaves them for the next attempt; a run that cannot
        take the tags (it no longer exists) is only logged.
        """
        if not self._refused:
            return
        pending, self._refused = self._refused, {}
        try:
            self._store.record_metric_errors(pending)
            return
        except _ROW_ERRORS:
            pass
        except BaseException:
            for run_id, (count, first) in pending.items():
                later, _ = self._refused.get(run_id, (0, first))
                self._refused[run_id] = (count + later, first)
            raise
        for run_id, counted in pending.items():  # one run at a time, to find the one to blame
            try:
                self._store.record_metric_errors({run_id: counted})
            except _ROW_ERRORS as exc:
                log.error(
                    "Could not record %d refused metric values on run %s: %s",
                    counted[0],
                    run_id,
                    exc,
                )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= self._heartbeat_interval:
            self._store.heartbeat(self._live_runs())
            self._last_beat = now

    def _reset_in_child(self) -> None:
        self._refused = {}
        self._last_beat = -float("inf")


def _count_refused(refused: dict[str, tuple[int, str]], row: MetricRow, exc: MilepostError) -> None:
    run_id, _, key, value, _, step = row
    message = f"{key!r} = {value!r} at step {step} was refused: {exc.message}"
    message = message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
    log.warning("Run %s: metric %s; the value was dropped.", run_id, message)
    count, first = refused.get(run_id, (0, message))
    refused[run_id] = (count + 1, first)


def write_isolating(store: MetricStore, rows: Sequence[MetricRow]) -> int:
    """Write rows now, in one transaction when the database takes them all.

    The synchronous twin of the writer's batches (the platform server writes a remote
    client's batch this way, so the client's ``flush()`` means durable): rows the
    database refuses are isolated by bisection, dropped and counted on their runs; any
    other error propagates.

    Returns:
        How many rows were refused.
    """
    refused: dict[str, tuple[int, str]] = {}
    todo = [list(rows)] if rows else []
    total = 0
    while todo:
        part = todo.pop()
        try:
            store.insert_metrics(part)
        except _ROW_ERRORS as exc:
            if len(part) == 1:
                _count_refused(refused, part[0], exc)
                total += 1
            else:
                middle = len(part) // 2
                todo += [part[middle:], part[:middle]]
    if refused:
        try:
            store.record_metric_errors(refused)
        except _ROW_ERRORS as exc:
            log.error("Could not record refused metric values on their runs: %s", exc)
    return total
