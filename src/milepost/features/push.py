"""Buffered appends of pushed rows to the offline store, as Parquet segments.

``push`` writes the online store synchronously (serving sees a row at once) and hands
the raw rows to this buffer; a daemon thread writes them as one Parquet segment per
source every second (or at 10,000 rows), ``flush()`` and interpreter exit drain it. A
crash loses at most the rows not yet flushed from the offline copy; the online store
already has them. Segment names sort by time, so later pushes win ties offline too.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from milepost.errors import InvalidInput, MilepostError
from milepost.features.offline import normalize_times

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.features.definitions import FeatureView
    from milepost.features.offline import OfflineStore

__all__ = ["PushBuffer", "epoch_ms", "offline_rows", "small_records", "utc"]

log = logging.getLogger("milepost.features")


class PushBuffer:
    """Pending pushed rows per source, written as Parquet segments."""

    def __init__(
        self, offline: OfflineStore, *, interval: float = 1.0, max_rows: int = 10_000
    ) -> None:
        self.offline = offline
        self.interval = interval
        self.max_rows = max_rows
        self._pending: dict[str, list[pd.DataFrame | list[dict[str, Any]]]] = {}
        self._rows = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._pid = os.getpid()
        ref = weakref.ref(self)
        atexit.register(_flush_at_exit, ref)

    def append(self, source: str, frame: pd.DataFrame | list[dict[str, Any]]) -> None:
        """Queue rows of a push source, a frame or a list of dict rows (no I/O)."""
        with self._lock:
            self._pending.setdefault(source, []).append(frame)
            self._rows += len(frame)
            full = self._rows >= self.max_rows
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if full:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="milepost-push-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except MilepostError as exc:  # keep the rows; retry next time
                log.warning("Could not write pushed rows to the offline store: %s", exc)

    def flush(self) -> None:
        """Write every queued row; on failure the rows stay queued."""
        with self._write_lock:
            with self._lock:
                pending, self._pending, self._rows = self._pending, {}, 0
            try:
                for source, frames in list(pending.items()):
                    self._write(source, _concat(frames))
                    del pending[source]
            except BaseException:
                with self._lock:
                    for source, frames in pending.items():
                        self._pending.setdefault(source, [])[:0] = frames
                        self._rows += sum(len(f) for f in frames)
                raise

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

    @property
    def pending_rows(self) -> int:
        """Rows queued and not yet written."""
        return self._rows

    def close(self) -> None:
        """Flush and stop the thread."""
        self._stopped = True
        self._wake.set()
        self.flush()


def _flush_at_exit(ref: weakref.ReferenceType[PushBuffer]) -> None:
    buffer = ref()
    if buffer is None or buffer._pid != os.getpid():
        return
    try:
        buffer.flush()
    except MilepostError as exc:
        log.error("Milepost could not write %d pushed rows at exit: %s", buffer.pending_rows, exc)


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
