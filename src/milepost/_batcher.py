"""One background batcher for everything Milepost writes off the caller's path.

The metric writer (``tracking/_writer.py``), the push buffer (``features/push.py``) and
the prediction log (``serving/logger.py``) all work the same way, through
:class:`Batcher`:

- **Append is cheap.** Items go into a deque (append and popleft are atomic in CPython,
  so an unweighted append takes no lock). One daemon thread per batcher and process,
  started on the first append, hands them to a *sink* every ``interval`` seconds, or
  sooner when ``batch_size`` items are waiting.
- **A failed write is retried, nothing is lost while the store recovers.** When the sink
  raises, the items it did not write go back to the front of the queue, in order (a
  sink that wrote part of a batch says which items are left by raising
  :class:`Unwritten`). The thread then waits with exponential backoff, capped
  (:class:`Backoff`), and retries the same items first. ``flush()`` retries with its own
  backoff for up to ``retry_for`` seconds.
- **A store that stays down is a clear error, never a silent loss.** ``flush()`` and
  ``close()`` raise :class:`~milepost.errors.BackendUnavailable` saying how many items
  wait and why; the items stay queued. At interpreter exit the queue is drained (with the
  same retries); what could still not be written is logged as an error that says how
  many items were lost, why, and what to do.
- **Memory is bounded.** At most ``max_pending`` items (or units of ``weight``, e.g.
  rows) are held, queued plus being written. When the bound is hit, the ``overflow``
  policy decides: :attr:`Overflow.BLOCK` makes the caller wait for room (backpressure)
  up to ``block_for`` seconds, then raises ``BackendUnavailable``;
  :attr:`Overflow.DROP_NEWEST` refuses the new item without waiting, counts it in
  :attr:`Batcher.dropped`, calls ``on_drop`` and logs a warning (once per outage).
  Each user picks its policy and documents it.
- **Fork-safe.** In a child process every batcher is fresh: an empty queue, new locks,
  no thread (one starts on the child's first append), zeroed counters. The parent is not
  affected. Only the process that queued items drains them at exit.

Tests inject ``clock`` and ``sleep`` (used by ``flush()`` retries), so a store that
fails N times, or never recovers, is tested without real waiting.
"""

from __future__ import annotations

import atexit
import collections
import enum
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from milepost.errors import BackendUnavailable, MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Backoff", "Batcher", "Overflow", "Unwritten"]

log = logging.getLogger("milepost.batcher")

T = TypeVar("T")


class Overflow(enum.Enum):
    """What ``append`` does when ``max_pending`` items are already held."""

    BLOCK = "block"
    """Wait for room (backpressure), up to ``block_for`` seconds, then raise."""
    DROP_NEWEST = "drop_newest"
    """Refuse the new item at once; count it in ``dropped`` (never blocks the caller)."""


