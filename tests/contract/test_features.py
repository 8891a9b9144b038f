"""The feature store on every metadata backend (SQLite online store; Redis in integration)."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import Conflict, InvalidInput, NotFound
from milepost.features import (
    DatasetSource,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
)
from milepost.features.repo import Definitions

NOW = datetime.now(UTC).replace(microsecond=0)
customer = Entity("customer", join_keys=["customer_id"])


def spend_features(df: pd.DataFrame) -> pd.DataFrame:
    df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
    return df


def spend_features_v2(df: pd.DataFrame) -> pd.DataFrame:
    df["spend_per_ticket"] = df["monthly_spend"] / (2 + df["support_tickets"])
    return df


def discounted(df: pd.DataFrame) -> pd.DataFrame:
    df["discounted_spend"] = df["activity__monthly_spend"] * (1 - df["discount"] / 100)
    return df


def activity_view(transform: Any = spend_features, **kw: Any) -> FeatureView:
    return FeatureView(
        name="activity",
        entity=customer,
        source=DatasetSource("events"),
        timestamp_field="ts",
        created_timestamp_field="created",
        ttl=timedelta(days=2),
        schema=[Field("monthly_spend"), Field("support_tickets", "int"), Field("spend_per_ticket")],
        transform=transform,
        **kw,
    )


def events(n_customers: int = 50, days: int = 10) -> pd.DataFrame:
    """One row per customer per day (up to NOW), plus corrections of some rows."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(1, n_customers + 1):
        for d in range(days):
            ts = NOW - timedelta(days=days - 1 - d, hours=1)
            rows.append(
                {
                    "customer_id": c,
                    "ts": ts,
                    "created": ts,
                    "monthly_spend": float(rng.integers(10, 100)),
                    "support_tickets": int(rng.integers(0, 4)),
                }
            )
    frame = pd.DataFrame(rows)
    fixes = frame.sample(min(20, len(frame) // 2), random_state=1).copy()
    fixes["created"] = fixes["created"] + timedelta(minutes=5)
    fixes["monthly_spend"] = -1.0  # the corrected value must win
    return pd.concat([frame, fixes], ignore_index=True)


@pytest.fixture
def store(runtime: Runtime) -> FeatureStore:
    milepost.data.register("events", events())
    pricing = OnDemandFeatureView(
        name="pricing",
        sources=[activity := activity_view()],
        request_schema=[Field("discount")],
        schema=[Field("discounted_spend")],
        transform=discounted,
    )
    clicks = FeatureView(
        name="clicks",
        entity=customer,
        source=PushSource("clicks"),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("clicks", "int")],
    )
    fs = FeatureStore([customer, activity, pricing, clicks])
    fs.apply()
    return fs


def test_plan_apply_and_versions(runtime: Runtime) -> None:
    milepost.data.register("events", events(5, 2))
    fs = FeatureStore([customer, activity_view()])
    assert [(p.view, p.change, p.next_version) for p in fs.plan()] == [("activity", "new", 1)]
    fs.apply()
    assert [(p.view, p.change) for p in fs.plan()] == [("activity", "unchanged")]
    changed = FeatureStore([customer, activity_view(spend_features_v2)])
    assert [(p.view, p.change, p.current_version, p.next_version) for p in changed.plan()] == [
        ("activity", "new_version", 1, 2)
    ]
    assert changed.apply()[0].next_version == 2
    # both versions stay readable; the old one through its own code
    records = runtime.features.registry.versions()
    assert [(r.name, r.version, r.status) for r in records] == [
        ("activity", 1, "active"),
        ("activity", 2, "active"),
    ]
    assert Client().list_audit_events(action="feature.apply")[0].object_id == "activity:v2"
    with pytest.raises(Conflict, match="declares version=1"):
        FeatureStore([customer, activity_view(lambda df: df, version=1)]).apply()
    # nothing partly applied: the refused definition did not register
    assert len(runtime.features.registry.versions()) == 2


def test_historical_is_point_in_time_and_keeps_every_row(store: FeatureStore) -> None:
    raw = events()
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 999, 3],
            "event_timestamp": [
                NOW,
                NOW - timedelta(days=30),
                NOW - timedelta(days=3, hours=12),
                NOW,
                NOW - timedelta(hours=1),
            ],
            "label": [1, 0, 1, 0, 1],
        }
    )
    out = store.get_historical_features(
        labels, ["activity:monthly_spend", "activity:spend_per_ticket"]
    )
    assert list(out["label"]) == [1, 0, 1, 0, 1] and len(out) == 5
    # customer 1 at NOW: the newest row (1 hour old), corrected if it was corrected
    mine = raw[(raw.customer_id == 1) & (raw.ts <= NOW)].sort_values(["ts", "created"])
    assert out["monthly_spend"][0] == mine["monthly_spend"].iloc[-1]
    assert np.isnan(out["monthly_spend"][1])  # before any data
    assert np.isnan(out["monthly_spend"][3])  # unknown entity: nulls, row kept
    row = mine.iloc[-1]
    assert out["spend_per_ticket"][0] == pytest.approx(
        row.monthly_spend / (1 + row.support_tickets)
    )


