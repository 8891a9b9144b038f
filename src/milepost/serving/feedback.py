"""Feedback (ground truth) for logged predictions: checked, bounded, never overwritten.

``POST /v1/endpoints/{name}/feedback`` takes ``{"request_id": ..., "labels": [...]}``
(``"label": x`` for a one-row request; ``"offset": k`` to label rows ``k, k+1, ...`` of a
long request in several calls):

- the request id must be one the endpoint answered and logged: this replica's queue of
  log rows is read, then the segments written around the time in the id (request ids are
  time-ordered, see :func:`milepost.serving.logger.new_request_id`). A request answered
  by another replica moments ago may not be in a segment yet (each replica writes once a
  second), so a recent request id that is not found is looked for again for
  ``FRESH_WAIT_SECONDS`` before the answer is 404;
- without ``offset`` there is one label per predicted row, in row order; with it, the
  labels must fall within the request's rows;
- at most ``MAX_LABELS`` labels and ``MAX_BODY`` bytes per call (413 beyond);
- a row's label is never replaced: the same labels again change nothing (retries are
  safe), a different label for a labelled row refuses the call (409) and writes nothing.

This module blocks (file reads, database writes): the model server calls it from a worker
thread, never on its event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from milepost.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from milepost.serving.logger import LOG_SCHEMA, request_time

if TYPE_CHECKING:
    from milepost.serving.backends.sql import SqlServingStore
    from milepost.serving.logger import PredictionLogger

__all__ = [
    "FRESH_WAIT_SECONDS",
    "MAX_BODY",
    "MAX_LABELS",
    "FeedbackRequest",
    "LoggedRequest",
    "find_request",
    "logged_rows",
    "parse_feedback",
]

MAX_LABELS = 1000
MAX_BODY = 1024 * 1024
FRESH_WAIT_SECONDS = 2.5
# Where a request's log rows are looked for, in ms after the time in its id: first the
# segments of the next few seconds (almost every request), then up to ten minutes (a
# request that took that long to answer).
_WINDOWS_MS = (5_000, 600_000)
_CLOCK_SLACK_MS = 1_000
_FIELDS = ("request_id", "label", "labels", "offset")


@dataclass(frozen=True)
class FeedbackRequest:
    """A parsed feedback call."""

    request_id: str
    labels: list[Any]
    offset: int | None


@dataclass(frozen=True)
class LoggedRequest:
    """What the prediction log says about a request: its rows and how it was answered."""

    request_id: str
    rows: int
    status: str
    error: str | None


def parse_feedback(body: bytes) -> FeedbackRequest:
    """Check a feedback body's shape and limits (no I/O).

    Raises:
        InvalidInput: not a JSON object with ``request_id`` and ``label``/``labels``.
        PayloadTooLarge: more than ``MAX_LABELS`` labels.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request body is not JSON: {exc}.") from None
    usage = 'Send {"request_id": "<from the /predict answer>", "labels": [...]}.'
    if not isinstance(payload, dict):
        raise InvalidInput("Feedback must be a JSON object.", hint=usage)
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        raise InvalidInput(
            f"Unknown feedback field {unknown[0]!r}.",
            hint="Feedback takes " + ", ".join(_FIELDS) + ".",
        )
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput("Feedback needs 'request_id' (a string).", hint=usage)
    if "label" in payload and "labels" in payload:
        raise InvalidInput("Send 'label' (one row) or 'labels' (a list), not both.")
    labels = [payload["label"]] if "label" in payload else payload.get("labels")
    if not isinstance(labels, list) or not labels:
        raise InvalidInput("Feedback needs 'label' or a non-empty 'labels' list.", hint=usage)
    if len(labels) > MAX_LABELS:
        raise PayloadTooLarge(
            f"{len(labels)} labels in one call; the limit is {MAX_LABELS}.",
            hint="Send a long request's labels in several calls, each with 'offset'.",
        )
    missing = next((i for i, v in enumerate(labels) if v is None), None)
    if missing is not None:
        raise InvalidInput(f"Label {missing} is null.", hint="Send only the rows you know.")
    offset = payload.get("offset")
    if offset is not None and (
        not isinstance(offset, int) or isinstance(offset, bool) or offset < 0
    ):
        raise InvalidInput(f"'offset' must be a row number (0 or more), not {offset!r}.")
    return FeedbackRequest(request_id, labels, offset)


def check_rows(request: FeedbackRequest, logged: LoggedRequest) -> int:
    """The first labelled row, once the labels fit the request's rows.

    Raises:
        Conflict: the request has no prediction (it failed).
        InvalidInput: the labels do not match the request's rows.
    """
    if logged.status != "ok":
        raise Conflict(
            f"Request {logged.request_id!r} was not answered with a prediction "
            f"(status {logged.status!r}: {logged.error}); there is nothing to label.",
            hint="Send feedback for requests that returned predictions.",
        )
    n, count = logged.rows, len(request.labels)
    if request.offset is None:
        if count != n:
            raise InvalidInput(
                f"Request {logged.request_id!r} predicted {n} row(s), but {count} label(s) "
                "were sent.",
                hint="Send one label per row, in row order"
                + (
                    ""
                    if n <= MAX_LABELS
                    else f", in calls of at most {MAX_LABELS} labels with 'offset'"
                )
                + ".",
            )
        return 0
    if request.offset + count > n:
        raise InvalidInput(
            f"Labels for rows {request.offset}..{request.offset + count - 1} were sent, but "
            f"request {logged.request_id!r} predicted {n} row(s) (0..{n - 1}).",
        )
    return request.offset


