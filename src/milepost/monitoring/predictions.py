"""The prediction-log reader: what an endpoint's logged requests say over a window.

The model server appends one row per predicted row to Parquet segments (columns of
``milepost.serving.logger.LOG_SCHEMA``: ``request_id``, ``row``, ``ts``, ``variant``,
``role``, ``prediction`` (JSON text), ``latency_ms``, ``status``, ...) and registers each
segment with the time range it covers and where it is: a local path, or a URL of the
artifact store (``s3://...``) when the replicas write there, so a reader on any host
sees every replica's rows (remote segments are downloaded to a bounded per-process cache
first, see :mod:`milepost.monitoring._segments`). Everything here reads those segments
with DuckDB, given anything with the store's ``segments(endpoint, since_ms=, until_ms=)``
method (:class:`SegmentSource`; the serving store has it):

- :func:`read_predictions`: the logged rows of a window (optionally one variant) as an
  Arrow table, for monitors and ad-hoc analysis;
- :func:`variant_stats`: per-variant requests, errors, p50/p99 latency and, for shadows,
  agreement with the answer clients got (``deploy status``, the canary controller, the
  demo);
- :func:`prediction_counts` and :func:`prediction_psi`: how often each prediction value
  came from two variants, and the PSI between them (each distinct value one category,
  see :mod:`milepost.monitoring.stats`).

Windows are in epoch milliseconds, both ends inclusive; no end means up to now.
:func:`fmt_ms` writes a latency, so ``p99 2.3 ms`` reads the same everywhere.

The SQL is built from quoted file paths, ``int()`` times and quoted column names; values
are bound parameters (hence the ``S608`` exemptions below).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from milepost._records import record_dict
from milepost.monitoring._segments import local_segments

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    import duckdb
    import pyarrow as pa

__all__ = [
    "SegmentSource",
    "VariantStats",
    "fmt_ms",
    "prediction_counts",
    "prediction_psi",
    "read_predictions",
    "segment_paths",
    "variant_stats",
]


class SegmentSource(Protocol):
    """Where an endpoint's prediction-log segments are registered (the serving store).

    ``segments`` returns their locations (local paths or URLs). A source may also have a
    ``storage_options`` attribute: the fsspec options for remote ones (S3 endpoint).
    """

    def segments(
        self, endpoint: str, *, since_ms: int = 0, until_ms: int | None = None
    ) -> list[str]: ...


def fmt_ms(value: float | None) -> str:
    """A latency as people read it: ``2.3 ms`` (``-`` when unknown)."""
    return "-" if value is None else f"{value:.1f} ms"


@dataclass(frozen=True)
class VariantStats:
    """What the prediction log says about one variant in a window."""

    variant: str
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    agreement: float | None = None  # shadows: share of answers equal to what clients got
    first_at: int | None = None  # epoch ms of its first request in the window

    @property
    def error_rate(self) -> float:
        """Errors per request (0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``error_rate``)."""
        return record_dict(self, extra={"error_rate": self.error_rate})

    def __repr__(self) -> str:
        return (
            f"VariantStats({self.variant}: {self.requests:,} requests, {self.errors} errors, "
            f"p99 {fmt_ms(self.p99_ms)})"
        )


def segment_paths(
    source: SegmentSource, endpoint: str, *, since_ms: int, until_ms: int | None = None
) -> list[Path]:
    """Local files of the segments that may hold rows of the window (missing ones left
    out). Remote segments are downloaded to this process's cache, where they stay until
    it needs the room; the readers below hold them while they read.

    Raises:
        BackendUnavailable: a remote segment could not be read.
    """
    with _segments(source, endpoint, since_ms=since_ms, until_ms=until_ms) as paths:
        return paths


@contextlib.contextmanager
def _segments(
    source: SegmentSource, endpoint: str, *, since_ms: int, until_ms: int | None
) -> Iterator[list[Path]]:
    """Local files of the window's segments, kept in place while the block runs."""
    locations = source.segments(endpoint, since_ms=since_ms, until_ms=until_ms)
    options = getattr(source, "storage_options", None)
    with local_segments(locations, storage_options=options) as paths:
        yield paths


# Columns added to the log after segments were first written: an older segment lacks
# them, and a window of only older segments reads them as NULL (of this SQL type).
_LATE_COLUMNS = {"probabilities": "VARCHAR"}


def _parquet(paths: Sequence[Path]) -> str:
    """``read_parquet([...])`` over local files, as a SQL literal (paths escaped).

    Columns are matched by name (``union_by_name``): segments written before a column
    was added read it as NULL next to newer ones.
    """
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}], union_by_name=true)"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(con: duckdb.DuckDBPyConnection, source: str, columns: Sequence[str] | None) -> str:
    """The select list: ``columns`` (default all), a late column missing from every
    segment as a typed NULL."""
    wanted = set(_LATE_COLUMNS) if columns is None else set(columns) & set(_LATE_COLUMNS)
    if not wanted:
        return "*" if columns is None else ", ".join(map(_ident, columns))
    present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}  # noqa: S608
    missing = [c for c in _LATE_COLUMNS if c in wanted and c not in present]
    if columns is None:
        return ", ".join(["*", *(f"NULL::{_LATE_COLUMNS[c]} AS {_ident(c)}" for c in missing)])
    return ", ".join(
        f"NULL::{_LATE_COLUMNS[c]} AS {_ident(c)}" if c in missing else _ident(c) for c in columns
    )