def test_corrections_win_offline_and_online(store: FeatureStore) -> None:
    raw = events()
    fixed = raw[raw["monthly_spend"] == -1.0].iloc[0]
    labels = pd.DataFrame({"customer_id": [fixed.customer_id], "event_timestamp": [fixed.ts]})
    assert (
        store.get_historical_features(labels, ["activity:monthly_spend"])["monthly_spend"][0]
        == -1.0
    )


def test_ttl_masks_old_values(store: FeatureStore) -> None:
    labels = pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW + timedelta(days=5)]})
    out = store.get_historical_features(labels, ["activity:monthly_spend"])
    assert np.isnan(out["monthly_spend"][0])  # the newest row is 5 days old, TTL is 2


def test_on_demand_features_use_the_same_code_offline_and_online(store: FeatureStore) -> None:
    store.materialize(NOW - timedelta(days=30), NOW + timedelta(seconds=1))
    rows = [{"customer_id": c, "discount": 10.0} for c in (1, 2, 3)]
    online = store.get_online_features(["pricing:discounted_spend", "activity:monthly_spend"], rows)
    labels = pd.DataFrame(rows).assign(event_timestamp=NOW)
    offline = store.get_historical_features(
        labels, ["pricing:discounted_spend", "activity:monthly_spend"]
    )
    assert online.values["discounted_spend"] == pytest.approx(list(offline["discounted_spend"]))
    assert online.values["monthly_spend"] == list(offline["monthly_spend"])


def test_materialize_is_idempotent_and_online_reads_honour_ttl(
    store: FeatureStore, runtime: Runtime
) -> None:
    first = store.materialize(NOW - timedelta(days=30), NOW + timedelta(seconds=1))
    assert first["activity:v1"] == 50
    again = store.materialize(NOW - timedelta(days=30), NOW + timedelta(seconds=1))
    assert again["activity:v1"] == 50
    resp = store.get_online_features(
        ["activity:monthly_spend", "activity:support_tickets"],
        [{"customer_id": 1}, {"customer_id": 999}],
    )
    assert resp.statuses["monthly_spend"] == ["present", "missing"]
    assert resp.values["monthly_spend"][1] is None
    later = runtime.features.get_online_features(
        store.definitions,
        ["activity:monthly_spend"],
        [{"customer_id": 1}],
        now=NOW + timedelta(days=3),
    )
    assert later.statuses["monthly_spend"] == ["expired"] and later.values["monthly_spend"] == [
        None
    ]
    assert store.check_consistency("activity", sample=20).ok
    sampled = store.online_entities("activity", 10)
    assert len(sampled) == 10 and len({e["customer_id"] for e in sampled}) == 10
    everyone = store.online_entities("activity", 10_000)
    assert {e["customer_id"] for e in everyone} == set(range(1, 51))