class Unwritten(Exception):
    """Raised by a sink that wrote part of a batch: ``items`` are the ones left.

    Raise it ``from`` the error that stopped the write; the batcher queues ``items`` again
    (at the front, in order) and treats the cause as the failure.
    """

    def __init__(self, items: Sequence[object]) -> None:
        super().__init__(f"{len(items)} items not written")
        self.items = list(items)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first``, then times ``factor`` each failure, at most ``cap``."""

    first: float
    cap: float
    factor: float = 2.0

    def next(self, delay: float | None) -> float:
        """The delay after ``delay`` (``None``: the first failure)."""
        if delay is None:
            return min(self.first, self.cap)
        return min(delay * self.factor, self.cap)


# Every live batcher, for the fork and exit hooks (registered once, not per instance).
_LIVE: weakref.WeakSet[Batcher[Any]] = weakref.WeakSet()


class Batcher(Generic[T]):
    """Queues items and hands them to ``sink`` in batches from a background thread.

    Args:
        sink: writes one batch (a list, in queue order). It raises on failure; if it
            wrote part of the batch it raises :class:`Unwritten` with the rest.
        name: the thread's name.
        what: what the items are, plural, for messages ("metric values").
        hint: what to do when the store stays down, for errors and the exit log.
        interval: seconds between background writes.
        batch_size: wake the thread early once this many items (or weight) are queued.
        max_batch: most items per sink call (``None``: everything queued).
        max_pending: most items (or weight) held, queued plus being written.
        overflow: the policy when ``max_pending`` is reached.
        block_for: with ``Overflow.BLOCK``, how long ``append`` waits for room.
        retry_for: how long ``flush()`` retries a failing store before raising.
        retry_on: errors ``flush()`` retries; anything else is raised at once (the
            items stay queued). The thread retries every ``Exception``.
        backoff: the thread's delays between retries.
        flush_backoff: ``flush()``'s delays between retries.
        weight: an item's size for the bound (e.g. its rows); default 1 per item.
        after_write: called under the write lock after every successful drain (thread
            and ``flush()``); an error there counts as a failed write.
        on_tick: called by the thread after each successful cycle (e.g. heartbeats).
        on_drop: called with the number of items dropped by ``Overflow.DROP_NEWEST``.
        on_fork: called in a fork child after the batcher was reset (owner state).
        clock, sleep: time source and sleeper for ``flush()`` retries (tests inject).
    """

    def __init__(
        self,
        sink: Callable[[list[T]], None],
        *,
        name: str,
        what: str,
        hint: str,
        interval: float,
        batch_size: int,
        max_pending: int,
        overflow: Overflow,
        max_batch: int | None = None,
        block_for: float = 10.0,
        retry_for: float = 10.0,
        retry_on: tuple[type[BaseException], ...] = (MilepostError,),
        backoff: Backoff | None = None,
        flush_backoff: Backoff = Backoff(first=0.05, cap=2.0),
        weight: Callable[[T], int] | None = None,
        after_write: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        on_drop: Callable[[int], None] | None = None,
        on_fork: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._sink = sink
        self.name = name
        self.what = what
        self.hint = hint
        self.interval = interval
        self.batch_size = batch_size
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.overflow = overflow
        self.block_for = block_for
        self.retry_for = retry_for
        self.retry_on = retry_on
        self.backoff = backoff or Backoff(first=2 * interval, cap=30.0)
        self.flush_backoff = flush_backoff
        self._weight = weight
        self._after_write = after_write
        self._on_tick = on_tick
        self._on_drop = on_drop
        self._on_fork = on_fork
        self._clock = clock
        self._sleep = sleep
        self._stopped = False
        self._fresh_state()
        _LIVE.add(self)

    def _fresh_state(self) -> None:
        """Everything a fork child must not share with its parent."""
        self._queue: collections.deque[T] = collections.deque()
        self._queued_weight = 0  # with ``weight`` only (under _lock)
        self._in_flight = 0  # items (or weight) handed to the sink right now
        self._lock = threading.Lock()  # weights and the drop counter
        self._room = threading.Condition(threading.Lock())  # BLOCK waiters
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._failing = False  # the thread is backing off
        self._close_failed = False
        self._drop_logged = False
        self.dropped = 0
        self.written = 0
        self.last_error: BaseException | None = None

    # -- the caller's side -------------------------------------------------------------

    def append(self, item: T) -> None:
        """Queue one item (no I/O); applies the overflow policy when full."""
        if self._weight is not None:
            self._append_weighted(item, self._weight(item))
            return
        queue = self._queue
        if len(queue) + self._in_flight >= self.max_pending and not self._admit(1):
            return
        queue.append(item)
        if self._thread is None:
            self.start()
        if len(queue) >= self.batch_size and not self._failing:
            self._wake.set()

    def _append_weighted(self, item: T, w: int) -> None:
        if self._queued_weight + self._in_flight >= self.max_pending and not self._admit(w):
            return
        with self._lock:
            self._queue.append(item)
            self._queued_weight += w
            queued = self._queued_weight
        if self._thread is None:
            self.start()
        if queued >= self.batch_size and not self._failing:
            self._wake.set()

    def extend(self, items: Sequence[T]) -> None:
        """Queue several items, in order."""
        if self._weight is None and self.pending + len(items) < self.max_pending:
            self._queue.extend(items)  # the common case: one C call
            if self._thread is None:
                self.start()
            if len(self._queue) >= self.batch_size and not self._failing:
                self._wake.set()
            return
        for item in items:
            self.append(item)

    @property
    def pending(self) -> int:
        """Items (or weight) queued or being written, not yet written."""
        queued = len(self._queue) if self._weight is None else self._queued_weight
        return queued + self._in_flight

    def snapshot(self) -> list[T]:
        """The queued items, taken while no batch is between the queue and the store.

        So the store plus this list hold every item appended before the call.
        """
        with self._write_lock:
            return list(self._queue)  # one C-level copy; appends need the GIL

    def _admit(self, weight: int) -> bool:
        """Full: block for room or drop the item. True when it may be queued."""
        if self.overflow is Overflow.DROP_NEWEST:
            with self._lock:
                self.dropped += weight
                first = not self._drop_logged
                self._drop_logged = True
            if first:
                log.warning(
                    "%s: %d %s are waiting to be written (the limit); new ones are dropped "
                    "and counted until the store takes them%s.",
                    self.name,
                    self.pending,
                    self.what,
                    f" (last error: {self.last_error})" if self.last_error else "",
                )
            if self._on_drop is not None:
                self._on_drop(weight)
            return False
        deadline = time.monotonic() + self.block_for
        self.start()
        if not self._failing:
            self._wake.set()
        with self._room:
            while self.pending >= self.max_pending:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    raise BackendUnavailable(
                        f"{self.pending} {self.what} are waiting to be written, the limit "
                        f"of {self.max_pending}; this one was not queued after waiting "
                        f"{self.block_for:g} s"
                        + (f": {_message(self.last_error)}" if self.last_error else "."),
                        hint=self.hint,
                    ) from self.last_error
                self._room.wait(left)
        return True

    # -- writing -----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Write everything queued so far.

        Retries errors in ``retry_on`` with backoff for up to ``timeout`` seconds
        (default ``retry_for``). When it returns, every item appended before the call is
        written (or was handled by the sink, e.g. refused rows).

        Raises:
            BackendUnavailable: the store stayed down; the items stay queued and the
                thread keeps retrying.
        """
        budget = self.retry_for if timeout is None else timeout
        deadline = self._clock() + budget
        delay: float | None = None
        while True:
            try:
                with self._write_lock:
                    self._drain()
                    if self._after_write is not None:
                        self._after_write()
            except self.retry_on as exc:
                self.last_error = exc
                delay = self.flush_backoff.next(delay)
                if self._clock() + delay > deadline:
                    raise BackendUnavailable(
                        f"{self.pending} {self.what} could not be written"
                        + (f" in {budget:g} s of retries" if budget else "")
                        + f": {_message(exc)}",
                        hint=(f"{exc.hint} " if isinstance(exc, MilepostError) and exc.hint else "")
                        + f"They stay queued and are retried in the background. {self.hint}",
                    ) from exc
                self._sleep(delay)  # back off while the store recovers
            else:
                self.last_error = None
                if self._failing:  # the store is back: end the thread's backoff now
                    self._wake.set()
                return

    def close(self, timeout: float | None = None) -> None:
        """Flush (see :meth:`flush`) and stop the thread.

        Raises:
            BackendUnavailable: the store stayed down. The items stay queued; another
                ``flush()`` may still write them, else they are lost at exit (logged).
        """
        self._stopped = True
        self._wake.set()
        try:
            self.flush(timeout)
        except BackendUnavailable as exc:
            self._close_failed = True
            log.error(
                "%s closed with %d %s not written: %s They will be lost when this process "
                "exits unless a later flush() succeeds.",
                self.name,
                self.pending,
                self.what,
                exc,
            )
            raise
        finally:
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)

    def start(self) -> None:
        """Start the background thread, if it is not running (no-op after close)."""
        with self._start_lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        """Hand the queue to the sink in batches (caller holds the write lock)."""
        while self._queue:
            batch = self._take()
            try:
                self._sink(batch)
            except Unwritten as exc:
                self._put_back(cast("list[T]", exc.items))
                cause = exc.__cause__
                if cause is None:
                    raise
                raise cause from cause.__cause__
            except BaseException:
                self._put_back(batch)
                raise
            else:
                self.written += len(batch)
                self._done()

    def _batch_len(self) -> int:
        n = len(self._queue)
        return n if self.max_batch is None else min(n, self.max_batch)

    def _take(self) -> list[T]:
        if self._weight is None:
            n = self._batch_len()
            self._in_flight = n  # before popping: ``pending`` never undercounts
            return [self._queue.popleft() for _ in range(n)]
        with self._lock:
            n = self._batch_len()
            batch = [self._queue.popleft() for _ in range(n)]
            w = sum(self._weight(i) for i in batch)
            self._queued_weight -= w
            self._in_flight = w
        return batch

    def _put_back(self, items: list[T]) -> None:
        if self._weight is None:
            self._queue.extendleft(reversed(items))
            self._in_flight = 0
            return
        with self._lock:
            self._queue.extendleft(reversed(items))
            self._queued_weight += sum(self._weight(i) for i in items)
            self._in_flight = 0

    def _done(self) -> None:
        self._in_flight = 0
        self._drop_logged = False
        with self._room:
            self._room.notify_all()

    def _run(self) -> None:
        delay: float | None = None
        while not self._stopped:
            self._wake.wait(self.interval if delay is None else delay)
            self._wake.clear()
            if self._stopped:
                break  # close() writes the rest itself
            try:
                with self._write_lock:
                    self._drain()
                    if self._after_write is not None:
                        self._after_write()
                if self._on_tick is not None:
                    self._on_tick()
            except Exception as exc:  # the thread must outlive any failure
                if not self._failing:
                    if isinstance(exc, MilepostError | OSError):
                        log.warning("%s: write failed, will retry: %s", self.name, exc)
                    else:
                        log.exception("%s: write failed unexpectedly, will retry", self.name)
                self.last_error = exc
                self._failing = True
                delay = self.backoff.next(delay)
            else:
                if self._failing:
                    log.warning("%s: the store is back; writing again.", self.name)
                self._failing = False
                self.last_error = None
                delay = None

    # -- process life ------------------------------------------------------------------

    def _drain_at_exit(self) -> None:
        if self._pid != os.getpid() or (not self.pending and self._after_write is None):
            return
        self._stopped = True
        try:
            # close() already spent its retries: one more attempt, not another budget
            self.flush(0.0 if self._close_failed else None)
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, BackendUnavailable) else None
            log.error(
                "Milepost lost %d %s at exit: %s. %s",
                self.pending,
                self.what,
                _message(cause or exc).rstrip("."),
                self.hint,
            )

    def _reset_in_child(self) -> None:
        # The parent's thread does not exist here, its locks may be held by it, and its
        # queue belongs to the parent (which still writes it).
        self._fresh_state()
        if self._on_fork is not None:
            self._on_fork()


def _message(exc: BaseException | None) -> str:
    if isinstance(exc, MilepostError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if exc is not None else ""


def _drain_all_at_exit() -> None:
    for batcher in list(_LIVE):
        batcher._drain_at_exit()


def _reset_all_in_child() -> None:
    for batcher in list(_LIVE):
        batcher._reset_in_child()


atexit.register(_drain_all_at_exit)
os.register_at_fork(after_in_child=_reset_all_in_child)
