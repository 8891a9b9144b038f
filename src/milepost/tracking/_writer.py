"""The background metric writer: the caller's cost of ``log_metric`` is an append.

Values go into a deque (append and popleft are atomic in CPython, so callers take no
lock). One daemon thread per process drains it every ``flush_interval`` seconds, or
sooner when ``batch_size`` values are waiting, writing each batch in one transaction.
``flush()`` holds the write lock while it writes, so it also waits for a batch the thread
is writing, then writes the rest itself: when it returns, every value appended before
the call is committed (or was refused by the database, see below). At interpreter exit
the queue is drained.

Two kinds of failure, never confused:

- **A row the database refuses** (a value out of range, a constraint: the store raises
  ``InvalidInput`` or ``Conflict``). The batch is split in halves until the refused rows
  stand alone; every other row is written. Each refused row is dropped and counted on
  its run (run tags ``milepost.metric_errors`` and ``milepost.metric_errors.first``, shown
  by ``get_run`` and ``milepost runs show``), and logged. It never fails a flush.
- **The database is unavailable** (down, locked, a timeout: any other error). Nothing is
  dropped: the rows not yet written go back to the front of the queue, in order. The
  thread retries with exponential backoff (up to 30 s); ``flush()`` retries for up to
  ``retry_for`` seconds, then raises ``BackendUnavailable`` and the values stay queued.

Nothing raised while writing stops the thread.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Protocol

from milepost.errors import BackendUnavailable, Conflict, InvalidInput, MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from milepost.tracking.backends.sql import MetricRow

__all__ = ["MetricStore", "MetricWriter"]

log = logging.getLogger("milepost.tracking")

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
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._heartbeat_interval = heartbeat_interval
        self._live_runs = live_runs
        self._retry_for = retry_for
        self._queue: collections.deque[MetricRow] = collections.deque()
        # refused rows not yet recorded on their runs: run id -> (count, first message)
        self._refused: dict[str, tuple[int, str]] = {}
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.last_error: BaseException | None = None
        self.refused_total = 0
        ref = weakref.ref(self)
        atexit.register(_drain_at_exit, ref)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(ref))

    def append(self, row: MetricRow) -> None:
        """Queue one value (no I/O)."""
        self._queue.append(row)
        if self._thread is None:
            self._start()
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def extend(self, rows: list[MetricRow]) -> None:
        """Queue several values (no I/O)."""
        self._queue.extend(rows)
        if self._thread is None:
            self._start()
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Values queued and not yet written."""
        return len(self._queue)

    def flush(self) -> None:
        """Write everything queued so far.

        Rows the database refuses are dropped and recorded on their runs; they do not
        make this fail. While the database is unavailable this retries with backoff for
        up to ``retry_for`` seconds.

        Raises:
            BackendUnavailable: the database stayed unavailable; the values stay queued
                and the background thread keeps retrying.
        """
        deadline = time.monotonic() + self._retry_for
        delay = 0.05
        while True:
            try:
                with self._write_lock:
                    self._drain()
                    self._record_refused()
            except MilepostError as exc:
                self.last_error = exc
                if time.monotonic() + delay > deadline:
                    raise BackendUnavailable(
                        f"{self.pending} metric values could not be written"
                        + (f" in {self._retry_for:g} s of retries" if self._retry_for else "")
                        + f": {exc.message}",
                        hint=(exc.hint + " " if exc.hint else "")
                        + "They stay queued and are retried in the background.",
                    ) from exc
                time.sleep(delay)  # back off while the database recovers
                delay = min(delay * 2, 2.0)
            else:
                self.last_error = None
                return

    def close(self) -> None:
        """Flush and stop the thread."""
        self._stopped = True
        self._wake.set()
        self.flush()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def start(self) -> None:
        """Start the background thread (it also sends heartbeats for live runs)."""
        self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="milepost-metric-writer", daemon=True
                )
                self._thread.start()

    def _drain(self) -> None:
        """Write the queue in transactions of bounded size (caller holds the write lock)."""
        while self._queue:
            n = min(len(self._queue), _MAX_ROWS_PER_TRANSACTION)
            self._write([self._queue.popleft() for _ in range(n)])

    def _write(self, batch: list[MetricRow]) -> None:
        """Write a batch, isolating refused rows by bisection.

        On any other error the rows not yet written go back to the front of the queue, in
        their order, and the error propagates.
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
            except BaseException:
                unwritten = [row for chunk in [part, *reversed(todo)] for row in chunk]
                self._queue.extendleft(reversed(unwritten))
                raise

    def _refuse(self, row: MetricRow, exc: MilepostError) -> None:
        run_id, _, key, value, _, step = row
        message = f"{key!r} = {value!r} at step {step} was refused: {exc.message}"
        message = message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
        log.warning("Run %s: metric %s; the value was dropped.", run_id, message)
        count, first = self._refused.get(run_id, (0, message))
        self._refused[run_id] = (count + 1, first)
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

    def _run(self) -> None:
        last_beat = 0.0
        backoff = self._flush_interval
        while not self._stopped:
            self._wake.wait(timeout=backoff)
            self._wake.clear()
            try:
                with self._write_lock:
                    self._drain()
                    self._record_refused()
                self.last_error = None
                backoff = self._flush_interval
                now = time.monotonic()
                if now - last_beat >= self._heartbeat_interval:
                    self._store.heartbeat(self._live_runs())
                    last_beat = now
            except Exception as exc:  # the thread must outlive any failure
                if self.last_error is None:
                    if isinstance(exc, MilepostError):
                        log.warning("Metric writer failed, will retry: %s", exc)
                    else:
                        log.exception("Metric writer failed unexpectedly, will retry")
                self.last_error = exc
                backoff = min(max(backoff, self._flush_interval) * 2, _MAX_BACKOFF)


def _drain_at_exit(ref: weakref.ReferenceType[MetricWriter]) -> None:
    writer = ref()
    if writer is None or writer._pid != os.getpid():
        return
    try:
        writer.flush()
    except MilepostError as exc:
        log.error("Milepost could not write %d metric values at exit: %s", writer.pending, exc)


def _reset_in_child(ref: weakref.ReferenceType[MetricWriter]) -> None:
    writer = ref()
    if writer is None:
        return
    # The parent's thread does not exist here, and its queue belongs to the parent.
    writer._queue = collections.deque()
    writer._refused = {}
    writer._write_lock = threading.Lock()
    writer._start_lock = threading.Lock()
    writer._wake = threading.Event()
    writer._thread = None
    writer._pid = os.getpid()