def test_refresh_fills_what_reads_cache(
    store: FeatureStore, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After refresh(), reads within the second ask the metadata store nothing."""
    store.materialize(NOW - timedelta(days=30), NOW + timedelta(seconds=1))
    refs, rows = ["activity:monthly_spend"], [{"customer_id": 1}, {"customer_id": 2}]
    before = store.get_online_features(refs, rows)
    service = runtime.features
    assert service._records is not None
    service._records = (service._records[0] - 60, service._records[1])  # a minute old
    store.refresh()
    asked: list[str] = []
    registry = service.registry
    for name in ("versions", "watermarks"):
        real = getattr(registry, name)
        monkeypatch.setattr(
            registry, name, lambda real=real, name=name: asked.append(name) or real()
        )
    after = store.get_online_features(refs, rows)
    assert asked == []
    assert after.values == before.values and after.statuses == before.statuses


def test_incremental_materialization_keeps_a_watermark(
    store: FeatureStore, runtime: Runtime
) -> None:
    store.materialize_incremental(NOW - timedelta(days=1))
    mark = {r.name: r.materialized_until for r in runtime.features.registry.versions()}
    assert mark["activity"] == int((NOW - timedelta(days=1)).timestamp() * 1000)
    before = store.get_online_features(["activity:monthly_spend"], [{"customer_id": 1}])
    store.materialize_incremental(NOW + timedelta(seconds=1))
    after = store.get_online_features(["activity:monthly_spend"], [{"customer_id": 1}])
    assert before.values != after.values or before.statuses != after.statuses
    assert store.materialize_incremental(NOW + timedelta(seconds=1))["activity:v1"] == 0


def test_push_reaches_both_paths(store: FeatureStore) -> None:
    now = datetime.now(UTC)
    store.push("clicks", pd.DataFrame({"customer_id": [1, 2], "ts": [now, now], "clicks": [3, 4]}))
    online = store.get_online_features(["clicks:clicks"], [{"customer_id": 1}, {"customer_id": 2}])
    assert online.values["clicks"] == [3, 4]
    store.push("clicks", [{"customer_id": 1, "ts": now + timedelta(seconds=1), "clicks": 5}])
    store.flush()
    labels = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [now + timedelta(seconds=2)] * 2}
    )
    offline = store.get_historical_features(labels, ["clicks:clicks"])
    assert list(offline["clicks"]) == [5, 4]
    with pytest.raises(InvalidInput, match="No feature view reads push source 'nope'"):
        store.push("nope", [{"customer_id": 1}])


def test_push_of_dict_rows_matches_push_of_a_frame(store: FeatureStore) -> None:
    """A few dict rows take a path without pandas; it must store what a frame stores."""
    now = datetime.now(UTC).replace(microsecond=123456)
    naive = (now + timedelta(seconds=1)).replace(tzinfo=None)  # naive: taken as UTC
    text = (now + timedelta(seconds=2)).isoformat()  # a string with an offset
    rows = [
        {"customer_id": 1, "ts": now, "clicks": np.int64(7)},
        {"customer_id": 2, "ts": naive, "clicks": 8},
        {"customer_id": 3, "ts": text, "clicks": 9},
    ]
    store.push("clicks", rows)
    by_dicts = store.get_online_features(["clicks:clicks"], [{"customer_id": i} for i in (1, 2, 3)])
    store.push(
        "clicks",
        pd.DataFrame(
            {
                "customer_id": [11, 12, 13],
                "ts": [now, naive.replace(tzinfo=UTC), text],
                "clicks": [7, 8, 9],
            }
        ),
    )
    by_frame = store.get_online_features(
        ["clicks:clicks"], [{"customer_id": i} for i in (11, 12, 13)]
    )
    assert by_dicts.values == by_frame.values == {"clicks": [7, 8, 9]}
    assert by_dicts.statuses == by_frame.statuses

    store.flush()  # the dict rows reach the offline store too
    labels = pd.DataFrame(
        {"customer_id": [1, 2, 3], "event_timestamp": [now + timedelta(seconds=3)] * 3}
    )
    assert list(store.get_historical_features(labels, ["clicks:clicks"])["clicks"]) == [7, 8, 9]

    with pytest.raises(InvalidInput, match="column 'clicks' is missing"):
        store.push("clicks", [{"customer_id": 1, "ts": now}])
    with pytest.raises(InvalidInput, match="must hold timestamps"):
        store.push("clicks", [{"customer_id": 1, "ts": "not a time", "clicks": 1}])


def test_lineage_sample_and_model_pinning(store: FeatureStore, runtime: Runtime) -> None:
    from sklearn.linear_model import LinearRegression

    labels = pd.DataFrame(
        {"customer_id": range(1, 40), "event_timestamp": [NOW] * 39, "y": np.arange(39.0)}
    )
    with milepost.start_run(experiment="features") as run:
        train = store.get_historical_features(
            labels, ["activity:monthly_spend", "activity:spend_per_ticket"]
        )
        model = LinearRegression().fit(train[["monthly_spend", "spend_per_ticket"]], train["y"])
        mv = milepost.log_model(
            model, "spend", input_example=train[["monthly_spend", "spend_per_ticket"]].head(3)
        )
    assert mv.feature_refs == ["activity:v1:monthly_spend", "activity:v1:spend_per_ticket"]
    sample = Client().list_artifacts(run.run_id, "features")
    assert [a.path for a in sample] == ["features/training_sample.parquet"]
    Client().promote("spend", 1, "Production")
    with pytest.raises(Conflict, match="model spend v1 \\(Production\\) pins it"):
        store.retire("activity", 1)


@pytest.mark.parametrize(
    ("features", "frame", "match"),
    [
        (["activity:monthy_spend"], None, "Did you mean 'monthly_spend'"),
        (["actvity:monthly_spend"], None, "Did you mean 'activity'"),
        (["activity"], None, "view:feature"),
        (["activity:v9:monthly_spend"], None, "no version 9"),
        (
            ["activity:monthly_spend"],
            pd.DataFrame({"event_timestamp": [NOW]}),
            "lacks column 'customer_id'",
        ),
        (["activity:monthly_spend"], pd.DataFrame({"customer_id": [1]}), "no timestamp column"),
        (
            ["pricing:discounted_spend"],
            pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW]}),
            "lacks column 'discount'",
        ),
        (
            ["activity:monthly_spend"],
            pd.DataFrame({"customer_id": [1], "event_timestamp": ["not a time"]}),
            "must hold timestamps",
        ),
    ],
)
def test_bad_requests_are_clear(
    store: FeatureStore, features: list[str], frame: pd.DataFrame | None, match: str
) -> None:
    entity_df = (
        frame if frame is not None else pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW]})
    )
    with pytest.raises((InvalidInput, NotFound), match=match):
        store.get_historical_features(entity_df, features)


def test_unapplied_or_changed_definitions_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    milepost.data.register("events", events(3, 2))
    fs = FeatureStore([customer, activity_view()])
    with pytest.raises(InvalidInput, match="defined but not applied"):
        fs.get_historical_features(
            pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW]}), ["activity:monthly_spend"]
        )
    fs.apply()
    changed = FeatureStore([customer, activity_view(spend_features_v2)])
    with pytest.raises(InvalidInput, match="differs from every registered version"):
        changed.get_online_features(["activity:monthly_spend"], [{"customer_id": 1}])


def test_duplicate_definitions_are_refused() -> None:
    from milepost.features import Definitions

    with pytest.raises(InvalidInput, match="defined twice"):
        Definitions.of([activity_view(), activity_view()])


def test_file_sources_and_schema_drift(runtime: Runtime, tmp_path: Path) -> None:
    frame = events(3, 2)
    frame.to_parquet(tmp_path / "a.parquet")
    view = FeatureView(
        name="spend",
        entity=customer,
        source=FileSource(str(tmp_path / "a.parquet")),
        timestamp_field="ts",
        ttl=timedelta(days=2),
        schema=[Field("monthly_spend")],
    )
    fs = FeatureStore([customer, view])
    fs.apply()
    labels = pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW]})
    assert not np.isnan(
        fs.get_historical_features(labels, ["spend:monthly_spend"])["monthly_spend"][0]
    )
    frame.drop(columns=["monthly_spend"]).to_parquet(tmp_path / "a.parquet")  # the source drifted
    with pytest.raises(InvalidInput, match=r"has no column 'monthly_spend' .*drift"):
        fs.get_historical_features(labels, ["spend:monthly_spend"])


def test_plans_are_cached_per_definitions_object_and_go_with_it(runtime: Runtime) -> None:
    milepost.data.register("events", events(5, 2))
    FeatureStore([customer, activity_view()]).apply()
    FeatureStore([customer, activity_view(spend_features_v2)]).apply()
    service, refs = runtime.features, ["activity:monthly_spend"]
    older = FeatureStore([customer, activity_view()]).definitions
    plan = service.resolve(older, refs)
    assert service.resolve(older, refs) is plan  # a hit across calls
    assert service.resolve(older, refs, full_names=True) is not plan
    assert plan.stored[0].key == "activity:v1"
    gone = weakref.ref(plan)
    del older, plan
    gc.collect()
    assert gone() is None  # the plan went with its definitions
    # definitions replaced again and again: each new object is built where the freed one
    # was (CPython reuses the address, so an id()-keyed cache handed it the other's plan)
    both = [
        Definitions.of([customer, activity_view(t)]) for t in (spend_features, spend_features_v2)
    ]
    held = [Definitions(dict(both[0].entities), dict(both[0].views))]
    for i in range(1, 21):
        assert service.resolve(held[0], refs).stored[0].key == f"activity:v{2 - i % 2}"
        entities, views = dict(both[i % 2].entities), dict(both[i % 2].views)
        held.clear()  # freed first, so the next one can take its place
        held.append(Definitions(entities, views))
