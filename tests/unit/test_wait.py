"""The suite's wait helper: returns the first truthy answer, or fails saying what it saw."""

from __future__ import annotations

import itertools
import time

import pytest

from tests._wait import clock_ms_after, wait_until


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([0, None, "", "ready", "later"])
    assert wait_until(lambda: next(answers), what="an answer", interval=0) == "ready"


def test_a_timeout_names_the_condition_and_the_last_answer() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"waiting for the count \(last saw 0\)"):
        wait_until(lambda: 0, what="the count", timeout=0.05)
    with pytest.raises(pytest.fail.Exception, match=r"last saw False\)\nthe log says hi"):
        wait_until(lambda: False, what="x", timeout=0.01, detail=lambda: "the log says hi")


def test_ignored_errors_mean_not_yet_and_others_propagate() -> None:
    calls = itertools.count()

    def flaky() -> bool:
        if next(calls) < 3:
            raise ConnectionError("refused")
        return True

    assert wait_until(flaky, what="a server", ignore=(ConnectionError,), interval=0)

    def down() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(pytest.fail.Exception, match="last raised ConnectionError: refused"):
        wait_until(down, what="a server", ignore=(ConnectionError,), timeout=0.02)
    with pytest.raises(ConnectionError):
        wait_until(down, what="a server")


def test_clock_ms_after_returns_a_later_millisecond() -> None:
    now = int(time.time() * 1000)
    assert clock_ms_after(now) > now
