"""One contract for every online store backend (SQLite always, Redis with the marker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.errors import ConfigError
from milepost.features.online import OnlineStore, entity_key, open_online_store, pack, unpack


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        s = open_online_store(f"sqlite:///{tmp_path}/online.db")
    else:
        s = open_online_store(request.getfixturevalue("redis_url"))
    yield s
    s.close()


def _row(entity: str, ev: int, cr: int, *values: object) -> tuple[str, int, int, bytes]:
    return (entity, ev, cr, pack(ev, cr, values))


def test_write_then_read_in_order(store: OnlineStore) -> None:
    store.write("v:v1", [_row("a", 10, 10, 1.5, "x"), _row("b", 11, 11, 2.5, None)])
    got = store.read("v:v1", ["b", "missing", "a", "b"])
    assert got[1] is None
    assert unpack(got[0]) == (11, 11, [2.5, None]) == unpack(got[3])  # type: ignore[arg-type]
    assert unpack(got[2]) == (10, 10, [1.5, "x"])  # type: ignore[arg-type]
    assert store.read("other:v1", ["a"]) == [None]


def test_only_newer_rows_replace(store: OnlineStore) -> None:
    store.write("v:v1", [_row("a", 10, 5, "first")])
    store.write("v:v1", [_row("a", 9, 99, "older event")])  # older event time: ignored
    store.write("v:v1", [_row("a", 10, 4, "older created")])  # same event, older created: ignored
    assert unpack(store.read("v:v1", ["a"])[0])[2] == ["first"]  # type: ignore[arg-type]
    store.write("v:v1", [_row("a", 10, 5, "same times")])  # same event and created: replaces
    assert unpack(store.read("v:v1", ["a"])[0])[2] == ["same times"]  # type: ignore[arg-type]
    store.write("v:v1", [_row("a", 11, 0, "newer")])
    assert unpack(store.read("v:v1", ["a"])[0])[2] == ["newer"]  # type: ignore[arg-type]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 5), st.integers(0, 5)),
        min_size=1,
        max_size=20,
    ),
    st.randoms(),
)
def test_any_write_order_converges(
    store: OnlineStore, writes: list[tuple[str, int, int]], rnd: object
) -> None:
    view = f"v{abs(hash(tuple(writes))) % 10**9}:v1"
    rows = [_row(e, ev, cr, ev * 10 + cr) for e, ev, cr in writes]
    shuffled = list(rows)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    for r in shuffled:
        store.write(view, [r])
    for entity in "abc":
        mine = [(ev, cr) for e, ev, cr in writes if e == entity]
        got = store.read(view, [entity])[0]
        if not mine:
            assert got is None
        else:
            ev, cr = max(mine)
            assert unpack(got)[:2] == (ev, cr)  # type: ignore[arg-type]
    store.delete_view(view)


def test_sample_and_delete(store: OnlineStore) -> None:
    store.write("v:v1", [_row(str(i), 1, 1, i) for i in range(30)])
    store.write("w:v1", [_row("keep", 1, 1, 0)])
    sample = store.sample("v:v1", 10)
    assert len(sample) == 10 and set(sample) <= {str(i) for i in range(30)}
    store.delete_view("v:v1")
    assert store.read("v:v1", ["1", "2"]) == [None, None]
    assert store.read("w:v1", ["keep"])[0] is not None


def test_large_batches(store: OnlineStore) -> None:
    rows = [_row(str(i), 1, 1, float(i)) for i in range(2500)]
    assert store.write("big:v1", rows) == 2500
    got = store.read("big:v1", [str(i) for i in range(2500)])
    assert [unpack(g)[2][0] for g in got] == [float(i) for i in range(2500)]  # type: ignore[arg-type]


ODD_KEYS = ["s:a\x00b", "s:a", "s:\u00e9\x1f", 's:"q"\\', "s:\\u0000", "n:1", "s:\U0001f600"]


def test_batch_reads_keep_order_duplicates_and_odd_keys(store: OnlineStore) -> None:
    """A batch read answers per asked key, in order, whatever the key's text holds."""
    store.write("odd:v1", [_row(k, 1, 1, i) for i, k in enumerate(ODD_KEYS)])
    asked = [*reversed(ODD_KEYS), "s:a", "absent", "s:a\x00", "s:a\x00b"]
    got = store.read("odd:v1", asked)
    want = [ODD_KEYS.index(k) if k in ODD_KEYS else None for k in asked]
    assert [None if g is None else unpack(g)[2][0] for g in got] == want


def test_entity_keys_keep_types() -> None:
    assert entity_key([5]) != entity_key(["5"])
    assert entity_key([1, "a"]) == entity_key([1, "a"]) != entity_key(["1", "a"])


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match="redis://"):
        open_online_store("dynamodb://table")
