"""Point-in-time correctness against a naive reference implementation (Hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.features import offline
from milepost.features.definitions import Entity, FeatureView, Field, FileSource
from milepost.features.offline import OfflineStore, ViewRequest

T0 = datetime(2026, 1, 1)
TTL_HOURS = 3

rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 3),  # entity
        st.integers(0, 12),  # event hour
        st.integers(0, 3),  # created offset
        st.integers(-50, 50),  # value
        st.integers(0, 1),  # which file
    ),
    min_size=0,
    max_size=25,
)
labels_strategy = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 16)), min_size=1, max_size=15
)


def naive(
    rows: list[tuple[int, int, int, int, int]], labels: list[tuple[int, int]]
) -> list[float | None]:
    """For each label: the row of that entity with event <= t and > t - ttl; ties go to the
    latest created, then the later file, then the later row in the file."""
    out: list[float | None] = []
    for entity, t in labels:
        best = None
        for position, (e, ev, cr, value, file) in enumerate(rows):
            if e != entity or not (t - TTL_HOURS < ev <= t):
                continue
            # rows are written file by file in order, so `position` within a file is its row
            rank = (ev, cr, file, position)
            if best is None or rank > best[0]:
                best = (rank, value)
        out.append(None if best is None else float(best[1]))
    return out


def _write(tmp_path: Path, rows: list[tuple[int, int, int, int, int]]) -> FeatureView:
    import tempfile

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for file in (0, 1):
        mine = [r for r in rows if r[4] == file]
        table = pa.table(
            {
                "entity_id": pa.array([r[0] for r in mine], pa.int64()),
                "ts": pa.array([T0 + timedelta(hours=r[1]) for r in mine], pa.timestamp("us")),
                "created": pa.array(
                    [T0 + timedelta(minutes=r[2]) for r in mine], pa.timestamp("us")
                ),
                "value": pa.array([float(r[3]) for r in mine], pa.float64()),
            }
        )
        pq.write_table(table, folder / f"part-{file}.parquet", row_group_size=3)
    view = FeatureView(
        name="v",
        entity=Entity("e", ["entity_id"]),
        source=FileSource(str(folder)),
        timestamp_field="ts",
        created_timestamp_field="created",
        ttl=timedelta(hours=TTL_HOURS),
        schema=[Field("value")],
    )
    return view


def _store(tmp_path: Path) -> OfflineStore:
    return OfflineStore(str(tmp_path / "offline"), data=None, cache_dir=tmp_path / "cache")  # type: ignore[arg-type]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, labels=labels_strategy)
def test_matches_the_naive_reference(
    tmp_path: Path, rows: list[tuple[int, int, int, int, int]], labels: list[tuple[int, int]]
) -> None:
    view = _write(tmp_path, rows)
    store = _store(tmp_path)
    entity_df = pd.DataFrame(
        {
            "entity_id": [e for e, _ in labels],
            "event_timestamp": [T0 + timedelta(hours=t) for _, t in labels],
            "label": range(len(labels)),
        }
    )
    out, _ = store.historical(
        entity_df,
        [ViewRequest(view, 1, ["value"])],
        timestamp_column="event_timestamp",
        names={("v:v1", "value"): "value"},
        fingerprints={"v:v1": "x"},
    )
    assert list(out["label"]) == list(range(len(labels)))  # order kept, nothing dropped
    got = [None if pd.isna(v) else float(v) for v in out["value"]]
    assert got == naive(rows, labels)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, start=st.integers(0, 6), end=st.integers(4, 14))
def test_latest_rows_match_the_naive_reference(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[int, int, int, int, int]],
    start: int,
    end: int,
) -> None:
    """Materialization's newest row per entity in [start, end), one file per query."""
    monkeypatch.setattr(offline, "CHUNK_BYTES", 1)  # every file its own query
    view = _write(tmp_path, rows)
    expected: dict[int, tuple[tuple[int, int, int, int], int]] = {}
    for position, (e, ev, cr, value, file) in enumerate(rows):
        if start <= ev < end:
            rank = (ev, cr, file, position)
            if e not in expected or rank > expected[e][0]:
                expected[e] = (rank, value)
    batches = list(
        _store(tmp_path).latest_rows(
            view,
            "x",
            start=pd.Timestamp(T0 + timedelta(hours=start)),
            end=pd.Timestamp(T0 + timedelta(hours=end)),
        )
    )
    got = {}
    for batch in batches:
        for row in batch.to_pylist():
            assert row["entity_id"] not in got  # one row per entity
            got[row["entity_id"]] = (row["__mp_ts"], row["value"])
    assert got == {
        e: (T0 + timedelta(hours=rank[0]), float(value)) for e, (rank, value) in expected.items()
    }


def test_timezone_rule_aware_and_naive_agree(tmp_path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "entity_id": [1],
                "ts": pa.array([datetime(2026, 1, 1, 10)], pa.timestamp("us", "UTC")),
                "value": [1.0],
            }
        ),
        tmp_path / "s.parquet",
    )
    view = FeatureView(
        name="v",
        entity=Entity("e", ["entity_id"]),
        source=FileSource(str(tmp_path / "s.parquet")),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("value")],
    )
    store = OfflineStore(str(tmp_path / "o"), data=None, cache_dir=tmp_path / "c")  # type: ignore[arg-type]

    def at(ts: object) -> object:
        frame = pd.DataFrame({"entity_id": [1], "event_timestamp": [ts]})
        out, _ = store.historical(
            frame,
            [ViewRequest(view, 1, ["value"])],
            timestamp_column="event_timestamp",
            names={("v:v1", "value"): "value"},
            fingerprints={"v:v1": "x"},
        )
        return out["value"].iloc[0]

    assert at(pd.Timestamp("2026-01-01 10:30")) == 1.0  # naive = UTC
    assert at(pd.Timestamp("2026-01-01 11:30", tz="Europe/Berlin")) == 1.0  # 10:30 UTC
    assert pd.isna(
        at(pd.Timestamp("2026-01-01 10:30", tz="America/New_York"))
    )  # 15:30 UTC: expired
