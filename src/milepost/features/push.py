"""Buffered appends of pushed rows to the offline store, as Parquet segments.

``push`` writes the online store synchronously (serving sees a row at once) and hands
the raw rows to this buffer, a :class:`milepost._batcher.Batcher` (shared with the metric
writer and the prediction log): a daemon thread writes them as one Parquet segment per
source every second (or at 10,000 rows); ``flush()``, ``close()`` and interpreter exit
drain it. Segment names sort by time, so later pushes win ties offline too. A fork child
starts with an empty buffer of its own.

**A failing offline store** (a full disk, an unreachable bucket): the rows stay queued,
in order, and the thread retries with exponential backoff (up to 30 s); ``flush()``
retries for up to ``retry_for`` seconds, then raises ``BackendUnavailable``. Rows still
unwritten at exit are logged as lost (the online store has them; the offline copy, used
for training sets, does not).

**When the bound is hit: backpressure.** At most ``max_pending_rows`` rows (default
1,000,000) wait in memory. Then ``push`` blocks until the thread makes room, up to
``block_for`` seconds, and then raises ``BackendUnavailable``: that push reached the
online store but not the offline one; push it again once the offline store is back
(pushing the same rows again is harmless: ties go to the later push). Pushes are not on
a request path, and a silently missing offline copy would skew training sets.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from milepost._batcher import Batcher, Overflow, Unwritten
from milepost.errors import InvalidInput, MilepostError
from milepost.features.offline import normalize_times

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.features.definitions import FeatureView
    from milepost.features.offline import OfflineStore

__all__ = ["MAX_PENDING_ROWS", "PushBuffer", "epoch_ms", "offline_rows", "small_records", "utc"]

MAX_PENDING_ROWS = 1_000_000  # pushed rows waiting in memory before push() blocks


_Pushed = tuple[str, "pd.DataFrame | list[dict[str, Any]]"]


class PushBuffer:
    """Pending pushed rows per source, written as Parquet segments."""

    def __init__(
        self,
        offline: OfflineStore,
        *,
        interval: float = 1.0,
        max_rows: int = 10_000,
        max_pending_rows: int = MAX_PENDING_ROWS,
        retry_for: float = 10.0,
        block_for: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.offline = offline
        self.interval = interval
        self.max_rows = max_rows
        self._batcher: Batcher[_Pushed] = Batcher(
            self._write_batch,
            name="milepost-push-writer",
            what="pushed rows",
            hint="Check that the offline store is reachable and writable (setting "
            "offline_uri), then flush the feature store; the online store already has "
            "these rows.",
            interval=interval,
            batch_size=max_rows,
            max_pending=max_pending_rows,
            overflow=Overflow.BLOCK,
            block_for=block_for,
            retry_for=retry_for,
            retry_on=(MilepostError, OSError),
            weight=lambda item: len(item[1]),
            clock=clock,
            sleep=sleep,
        )

    def append(self, source: str, frame: pd.DataFrame | list[dict[str, Any]]) -> None:
        """Queue rows of a push source, a frame or a list of dict rows (no I/O).

        Raises:
            BackendUnavailable: ``max_pending_rows`` rows waited for ``block_for``
                seconds; these rows were not queued.
        """
        self._batcher.append((source, frame))

    def flush(self) -> None:
        """Write every queued row; on failure the rows stay queued.

        Raises:
            BackendUnavailable: the offline store failed for ``retry_for`` seconds.
        """
        self._batcher.flush()

    @property
    def pending_rows(self) -> int:
        """Rows queued and not yet written."""
        return self._batcher.pending

    @property
    def last_error(self) -> BaseException | None:
        """The error of the last failed write, ``None`` once a write succeeded."""
        return self._batcher.last_error

    def close(self) -> None:
        """Flush and stop the thread (raises as :meth:`flush` does)."""
        self._batcher.close()

    def _write_batch(self, batch: list[_Pushed]) -> None:
        """One segment per source, sources in order of first appearance."""
        by_source: dict[str, list[pd.DataFrame | list[dict[str, Any]]]] = {}
        for source, frame in batch:
            by_source.setdefault(source, []).append(frame)
        done: set[str] = set()
        for source, frames in by_source.items():
            try:
                self._write(source, _concat(frames))
            except BaseException as exc:
                raise Unwritten([item for item in batch if item[0] not in done]) from exc
            done.add(source)

    def _write(self, source: str, frame: pd.DataFrame) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{time.time_ns() % 1_000_000_000:09d}-{uuid.uuid4().hex[:8]}.parquet"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        target = f"{self.offline.push_dir(source)}/{name}"
        if self.offline.remote:
            with self.offline._fs().open(target, "wb") as fh:
                pq.write_table(table, fh)
            return
        directory = self.offline.push_dir(source)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{directory}/.{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, target)  # readers never see half a segment


def _concat(parts: list[pd.DataFrame | list[dict[str, Any]]]) -> pd.DataFrame:
    """One frame of queued parts, in order (runs of dict rows become one frame each)."""
    frames: list[pd.DataFrame] = []
    records: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, pd.DataFrame):
            if records:
                frames.append(pd.DataFrame(records))
                records = []
            frames.append(part)
        else:
            records.extend(part)
    if records:
        frames.append(pd.DataFrame(records))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


# -- pushed rows: a few dicts without pandas, and timestamps as UTC ------------------------

_SMALL_PUSH = 64
_EPOCH = datetime(1970, 1, 1)


def small_records(rows: Any) -> list[dict[str, Any]] | None:
    """``rows`` as a list of dicts when it is one and small (the streaming case)."""
    if isinstance(rows, pd.DataFrame) or not isinstance(rows, list | tuple):
        return None
    if len(rows) > _SMALL_PUSH or not all(isinstance(r, dict) for r in rows):
        return None
    return list(rows)


def utc(value: Any, what: str) -> datetime:
    """A timestamp as an aware UTC datetime, by the rule of ``normalize_times``."""
    if isinstance(value, str | np.datetime64):
        try:
            value = pd.Timestamp(value)
        except ValueError as exc:
            raise InvalidInput(f"{what} must hold timestamps; {exc}.") from exc
    if not isinstance(value, datetime) or pd.isna(value):
        raise InvalidInput(f"{what} must hold timestamps; got {value!r}.")
    plain: datetime = value.to_pydatetime(warn=False) if isinstance(value, pd.Timestamp) else value
    # aware: converted; naive: taken as UTC
    return plain.astimezone(UTC) if plain.tzinfo is not None else plain.replace(tzinfo=UTC)


def epoch_ms(value: datetime) -> int:
    micros = (value.replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)
    return int(micros // 1000)


def offline_rows(
    readers: Sequence[FeatureView], frame: pd.DataFrame | None, records: list[dict[str, Any]]
) -> pd.DataFrame | list[dict[str, Any]]:
    """Pushed rows for the offline store, their timestamps as UTC (one Parquet type)."""
    cols = {
        c for v in readers for c in (v.timestamp_field, v.created_timestamp_field) if c is not None
    }
    if frame is None:
        return [
            {k: (utc(v, k) if k in cols else v) for k, v in record.items()} for record in records
        ]
    out = frame.copy(deep=False)
    for c in cols & set(out.columns):
        out[c] = normalize_times(out[c], f"pushed column {c!r}").dt.tz_localize("UTC")
    return out
