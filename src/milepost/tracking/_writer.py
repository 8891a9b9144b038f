"""The background metric writer: the caller's cost of ``log_metric`` is an append.

Values go into a deque (append and popleft are atomic in CPython, so callers take no
lock). One daemon thread per process drains it every ``flush_interval`` seconds, or
sooner when ``batch_size`` values are waiting, writing each batch in one transaction.
``flush()`` holds the write lock, so it also waits for a batch the thread is writing,
then writes the rest itself: when it returns, every value appended before the call is
committed. A batch that fails goes back to the front of the queue and is retried;
``flush()`` raises the failure. At interpreter exit the queue is drained.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from milepost.errors import MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.tracking.backends.sql import MetricRow, SqlTrackingStore

__all__ = ["MetricWriter"]

log = logging.getLogger("milepost.tracking")

_MAX_ROWS_PER_TRANSACTION = 50_000


class MetricWriter:
    """Buffers metric rows and writes them in batches from a background thread."""

    def __init__(
        self,
        store: SqlTrackingStore,
        *,
        flush_interval: float,
        batch_size: int,
        heartbeat_interval: float,
        live_runs: Callable[[], list[str]],
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._heartbeat_interval = heartbeat_interval
        self._live_runs = live_runs
        self._queue: collections.deque[MetricRow] = collections.deque()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.last_error: MilepostError | None = None
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
        """Write everything queued so far; raises the backend's error if that fails."""
        with self._write_lock:
            self._drain()

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
            batch = [self._queue.popleft() for _ in range(n)]
            try:
                self._store.insert_metrics(batch)
            except BaseException:
                self._queue.extendleft(reversed(batch))
                raise

    def _run(self) -> None:
        last_beat = 0.0
        backoff = self._flush_interval
        while not self._stopped:
            self._wake.wait(timeout=backoff)
            self._wake.clear()
            try:
                with self._write_lock:
                    self._drain()
                self.last_error = None
                backoff = self._flush_interval
                now = time.monotonic()
                if now - last_beat >= self._heartbeat_interval:
                    self._store.heartbeat(self._live_runs())
                    last_beat = now
            except MilepostError as exc:
                if self.last_error is None:
                    log.warning("Metric writer failed, will retry: %s", exc)
                self.last_error = exc
                backoff = min(backoff * 2, 30.0)


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
    writer._write_lock = threading.Lock()
    writer._start_lock = threading.Lock()
    writer._wake = threading.Event()
    writer._thread = None
    writer._pid = os.getpid()
