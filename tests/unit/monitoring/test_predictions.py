"""The prediction-log reader over real Parquet segments registered in a SQLite store."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milepost.monitoring import (
    VariantStats,
    fmt_ms,
    prediction_counts,
    prediction_psi,
    psi_categorical,
    read_predictions,
    segment_paths,
    variant_stats,
)
from milepost.serving.backends.sql import SqlServingStore
from milepost.serving.logger import LOG_SCHEMA
from milepost.stores.metadata import MetadataStore

T0 = 1_700_000_000_000  # epoch ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlServingStore]:
    db = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield SqlServingStore(db)
    db.engine.dispose()


def _row(
    request_id: str,
    variant: str,
    at: int,
    *,
    row: int = 0,
    role: str = "primary",
    prediction: str = "0",
    latency: float = 1.0,
    status: str = "ok",
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "row": row,
        "ts": datetime.fromtimestamp(at / 1000, tz=UTC),
        "endpoint": "ep",
        "variant": variant,
        "model": "m",
        "version": 1,
        "role": role,
        "key": None,
        "features": "{}",
        "prediction": prediction,
        "latency_ms": latency,
        "status": status,
        "error": "boom" if status == "error" else None,
    }


def _segment(store: SqlServingStore, path: Path, rows: list[dict[str, Any]]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=LOG_SCHEMA), path)
    times = [int(r["ts"].timestamp() * 1000) for r in rows]
    store.add_segments(
        [
            {
                "endpoint": "ep",
                "path": str(path),
                "rows": len(rows),
                "first_at": min(times),
                "last_at": max(times),
            }
        ]
    )


def test_an_endpoint_with_no_log_reads_as_empty(store: SqlServingStore) -> None:
    assert variant_stats(store, "ep", since_ms=0) == {}
    assert read_predictions(store, "ep", since_ms=0) is None
    assert prediction_counts(store, "ep", ["a", "b"], since_ms=0) == [{}, {}]
    assert prediction_psi(store, "ep", 0, "b", "a") is None


def test_variant_stats_count_requests_errors_latency_and_agreement(
    store: SqlServingStore, tmp_path: Path
) -> None:
    latencies = [float(x) for x in range(1, 101)]
    rows = [
        _row(f"p{i}", "v1", T0 + i, latency=latencies[i], status="error" if i < 5 else "ok")
        for i in range(100)
    ]
    # a two-row request counts once, its second row's latency is not counted again
    rows.append(_row("p0", "v1", T0, row=1, latency=1000.0))
    # a shadow answering requests 5..14: it says "0" (as the primary did) for 5 and 6 only
    rows += [
        _row(f"p{i}", "v2", T0 + i, role="shadow", prediction="0" if i < 7 else "1")
        for i in range(5, 15)
    ]
    _segment(store, tmp_path / "a.parquet", rows)
    stats = variant_stats(store, "ep", since_ms=T0)
    assert set(stats) == {"v1", "v2"}
    v1 = stats["v1"]
    assert (v1.requests, v1.errors, v1.first_at) == (100, 5, T0)
    assert v1.error_rate == pytest.approx(0.05)
    # DuckDB's quantile_cont is NumPy's linear interpolation
    assert v1.p50_ms == pytest.approx(float(np.quantile(latencies, 0.5)))
    assert v1.p99_ms == pytest.approx(float(np.quantile(latencies, 0.99)))
    assert v1.agreement is None
    assert stats["v2"].agreement == pytest.approx(2 / 10)
    assert stats["v2"].to_dict()["error_rate"] == 0.0
    assert repr(v1) == "VariantStats(v1: 100 requests, 5 errors, p99 99.0 ms)"


def test_the_window_bounds_are_inclusive_and_select_segments(
    store: SqlServingStore, tmp_path: Path
) -> None:
    _segment(store, tmp_path / "early.parquet", [_row(f"e{i}", "v1", T0 + i) for i in range(3)])
    _segment(
        store, tmp_path / "late.parquet", [_row(f"l{i}", "v1", T0 + 10_000 + i) for i in range(4)]
    )
    assert len(segment_paths(store, "ep", since_ms=T0 + 5_000)) == 1
    assert variant_stats(store, "ep", since_ms=T0 + 1, until_ms=T0 + 10_000)["v1"].requests == 3
    assert variant_stats(store, "ep", since_ms=T0 + 10_000)["v1"].requests == 4
    # a registered segment whose file is gone is skipped, not an error
    (tmp_path / "early.parquet").unlink()
    assert variant_stats(store, "ep", since_ms=T0)["v1"].requests == 4


def test_read_predictions_returns_a_window_of_one_variant(
    store: SqlServingStore, tmp_path: Path
) -> None:
    rows = [_row(f"r{i}", "v1" if i % 2 else "v2", T0 + i, prediction=str(i)) for i in range(10)]
    _segment(store, tmp_path / "a.parquet", rows[::-1])
    table = read_predictions(store, "ep", since_ms=T0 + 2, until_ms=T0 + 7, variant="v1")
    assert table is not None
    assert table.column_names == LOG_SCHEMA.names
    assert table.column("prediction").to_pylist() == ["3", "5", "7"]  # in time order
    only = read_predictions(store, "ep", since_ms=T0, columns=["request_id", "latency_ms"])
    assert only is not None and only.column_names == ["request_id", "latency_ms"]
    assert only.num_rows == 10


def test_prediction_psi_is_the_categorical_psi_of_ok_predictions(
    store: SqlServingStore, tmp_path: Path
) -> None:
    rows = [_row(f"a{i}", "v1", T0 + i, prediction="0" if i < 50 else "1") for i in range(100)]
    rows += [_row(f"b{i}", "v2", T0 + i, prediction="0" if i < 90 else "1") for i in range(100)]
    rows += [_row(f"c{i}", "v2", T0 + i, prediction="7", status="error") for i in range(30)]
    # another variant's predictions do not change the figure between these two
    rows += [_row(f"d{i}", "v3", T0 + i, prediction="2") for i in range(30)]
    _segment(store, tmp_path / "a.parquet", rows)
    counts = prediction_counts(store, "ep", ["v1", "v2"], since_ms=T0)
    assert counts == [{"0": 50, "1": 50}, {"0": 90, "1": 10}]
    value = prediction_psi(store, "ep", T0, "v2", "v1")
    assert value == pytest.approx(0.4 * math.log(9), rel=1e-12)
    assert value == psi_categorical(*counts)
    # no ok prediction from one side: nothing to compare
    assert prediction_psi(store, "ep", T0, "v9", "v1") is None


def test_fmt_ms() -> None:
    assert fmt_ms(None) == "-"
    assert fmt_ms(2.345) == "2.3 ms"
    assert VariantStats("v", 0, 0, None, None).error_rate == 0.0
