"""Retention of prediction logs and decision records: whole segments, past their time.

A segment is deleted once its newest row is older than its retention: a segment holding
decision records (a consequential endpoint's rows with their explanations) follows
``decision_retention_days``, any other ``prediction_log_retention_days``; None keeps
them forever. Deleting a segment unregisters it, deletes the feedback (labels) of the
requests it holds and then its file or blob. The database changes come first, in one
transaction audited per endpoint (``predictions.prune`` with the counts); a file left
behind by a failure after that is never read again (only registered segments are).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import BackendUnavailable, InvalidInput
from milepost.serving.decisions import PruneReport

if TYPE_CHECKING:
    from datetime import datetime

    from milepost.serving.backends.sql import SqlServingStore

__all__ = ["DAY_MS", "epoch_ms", "prune"]

DAY_MS = 86_400_000


def epoch_ms(now: int | datetime | None) -> int:
    """The time retention counts back from, in epoch ms (None: now).

    Raises:
        InvalidInput: neither epoch milliseconds nor an aware datetime.
    """
    if now is None:
        return int(time.time() * 1000)
    if isinstance(now, int) and not isinstance(now, bool):
        return now
    if hasattr(now, "timestamp") and getattr(now, "tzinfo", None) is not None:
        return int(now.timestamp() * 1000)
    raise InvalidInput(
        f"now must be epoch milliseconds or an aware datetime, got {check.short_repr(now)}."
    )


def _cutoff(now_ms: int, days: float | None) -> int | None:
    return None if days is None else now_ms - int(days * DAY_MS)


def _contents(store: SqlServingStore, path: str) -> tuple[bool, set[str]] | None:
    """Whether a segment holds decision records, and its request ids (None: it is gone)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from milepost.monitoring._segments import local_segments

    with local_segments([path], storage_options=store.storage_options) as files:
        if not files:
            return None
        try:
            f = pq.ParquetFile(files[0])
            names = f.schema_arrow.names
            columns = ["request_id"] + (["explanation"] if "explanation" in names else [])
            table = f.read(columns=columns)
        except OSError as exc:
            raise BackendUnavailable(f"Cannot read prediction-log segment {path}: {exc}") from exc
    decisions = "explanation" in columns and pc.count(table.column("explanation")).as_py() > 0
    return bool(decisions), {str(r) for r in table.column("request_id").to_pylist()}


def _delete_file(store: SqlServingStore, path: str) -> None:
    """Delete a segment's file (a local path) or blob (a URL); a missing one is fine."""
    from pathlib import Path

    from milepost.monitoring._segments import is_remote

    if not is_remote(path):
        Path(path.removeprefix("file://")).unlink(missing_ok=True)
        return
    import fsspec

    fs = fsspec.filesystem(path.partition("://")[0], **store.storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def prune(
    store: SqlServingStore,
    *,
    now_ms: int,
    log_days: float | None,
    decision_days: float | None,
    actor: str,
    dry_run: bool = False,
) -> PruneReport:
    """Delete (``dry_run``: only count) the segments past their retention (see the module
    docstring).

    Raises:
        BackendUnavailable: a segment could not be read (nothing was deleted).
    """
    log_before, decision_before = _cutoff(now_ms, log_days), _cutoff(now_ms, decision_days)
    before = {"prediction_log": log_before, "decisions": decision_before}
    cutoffs = [c for c in (log_before, decision_before) if c is not None]
    if not cutoffs:
        return PruneReport(now_ms, dry_run, 0, 0, 0, 0, before_ms=before)
    expired: list[dict[str, Any]] = []
    request_ids: dict[str, set[str]] = {}
    decision_segments = 0
    for seg in store.segments_before(max(cutoffs)):
        contents = _contents(store, str(seg["path"]))
        holds_decisions, ids = contents if contents is not None else (False, set())
        limit = decision_before if holds_decisions else log_before
        if limit is None or seg["last_at"] >= limit:
            continue
        expired.append(seg)
        decision_segments += holds_decisions
        request_ids.setdefault(str(seg["endpoint"]), set()).update(ids)
    per_endpoint: dict[str, int] = {}
    rows_of: dict[str, int] = {}
    for seg in expired:
        name = str(seg["endpoint"])
        per_endpoint[name] = per_endpoint.get(name, 0) + 1
        rows_of[name] = rows_of.get(name, 0) + int(seg["rows"])
    rows = sum(rows_of.values())
    if dry_run or not expired:
        labels = 0 if not expired else store.count_feedback(request_ids)
        return PruneReport(
            now_ms,
            dry_run,
            len(expired),
            rows,
            decision_segments,
            labels,
            before_ms=before,
            endpoints=per_endpoint,
        )
    details = {name: {"rows": rows_of[name], "before_ms": before} for name in per_endpoint}
    deleted, labels, unused = store.delete_segments(
        expired, request_ids, actor=actor, details=details
    )
    for path in unused:
        _delete_file(store, path)
    return PruneReport(
        now_ms,
        False,
        deleted,
        rows,
        decision_segments,
        labels,
        before_ms=before,
        endpoints=per_endpoint,
    )
