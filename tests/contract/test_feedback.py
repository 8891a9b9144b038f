"""Feedback rows and the prediction-log lookup behind ``POST .../feedback``, on every backend."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from milepost import Runtime
from milepost.errors import Conflict, MilepostError, NotFound
from milepost.serving.feedback import FeedbackRequest, check_rows, find_request
from milepost.serving.logger import PredictionLogger, new_request_id, request_time


def _row(
    rid: str, i: int, *, role: str = "primary", status: str = "ok", at: int | None = None
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "row": i,
        "ts": time.time_ns() // 1_000_000 if at is None else at,
        "endpoint": "churn-ep",
        "variant": "churn-v1",
        "model": "churn",
        "version": 1,
        "role": role,
        "key": "k",
        "features": "{}",
        "prediction": "1" if status == "ok" else None,
        "latency_ms": 1.0,
        "status": status,
        "error": None if status == "ok" else "Row 0 is missing column 'age'.",
    }


def _logger(runtime: Runtime, endpoint: str = "churn-ep") -> PredictionLogger:
    return PredictionLogger(
        endpoint, runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )


def _find(runtime: Runtime, rid: str, logger: PredictionLogger | None, **kw: Any) -> Any:
    return find_request(rid, endpoint="churn-ep", store=runtime.serving.store, logger=logger, **kw)


def test_request_ids_are_time_ordered() -> None:
    before = time.time_ns() // 1_000_000
    rid = new_request_id()
    assert uuid.UUID(rid).version == 7 and len(rid) == 32
    assert before <= (request_time(rid) or 0) <= time.time_ns() // 1_000_000
    assert new_request_id(1000) < new_request_id(2000)
    assert request_time(uuid.uuid4().hex) is None and request_time("abc") is None


def test_labels_are_never_overwritten(runtime: Runtime) -> None:
    store = runtime.serving.store
    rid = new_request_id()
    assert store.add_feedback("churn-ep", rid, [0, 1, {"a": 1, "b": 2}]) == (3, 0)
    # the same labels again (a retry) change nothing, whatever the key order
    assert store.add_feedback("churn-ep", rid, [0, 1, {"b": 2, "a": 1}]) == (0, 3)
    # one different label refuses the whole call: row 3 is not written either
    with pytest.raises(Conflict, match=r"row 1 has 1, not 0\. Nothing was recorded"):
        store.add_feedback("churn-ep", rid, [0, 0, {"a": 1, "b": 2}, 9])
    assert store.feedback(rid) == {0: 0, 1: 1, 2: {"a": 1, "b": 2}}
    assert store.add_feedback("churn-ep", rid, [9], offset=3) == (1, 0)
    assert store.feedback(rid)[3] == 9


def test_concurrent_different_labels_one_wins_the_other_is_refused(runtime: Runtime) -> None:
    store = runtime.serving.store
    rid = new_request_id()
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def label(value: int) -> None:
        start.wait()
        try:
            outcomes.append(store.add_feedback("churn-ep", rid, [value] * 50))
        except MilepostError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=label, args=(v,)) for v in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "tuple"], outcomes
    winner = next(o for o in outcomes if isinstance(o, tuple))
    assert winner == (50, 0)
    assert len(set(store.feedback(rid).values())) == 1


def test_a_request_is_found_in_the_queue_and_in_segments(runtime: Runtime) -> None:
    logger = _logger(runtime)
    rid = new_request_id()
    for i in range(3):
        logger.append(_row(rid, i))
        logger.append(_row(rid, i, role="shadow"))  # a shadow's copy is not the answer
    assert _find(runtime, rid, logger).rows == 3
    logger.flush()
    assert not logger.pending(rid)
    assert _find(runtime, rid, logger).rows == 3
    assert _find(runtime, rid, None).rows == 3  # another replica reads the segment
    logger.close()


def test_a_slow_request_is_found_in_a_later_segment(runtime: Runtime) -> None:
    logger = _logger(runtime)
    rid = new_request_id()
    made = request_time(rid) or 0
    logger.append(_row(rid, 0, at=made + 90_000))  # answered a minute and a half later
    logger.append(_row(new_request_id(), 0, at=made + 3_000))
    logger.close()
    assert _find(runtime, rid, None, wait_seconds=0).rows == 1


def test_unknown_and_failed_requests_are_refused(runtime: Runtime) -> None:
    logger = _logger(runtime)
    failed = new_request_id()
    logger.append(_row(failed, 0, status="invalid"))
    logger.close()
    logged = _find(runtime, failed, None)
    with pytest.raises(Conflict, match="status 'invalid': Row 0 is missing column"):
        check_rows(FeedbackRequest(failed, [1], None), logged)
    for rid in (new_request_id(), uuid.uuid4().hex, "", "x" * 500, new_request_id(2**47)):
        with pytest.raises(NotFound, match="no logged prediction"):
            _find(runtime, rid, None, wait_seconds=0.2)
    # a request of another endpoint is not this one's
    other = _logger(runtime, "other-ep")
    theirs = new_request_id()
    other.append({**_row(theirs, 0), "endpoint": "other-ep"})
    other.close()
    with pytest.raises(NotFound):
        _find(runtime, theirs, None, wait_seconds=0.2)


def test_a_request_answered_by_another_replica_is_waited_for(runtime: Runtime) -> None:
    mine, theirs = _logger(runtime), _logger(runtime)
    rid = new_request_id()
    theirs.append(_row(rid, 0))  # queued in the other replica, not written yet
    found: list[Any] = []
    lookup = threading.Thread(
        target=lambda: found.append(_find(runtime, rid, mine, wait_seconds=30))
    )
    lookup.start()
    theirs.flush()  # its next write
    lookup.join(timeout=30)
    assert found and found[0].rows == 1
    mine.close()
    theirs.close()
