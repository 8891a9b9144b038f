"""The one background batcher behind the metric writer, the push buffer and the prediction
log: retries without loss, a clear error when the store stays down, the bound's policies,
a fresh batcher in a fork child, and the drain at exit.

Retries in ``flush()`` run on an injected clock and sleeper: no test here sleeps.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from milepost._batcher import Backoff, Batcher, Overflow, Unwritten
from milepost.errors import BackendUnavailable


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


class Sink:
    """A store that fails its next ``fail`` writes, or every write while ``down``."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.down = False
        self.calls = 0
        self.written: list[Any] = []

    def __call__(self, batch: list[Any]) -> None:
        self.calls += 1
        if self.down or self.fail > 0:
            self.fail -= 1
            raise BackendUnavailable("the store is down", hint="Start it.")
        self.written.extend(batch)


def _batcher(sink: Callable[[list[Any]], None], fake: FakeTime, **kw: Any) -> Batcher[Any]:
    options: dict[str, Any] = {
        "name": "test-batcher",
        "what": "things",
        "hint": "Start the store, then flush.",
        "interval": 3600.0,  # the thread stays out of the way unless a test wakes it
        "batch_size": 10**9,
        "max_pending": 10**6,
        "overflow": Overflow.BLOCK,
        "clock": fake.clock,
        "sleep": fake.sleep,
    }
    return Batcher(sink, **(options | kw))


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.005)


def test_backoff_is_exponential_and_capped() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    delays = [backoff.next(None)]
    for _ in range(6):
        delays.append(backoff.next(delays[-1]))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("failures", [1, 3, 8])
def test_flush_rides_out_n_failures_and_loses_nothing(failures: int) -> None:
    fake, sink = FakeTime(), Sink(fail=failures)
    batcher = _batcher(sink, fake, max_batch=7)
    batcher.extend(list(range(100)))
    batcher.flush()
    assert sink.written == list(range(100))  # each once, in order
    assert batcher.pending == 0 and batcher.last_error is None
    # backed off before each retry: doubling from 0.05 s, at most 2 s
    assert fake.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0][:failures])
    batcher.close()


