"""Wait on a condition, never on the clock.

A test that sleeps "long enough" for a server, a background writer or a controller is
slow when the machine is idle and flaky when it is busy. ``wait_until`` polls a
predicate instead and, on timeout, fails with what it waited for and what it saw last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

#: how often a predicate is polled; short, since each poll is cheap next to a request
POLL_SECONDS = 0.02


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = POLL_SECONDS,
    ignore: tuple[type[BaseException], ...] = (),
    detail: Callable[[], object] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Args:
        predicate: called until its result is truthy.
        what: the condition in words, for the failure message ("the replica to restart").
        timeout: seconds before the test fails.
        interval: seconds between two calls.
        ignore: exceptions that mean "not yet" (a server still starting refuses
            connections); the last one is shown if the wait times out.
        detail: called on timeout for more context (a server's log, the last answer).

    Returns:
        The predicate's first truthy result.

    Raises:
        pytest.fail.Exception: when ``timeout`` passes first, naming ``what``, the
            predicate's last result and the last ignored exception.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            error = exc
        else:
            if result:
                return result
            last, error = result, None
        if time.monotonic() >= deadline:
            seen = f"last raised {type(error).__name__}: {error}" if error else f"last saw {last!r}"
            more = f"\n{detail()}" if detail is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} ({seen}){more}")
        time.sleep(interval)  # the poll interval, not a guess at how long the work takes


def clock_ms_after(ms: int) -> int:
    """Wait until the wall clock (in whole milliseconds) has moved past ``ms``; return it.

    For tests that take a timestamp and need the next write to carry a later one.
    """

    def later() -> int:
        now = int(time.time() * 1000)
        return now if now > ms else 0

    return wait_until(
        later,
        what=f"the clock to pass {ms} ms",
        timeout=5,
        interval=0.001,
    )