def find_request(
    request_id: str,
    *,
    endpoint: str,
    store: SqlServingStore,
    logger: PredictionLogger | None,
    wait_seconds: float = FRESH_WAIT_SECONDS,
    log_predictions: bool = True,
) -> LoggedRequest:
    """Find a request in the endpoint's prediction log (blocking; see the module docstring).

    Raises:
        NotFound: no answer of this endpoint carries that request id.
        BackendUnavailable: a segment could not be read.
    """
    made_at = request_time(request_id)
    now = time.time_ns() // 1_000_000
    if made_at is None or made_at > now + _WINDOWS_MS[0]:
        raise _unknown(request_id, endpoint, log_predictions)
    rows = logger.pending(request_id) if logger is not None else []
    seen: set[str] = set()
    for window in _WINDOWS_MS:
        rows += _read_new(store, endpoint, made_at, window, seen, request_id)
        if _served(rows):
            return _summary(request_id, rows)
    # Another replica may have answered it and not written its segment yet.
    if now - made_at <= _WINDOWS_MS[-1]:
        deadline = time.monotonic() + wait_seconds
        pause = threading.Event()
        while time.monotonic() < deadline:
            pause.wait(0.2)
            rows += _read_new(store, endpoint, made_at, _WINDOWS_MS[-1], seen, request_id)
            if _served(rows):
                return _summary(request_id, rows)
    raise _unknown(request_id, endpoint, log_predictions)


def logged_rows(
    request_id: str, *, store: SqlServingStore, endpoint: str | None = None
) -> list[dict[str, Any]]:
    """Every log row of a request (all ``LOG_SCHEMA`` columns, shadows' rows too), read
    from the segments written around the time in its id, of one endpoint or of all;
    ``[]`` when none holds it (or the id is not a time-ordered request id).

    Raises:
        BackendUnavailable: a segment could not be read.
    """
    made_at = request_time(request_id)
    if made_at is None:
        return []
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for window in _WINDOWS_MS:
        rows += _read_new(store, endpoint, made_at, window, seen, request_id, columns=None)
        if _served(rows):
            break
    return rows


def _unknown(request_id: str, endpoint: str, log_predictions: bool) -> NotFound:
    if not log_predictions:
        hint = (
            "This endpoint does not log its predictions (created with --no-log), so "
            "there is nothing to join feedback to."
        )
    else:
        hint = "Send the request_id of a /predict answer of this endpoint."
    return NotFound(
        f"Endpoint {endpoint!r} has no logged prediction with request id {request_id[:64]!r}.",
        hint=hint,
    )


_FEEDBACK_COLUMNS = ["row", "role", "status", "prediction", "error"]


def _read_new(
    store: SqlServingStore,
    endpoint: str | None,
    made_at: int,
    window_ms: int,
    seen: set[str],
    request_id: str,
    *,
    columns: list[str] | None = _FEEDBACK_COLUMNS,
) -> list[dict[str, Any]]:
    """Log rows of the request in segments of the window not read yet (local files, or
    the artifact store's when the replicas write there); of every endpoint when
    ``endpoint`` is None; ``columns`` None reads them all."""
    import pyarrow.dataset as ds

    from milepost.monitoring._segments import local_segments

    paths = store.segments(
        endpoint, since_ms=made_at - _CLOCK_SLACK_MS, until_ms=made_at + window_ms
    )
    fresh = [p for p in paths if p not in seen]
    seen.update(paths)
    if not fresh:
        return []
    with local_segments(fresh, storage_options=getattr(store, "storage_options", None)) as files:
        if not files:
            return []
        try:
            table = ds.dataset(files, schema=LOG_SCHEMA, format="parquet").to_table(
                columns=columns,
                filter=ds.field("request_id") == request_id,
            )
        except OSError as exc:
            raise BackendUnavailable(
                f"Cannot read the prediction log of {endpoint or 'the endpoints'!r}: {exc}"
            ) from exc
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _served(rows: list[dict[str, Any]]) -> bool:
    return any(r["role"] != "shadow" for r in rows)


def _summary(request_id: str, rows: list[dict[str, Any]]) -> LoggedRequest:
    """The answer the client got: the rows of the variant that was not a shadow."""
    served = [r for r in rows if r["role"] != "shadow"]
    failed = next((r for r in served if r["status"] != "ok" or r["prediction"] is None), None)
    return LoggedRequest(
        request_id=request_id,
        rows=len({r["row"] for r in served}),
        status="ok" if failed is None else str(failed["status"]),
        error=None if failed is None else failed["error"],
    )