def test_a_store_that_stays_down_fails_flush_and_close_clearly_and_keeps_the_items(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, sink = FakeTime(), Sink()
    sink.down = True
    batcher = _batcher(sink, fake, retry_for=10.0)
    batcher.extend([1, 2, 3])
    with pytest.raises(BackendUnavailable) as failed:
        batcher.flush()
    assert failed.value.message == (
        "3 things could not be written in 10 s of retries: the store is down"
    )
    assert failed.value.hint == (
        "Start it. They stay queued and are retried in the background. Start the store, then flush."
    )
    assert isinstance(failed.value.__cause__, BackendUnavailable)
    assert 9 <= fake.now <= 10  # it retried for the whole budget, and no longer
    assert batcher.pending == 3 and sink.written == []
    with (
        caplog.at_level(logging.ERROR, logger="milepost.batcher"),
        pytest.raises(BackendUnavailable, match=r"^3 things could not be written"),
    ):
        batcher.close()
    assert "closed with 3 things not written" in caplog.text
    assert "lost when this process exits unless a later flush() succeeds" in caplog.text
    sink.down = False
    batcher.flush()  # the items were kept
    assert sink.written == [1, 2, 3]


def test_a_partly_written_batch_retries_only_the_rest() -> None:
    fake = FakeTime()
    written: list[int] = []
    failures = iter([True, False])

    def half_then_fail(batch: list[int]) -> None:
        if next(failures, False):
            written.extend(batch[:2])
            try:
                raise BackendUnavailable("lost the connection")
            except BackendUnavailable as exc:
                raise Unwritten(batch[2:]) from exc
        written.extend(batch)

    batcher = _batcher(half_then_fail, fake)
    batcher.extend([1, 2, 3, 4, 5])
    batcher.flush()
    assert written == [1, 2, 3, 4, 5]
    assert fake.sleeps == [0.05]


def test_an_error_flush_does_not_retry_is_raised_at_once_and_the_items_stay() -> None:
    fake = FakeTime()

    def buggy(batch: list[int]) -> None:
        raise RuntimeError("a bug in a store")

    batcher = _batcher(buggy, fake)
    batcher.extend([1, 2])
    with pytest.raises(RuntimeError, match="a bug"):
        batcher.flush()
    assert batcher.pending == 2 and fake.sleeps == []
    batcher._sink = Sink()  # fixed; nothing left for the drain at exit
    batcher.close()


def test_the_thread_backs_off_retries_and_writes_everything() -> None:
    sink = Sink(fail=4)
    batcher = _batcher(
        sink, FakeTime(), interval=0.001, backoff=Backoff(first=0.001, cap=0.004), batch_size=1
    )
    batcher.extend(list(range(50)))
    _wait_for(lambda: sink.written == list(range(50)), "the thread to write everything")
    assert sink.calls >= 5  # four failures, then the write
    _wait_for(lambda: batcher.last_error is None, "the thread to record the recovery")
    batcher.close()


def test_drop_newest_never_blocks_and_counts_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    sink.down = True
    drops: list[int] = []
    batcher = _batcher(
        sink, FakeTime(), max_pending=5, overflow=Overflow.DROP_NEWEST, on_drop=drops.append
    )
    with caplog.at_level(logging.WARNING, logger="milepost.batcher"):
        for i in range(8):
            batcher.append(i)
        batcher.extend([8, 9])
    assert batcher.pending == 5 and batcher.dropped == 5 and sum(drops) == 5
    assert caplog.text.count("new ones are dropped") == 1  # once per outage, not per row
    sink.down = False
    batcher.flush()
    assert sink.written == [0, 1, 2, 3, 4]  # the oldest are kept
    batcher.append(10)  # room again
    batcher.flush()
    assert sink.written[-1] == 10 and batcher.dropped == 5


def test_block_waits_for_room_and_goes_on_once_the_store_takes_the_items() -> None:
    sink = Sink()
    sink.down = True
    batcher = _batcher(sink, FakeTime(), max_pending=3, block_for=60.0)
    batcher.extend([0, 1, 2])
    appended = threading.Event()

    def append_one_more() -> None:
        batcher.append(3)
        appended.set()

    caller = threading.Thread(target=append_one_more)
    caller.start()
    assert not appended.wait(0.2)  # the caller waits: the queue is full
    assert batcher.pending == 3
    sink.down = False
    batcher.flush()  # makes room, wakes the caller
    caller.join(timeout=30)
    assert appended.is_set()
    batcher.flush()
    assert sink.written == [0, 1, 2, 3]
    batcher.close()


def test_block_raises_a_clear_error_when_no_room_comes() -> None:
    sink = Sink()
    sink.down = True
    batcher = _batcher(sink, FakeTime(), max_pending=3, block_for=0.05, retry_for=0)
    batcher.extend([0, 1, 2])
    with pytest.raises(BackendUnavailable):
        batcher.flush()
    with pytest.raises(BackendUnavailable) as full:
        batcher.append(3)
    assert full.value.message == (
        "3 things are waiting to be written, the limit of 3; this one was not queued "
        "after waiting 0.05 s: the store is down"
    )
    assert full.value.hint == "Start the store, then flush."
    assert batcher.pending == 3
    sink.down = False
    batcher.close()
    assert sink.written == [0, 1, 2]


def test_the_bound_counts_weight_when_given() -> None:
    sink = Sink()
    sink.down = True
    batcher = _batcher(sink, FakeTime(), max_pending=10, block_for=0.0, weight=len)
    batcher.append([1] * 6)
    assert batcher.pending == 6
    batcher.append([2] * 6)  # admitted: below the bound when it came
    with pytest.raises(BackendUnavailable, match=r"^12 things are waiting"):
        batcher.append([3])
    sink.down = False
    batcher.flush()
    assert batcher.pending == 0 and sink.written == [[1] * 6, [2] * 6]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (3.12+)
def test_a_fork_child_gets_an_empty_batcher_and_the_parent_keeps_its_queue() -> None:
    sink = Sink()
    sink.down = True
    batcher = _batcher(sink, FakeTime())
    batcher.extend([1, 2, 3])
    batcher.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            state = (batcher.pending, batcher._thread is None, batcher.last_error)
            sink.down = False
            batcher.append(99)
            batcher.flush()
            report = f"{state} {sink.written}"
            os.write(write, report.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    assert report == "(0, True, None) [99]"  # no inherited queue, no thread
    assert batcher.pending == 3 and batcher._thread is not None  # the parent is unaffected
    sink.down = False
    batcher.flush()
    assert sink.written == [1, 2, 3]
    batcher.close()


_EXIT_SCRIPT = """
import sys
from milepost._batcher import Batcher, Overflow
from milepost.errors import BackendUnavailable

out = sys.argv[1]
down = sys.argv[2] == "down"

def sink(batch):
    if down:
        raise BackendUnavailable("the store is down")
    with open(out, "a") as fh:
        fh.writelines(f"{i}\\n" for i in batch)

batcher = Batcher(
    sink, name="exit-test", what="things", hint="Start the store and run again.",
    interval=3600, batch_size=10**9, max_pending=100, overflow=Overflow.BLOCK,
    retry_for=0.2,
)
batcher.extend(list(range(5)))
# no flush, no close: the interpreter exits with five items queued
"""


@pytest.mark.parametrize("store", ["up", "down"])
def test_the_queue_is_drained_at_exit_or_the_loss_is_logged(tmp_path: Path, store: str) -> None:
    script = tmp_path / "exit_test.py"
    script.write_text(textwrap.dedent(_EXIT_SCRIPT))
    out = tmp_path / "written.txt"
    done = subprocess.run(
        [sys.executable, str(script), str(out), store],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    if store == "up":
        assert out.read_text().split() == ["0", "1", "2", "3", "4"]
        assert "lost" not in done.stderr
    else:
        assert not out.exists()
        assert (
            "Milepost lost 5 things at exit: the store is down. Start the store and run again."
            in done.stderr
        )