def _window(since_ms: int, until_ms: int | None) -> str:
    where = f"ts >= epoch_ms({int(since_ms)})"
    if until_ms is not None:
        where += f" AND ts <= epoch_ms({int(until_ms)})"
    return where


def _connect() -> duckdb.DuckDBPyConnection:
    import duckdb  # here, not at the top: a model server never needs it

    return duckdb.connect()


def read_predictions(
    source: SegmentSource,
    endpoint: str,
    *,
    since_ms: int,
    until_ms: int | None = None,
    variant: str | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table | None:
    """The logged rows of ``endpoint`` in the window (only ``variant``'s with one), in
    time order, as an Arrow table of ``columns`` (default: all); ``None`` when no
    segment covers the window.

    Raises:
        BackendUnavailable: a segment in the artifact store could not be read.
    """
    with _segments(source, endpoint, since_ms=since_ms, until_ms=until_ms) as paths:
        if not paths:
            return None
        return _read(paths, since_ms, until_ms, variant, columns)


def _read(
    paths: Sequence[Path],
    since_ms: int,
    until_ms: int | None,
    variant: str | None,
    columns: Sequence[str] | None,
) -> pa.Table:
    params: list[Any] = []
    where = _window(since_ms, until_ms)
    if variant is not None:
        where += " AND variant = ?"
        params.append(variant)
    con = _connect()
    try:
        source = _parquet(paths)
        table: pa.Table = con.sql(
            f"SELECT {_select(con, source, columns)} FROM {source} WHERE {where} "  # noqa: S608
            "ORDER BY ts, request_id, row",
            params=params,
        ).to_arrow_table()
    finally:
        con.close()
    return table


def variant_stats(
    source: SegmentSource, endpoint: str, *, since_ms: int, until_ms: int | None = None
) -> dict[str, VariantStats]:
    """Per-variant requests, errors and latency (p50 and p99, interpolated) from the
    prediction log in the window. A request counts once (its first row), whatever the
    number of rows it carried; a shadow's ``agreement`` is the share of its ``ok``
    answers equal to the one the client got for the same request."""
    with _segments(source, endpoint, since_ms=since_ms, until_ms=until_ms) as paths:
        if not paths:
            return {}
        return _variant_stats(paths, since_ms, until_ms)


def _variant_stats(
    paths: Sequence[Path], since_ms: int, until_ms: int | None
) -> dict[str, VariantStats]:
    con = _connect()
    try:
        con.execute(
            f"CREATE VIEW log AS SELECT * FROM {_parquet(paths)} "  # noqa: S608
            f"WHERE {_window(since_ms, until_ms)} AND row = 0"
        )
        rows = con.execute(
            "SELECT variant, count(*), count(*) FILTER (WHERE status = 'error'), "
            "quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), "
            "epoch_ms(min(ts)) FROM log GROUP BY variant"
        ).fetchall()
        agreement = dict(
            con.execute(
                "SELECT s.variant, "
                "avg(CASE WHEN s.prediction = p.prediction THEN 1.0 ELSE 0.0 END) "
                "FROM log s JOIN log p ON s.request_id = p.request_id AND p.role <> 'shadow' "
                "WHERE s.role = 'shadow' AND s.status = 'ok' GROUP BY s.variant"
            ).fetchall()
        )
    finally:
        con.close()
    return {
        v: VariantStats(v, int(n), int(e), p50, p99, agreement.get(v), int(first))
        for v, n, e, p50, p99, first in rows
    }


def prediction_counts(
    source: SegmentSource,
    endpoint: str,
    variants: Sequence[str],
    *,
    since_ms: int,
    until_ms: int | None = None,
) -> list[dict[str | None, int]]:
    """For each of ``variants``, how many ``ok`` rows (every row of a request) predicted
    each value (the logged JSON text) in the window; empty mappings when nothing was
    logged."""
    counts: list[dict[str | None, int]] = [{} for _ in variants]
    if not variants:
        return counts
    with _segments(source, endpoint, since_ms=since_ms, until_ms=until_ms) as paths:
        if paths:
            _count(paths, since_ms, until_ms, variants, counts)
    return counts


def _count(
    paths: Sequence[Path],
    since_ms: int,
    until_ms: int | None,
    variants: Sequence[str],
    counts: list[dict[str | None, int]],
) -> None:
    filters = ", ".join("count(*) FILTER (WHERE variant = ?)" for _ in variants)
    con = _connect()
    try:
        rows = con.execute(
            f"SELECT prediction, {filters} FROM {_parquet(paths)} "  # noqa: S608
            f"WHERE {_window(since_ms, until_ms)} AND status = 'ok' GROUP BY prediction",
            list(variants),
        ).fetchall()
    finally:
        con.close()
    for row in rows:
        for i in range(len(variants)):
            if row[i + 1]:
                counts[i][row[0]] = int(row[i + 1])


def prediction_psi(
    source: SegmentSource,
    endpoint: str,
    since_ms: int,
    candidate: str,
    primary: str,
    *,
    until_ms: int | None = None,
) -> float | None:
    """PSI of ``candidate``'s predictions against ``primary``'s in the window, each
    distinct prediction one category (:func:`~milepost.monitoring.stats.psi_categorical`);
    ``None`` when either logged no ``ok`` prediction."""
    from milepost.monitoring.stats import psi_categorical  # NumPy: only when computed

    ref, cur = prediction_counts(
        source, endpoint, [primary, candidate], since_ms=since_ms, until_ms=until_ms
    )
    if not ref or not cur:
        return None
    return psi_categorical(ref, cur)
