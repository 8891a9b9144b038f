"""Batch online reads answer exactly what one read per entity row answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.features.online import entity_key, pack
from milepost.features.online.sqlite import SqliteOnlineStore
from milepost.features.online_reads import read_stored
from milepost.features.resolve import ViewRead

TTL_MS = 1000
NOW_MS = 10_000
# id -> event time (ms): 1 and "x" fresh, 2 expired, 4 exactly at the TTL (fresh); 3 absent
STORED: dict[Any, int] = {1: 9_500, 2: 8_000, "x": 9_999, 4: NOW_MS - TTL_MS, "a\x00b": 9_000}
READ = ViewRead(
    key="v:v1",
    entity="e",
    join_keys=("id",),
    ttl_ms=TTL_MS,
    index=(2, 0),
    columns=("v__c", "v__a"),
    width=3,
)


@pytest.fixture(params=["json_each", "in"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteOnlineStore:
    """The SQLite store, reading batches through json_each or through its IN fallback."""
    store = SqliteOnlineStore(f"sqlite:///{tmp_path}/online.db")
    store._json_each = request.param == "json_each"
    store.write(
        "v:v1",
        [
            (entity_key((i,)), ts, ts, pack(ts, ts, [f"a{i}", ts, f"c{i}"]))
            for i, ts in STORED.items()
        ],
    )
    return store


def _read(online: SqliteOnlineStore, ids: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    read_stored(online, [READ], [{"id": i} for i in ids], NOW_MS, values, statuses)
    return values, statuses


def test_a_batch_mixes_present_expired_and_missing(online: SqliteOnlineStore) -> None:
    values, statuses = _read(online, [1, 2, 3, "x", 1, 4])
    assert statuses["v__a"] == statuses["v__c"]
    assert statuses["v__a"] == ["present", "expired", "missing", "present", "present", "present"]
    assert values == {
        "v__c": ["c1", None, None, "cx", "c1", "c4"],
        "v__a": ["a1", None, None, "ax", "a1", "a4"],
    }


def test_a_batch_all_present_fills_every_column(online: SqliteOnlineStore) -> None:
    values, statuses = _read(online, [4, "x", 1, "a\x00b"])
    assert values == {"v__c": ["c4", "cx", "c1", "ca\x00b"], "v__a": ["a4", "ax", "a1", "aa\x00b"]}
    assert statuses == {"v__c": ["present"] * 4, "v__a": ["present"] * 4}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from([*STORED, 3, "3", "y"]), min_size=1, max_size=12))
def test_a_batch_equals_one_read_per_row(online: SqliteOnlineStore, ids: list[Any]) -> None:
    values, statuses = _read(online, ids)
    singles = [_read(online, [i]) for i in ids]
    for col in READ.columns:
        assert values[col] == [v[col][0] for v, _ in singles]
        assert statuses[col] == [s[col][0] for _, s in singles]


def test_a_row_without_the_join_key_is_refused(online: SqliteOnlineStore) -> None:
    with pytest.raises(InvalidInput, match="lacks join key 'id'"):
        read_stored(online, [READ], [{"id": 1}, {"other": 2}], NOW_MS, {}, {})
