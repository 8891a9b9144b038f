"""The prediction logger's segments: JSON lines in, the same table as row-by-row
conversion out, written to a local blob store and registered with its location."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milepost.monitoring import read_predictions
from milepost.serving.backends.sql import SqlServingStore
from milepost.serving.logger import (
    LOG_SCHEMA,
    PredictionLogger,
    _table,
    _table_slow,
    new_request_id,
)
from milepost.stores.blobs import LocalBlobStore
from milepost.stores.metadata import MetadataStore

T0 = 1_700_000_000_000


def _row(i: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": new_request_id(T0 + i),
        "row": i,
        "ts": T0 + i,
        "endpoint": "ep",
        "variant": "v1",
        "model": "churn",
        "version": 3,
        "role": "primary",
        "key": f"k{i}",
        "features": orjson.dumps({"name": 'a "quoted"\nline ✓', "x": i / 3}).decode(),
        "prediction": "[0.25, 0.75]",
        "latency_ms": 0.125 * i,
        "status": "ok",
        "error": None,
    }
    row.update(over)
    return row


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlServingStore]:
    db = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield SqlServingStore(db)
    db.engine.dispose()


def test_json_lines_give_the_same_table_as_row_by_row_conversion() -> None:
    rows = [_row(i) for i in range(50)]
    rows[3]["error"] = "boom: ünïcode"
    rows[4]["status"] = "error"
    rows[4]["prediction"] = None
    del rows[5]["key"]  # a missing column is null
    fast = _table([orjson.dumps(r) for r in rows])
    assert fast.schema.equals(LOG_SCHEMA)
    assert fast.equals(_table_slow(rows))
    assert fast.column("ts")[0].as_py() == datetime.fromtimestamp(T0 / 1000, UTC)
    assert fast.column("key")[5].as_py() is None
    assert orjson.loads(fast.column("features")[1].as_py())["name"] == 'a "quoted"\nline ✓'


def test_a_value_of_the_wrong_type_falls_back_and_fails_like_before() -> None:
    bad = [orjson.dumps(_row(0, version="three"))]
    with pytest.raises(pa.ArrowInvalid):
        _table(bad)


def test_rows_written_to_the_blob_store_are_registered_and_read(
    tmp_path: Path, store: SqlServingStore
) -> None:
    blobs = LocalBlobStore(tmp_path / "artifacts")
    logger = PredictionLogger("ep", tmp_path / "home" / "predictions", store, blobs=blobs)
    now = time.time_ns() // 1_000_000
    rid = new_request_id(now)
    logger.append(_row(0, request_id=rid, ts=datetime.fromtimestamp(now / 1000, UTC)))
    logger.append(_row(1, request_id=rid, ts=now, latency_ms=np.float64(2.5)))
    assert [r["row"] for r in logger.pending(rid)] == [0, 1]
    assert logger.pending('no"such') == []
    logger.close()
    (location,) = store.segments("ep")
    assert Path(location).is_relative_to(tmp_path / "artifacts")
    assert not (tmp_path / "home" / "predictions").exists()  # nothing beside the store
    assert pq.read_table(location).num_rows == 2
    table = read_predictions(store, "ep", since_ms=now - 1000)
    assert table is not None
    assert table.column("latency_ms").to_pylist() == [0.0, 2.5]
    assert table.column("ts").to_pylist()[1] == datetime.fromtimestamp(now / 1000, UTC)


def test_without_a_blob_store_segments_are_files_under_the_directory(
    tmp_path: Path, store: SqlServingStore
) -> None:
    logger = PredictionLogger("ep", tmp_path / "predictions", store)
    logger.append(_row(0))
    logger.close()
    (location,) = store.segments("ep")
    assert Path(location).parent == tmp_path / "predictions" / "ep"
    assert pq.read_table(location).schema.equals(LOG_SCHEMA)
