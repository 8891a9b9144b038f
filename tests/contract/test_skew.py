"""Training-serving skew from the prediction log, on every metadata backend.

A feature view with a transform feeds a model that pins it; an in-process engine serves
it as a replica does (online features, the real prediction log). Per-entity skew
recomputes the served features offline at each request's time; distribution skew
compares the served vectors with the training reference.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import milepost
from milepost import Runtime
from milepost.errors import InvalidInput, NotFound
from milepost.features import DatasetSource, Entity, FeatureStore, FeatureView, Field
from milepost.features.online import entity_key, pack, unpack
from milepost.monitoring import read_predictions
from milepost.serving.engine import EndpointEngine
from milepost.serving.logger import PredictionLogger
from milepost.serving.skew import BY_FEATURE_COLUMNS, distribution_skew, entity_skew

NOW = datetime.now(UTC).replace(microsecond=0)
CUSTOMERS = 30
INPUTS = ["monthly_spend", "spend_per_ticket"]
REFS = ["activity:v1:monthly_spend", "activity:v1:spend_per_ticket"]
customer = Entity("customer", join_keys=["customer_id"])


def spend_features(df: pd.DataFrame) -> pd.DataFrame:
    df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
    return df


def events() -> pd.DataFrame:
    """One row per customer per day for five days, the last an hour before NOW."""
    rng = np.random.default_rng(3)
    rows = [
        {
            "customer_id": c,
            "ts": NOW - timedelta(days=4 - d, hours=1),
            "monthly_spend": float(rng.integers(10, 100)),
            "support_tickets": int(rng.integers(0, 4)),
        }
        for c in range(1, CUSTOMERS + 1)
        for d in range(5)
    ]
    return pd.DataFrame(rows)


class Served:
    """An endpoint serving a model that pins ``activity`` features, with its log."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        milepost.data.register("events", events())
        view = FeatureView(
            name="activity",
            entity=customer,
            source=DatasetSource("events"),
            timestamp_field="ts",
            ttl=timedelta(days=2),
            schema=[
                Field("monthly_spend"),
                Field("support_tickets", "int"),
                Field("spend_per_ticket"),
            ],
            transform=spend_features,
        )
        self.store = FeatureStore([customer, view])
        self.store.apply()
        self.store.materialize(NOW - timedelta(days=30), NOW + timedelta(seconds=1))
        labels = pd.DataFrame(
            {
                "customer_id": range(1, CUSTOMERS + 1),
                "event_timestamp": [NOW] * CUSTOMERS,
                "y": np.arange(float(CUSTOMERS)),
            }
        )
        from sklearn.linear_model import LinearRegression

        with milepost.start_run(experiment="skew"):
            train = self.store.get_historical_features(
                labels, ["activity:monthly_spend", "activity:spend_per_ticket"]
            )
            model = LinearRegression().fit(train[INPUTS], train["y"])
            mv = milepost.log_model(model, "spend", input_example=train[INPUTS].head(3))
        assert mv.feature_refs == REFS
        self.version = mv.version
        rt.serving.create("spend-ep", "spend", version=mv.version)
        self.logger = PredictionLogger(
            "spend-ep", rt.settings.home / "predictions", rt.serving.store, interval=3600
        )
        self.engine = EndpointEngine(
            "spend-ep",
            store=rt.serving.store,
            models=rt.models,
            features=rt.features,
            logger=self.logger,
        )

    def serve(self, customers: list[int]) -> int:
        """One request per customer; returns the epoch ms just before the first."""
        start = time.time_ns() // 1_000_000
        for c in customers:
            reply = self.engine.predict(orjson.dumps({"rows": [{"customer_id": c}]}))
            assert reply.status == 200, reply.body
        self.logger.flush()
        return start

    def online_row(self, customer_id: int) -> tuple[int, int, list[Any]]:
        raw = self.rt.features.online.read("activity:v1", [entity_key((customer_id,))])[0]
        assert raw is not None
        return unpack(raw)

    def write_online(self, customer_id: int, values: list[Any], *, event_ms: int) -> None:
        """Overwrite one entity's online row (as a differing online path would)."""
        created = int(time.time() * 1000)
        self.rt.features.online.write(
            "activity:v1",
            [(entity_key((customer_id,)), event_ms, created, pack(event_ms, created, values))],
        )

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def served(runtime: Runtime) -> Iterator[Served]:
    s = Served(runtime)
    yield s
    s.close()


def _row(result: Any, feature: str) -> dict[str, Any]:
    frame = result.by_feature
    rows: list[dict[str, Any]] = frame[frame.feature == feature].to_dict("records")
    assert len(rows) == 1, frame
    return rows[0]


def test_entity_skew_is_zero_when_both_paths_agree(served: Served, runtime: Runtime) -> None:
    since = served.serve(list(range(1, CUSTOMERS + 1)))
    result = entity_skew(runtime.serving, "spend-ep", since_ms=since)
    assert list(result.by_feature.columns) == BY_FEATURE_COLUMNS
    assert (result.logged, result.checked, result.mismatches) == (CUSTOMERS, CUSTOMERS, 0)
    assert result.ok and result.status == "ok" and result.examples == []
    for feature, ref in zip(INPUTS, REFS, strict=True):
        row = _row(result, feature)
        assert row["ref"] == ref and (row["model"], row["version"]) == ("spend", served.version)
        assert (row["rows"], row["compared"], row["mismatches"]) == (CUSTOMERS, CUSTOMERS, 0)
        assert (row["no_offline"], row["no_served"], row["mismatch_share"]) == (0, 0, 0.0)
    out = result.to_dict()
    assert (out["status"], out["mismatches"], out["compared"]) == ("ok", 0, 2 * CUSTOMERS)
    assert out["mismatch_share"] == 0.0
    assert out["by_feature"][0]["feature"] == "monthly_spend"
    assert orjson.loads(orjson.dumps(out)) == out  # JSON-ready as it is


def test_a_differing_online_value_is_counted_and_named(served: Served, runtime: Runtime) -> None:
    served.serve(list(range(1, CUSTOMERS + 1)))
    event_ms, _, values = served.online_row(7)
    offline_value = values[2]
    # the online path computed spend_per_ticket differently for customer 7
    served.write_online(7, [values[0], values[1], offline_value * 2 + 1], event_ms=event_ms)
    since = served.serve([5, 7, 9])

    result = entity_skew(runtime.serving, "spend-ep", since_ms=since)
    assert result.status == "skew" and not result.ok and result.mismatches == 1
    assert result.compared == 6 and result.mismatch_share == pytest.approx(1 / 6)
    bad = _row(result, "spend_per_ticket")
    assert (bad["compared"], bad["mismatches"], bad["status"]) == (3, 1, "skew")
    assert bad["mismatch_share"] == pytest.approx(1 / 3)
    assert _row(result, "monthly_spend")["mismatches"] == 0
    [example] = result.examples
    assert example["feature"] == "spend_per_ticket" and example["entity"] == {"customer_id": 7}
    assert example["served"] == offline_value * 2 + 1
    assert example["offline"] == pytest.approx(offline_value)
    out = result.to_dict()
    assert out["examples"] == [example] and orjson.loads(orjson.dumps(out)) == out
    logged = read_predictions(runtime.serving.store, "spend-ep", since_ms=since)
    assert logged is not None and example["request_id"] in logged["request_id"].to_pylist()

    # the whole window (both rounds) counts the one bad row among 33
    everything = entity_skew(runtime.serving, "spend-ep", since_ms=0)
    assert everything.checked == CUSTOMERS + 3
    assert _row(everything, "spend_per_ticket")["mismatches"] == 1


def test_values_within_the_tolerance_agree(served: Served, runtime: Runtime) -> None:
    event_ms, _, values = served.online_row(4)
    served.write_online(4, [values[0] * (1 + 1e-9), values[1], values[2]], event_ms=event_ms)
    since = served.serve([4])
    assert entity_skew(runtime.serving, "spend-ep", since_ms=since).mismatches == 0
    served.write_online(4, [values[0] * (1 + 1e-4), values[1], values[2]], event_ms=event_ms)
    since = served.serve([4])
    assert entity_skew(runtime.serving, "spend-ep", since_ms=since).mismatches == 1


def test_rows_without_an_offline_value_are_counted_apart(served: Served, runtime: Runtime) -> None:
    """Customer 999 is online only (never in the source): not a mismatch."""
    served.write_online(999, [50.0, 1, 25.0], event_ms=int(time.time() * 1000))
    since = served.serve([1, 999])
    result = entity_skew(runtime.serving, "spend-ep", since_ms=since)
    for feature in INPUTS:
        row = _row(result, feature)
        assert (row["compared"], row["mismatches"], row["no_offline"]) == (1, 0, 1)
    assert result.status == "ok"


def test_a_seeded_sample_is_repeatable(served: Served, runtime: Runtime) -> None:
    since = served.serve(list(range(1, CUSTOMERS + 1)))
    first = entity_skew(runtime.serving, "spend-ep", since_ms=since, sample=7, seed=11)
    again = entity_skew(runtime.serving, "spend-ep", since_ms=since, sample=7, seed=11)
    assert (first.logged, first.checked) == (CUSTOMERS, 7)
    assert _row(first, "monthly_spend")["compared"] == 7
    assert first.to_dict() == again.to_dict()


def test_an_empty_window_and_bad_arguments(served: Served, runtime: Runtime) -> None:
    empty = entity_skew(runtime.serving, "spend-ep", since_ms=0)
    assert (empty.logged, empty.checked, empty.status) == (0, 0, "no_data")
    assert (empty.compared, empty.mismatch_share, empty.to_dict()["by_feature"]) == (0, None, [])
    assert empty.by_feature.empty and list(empty.by_feature.columns) == BY_FEATURE_COLUMNS
    quiet = distribution_skew(
        runtime.serving, "spend-ep", model="spend", version=served.version, since_ms=0
    )
    assert (quiet.rows, quiet.status, quiet.drift) == (0, "no_data", None)
    with pytest.raises(NotFound, match="Endpoint 'nope' does not exist"):
        entity_skew(runtime.serving, "nope", since_ms=0)
    with pytest.raises(InvalidInput, match="sample"):
        entity_skew(runtime.serving, "spend-ep", since_ms=0, sample=0)
    with pytest.raises(InvalidInput, match="both model and version"):
        distribution_skew(runtime.serving, "spend-ep", since_ms=0, model="spend")
    with pytest.raises(InvalidInput, match="until_ms"):
        entity_skew(runtime.serving, "spend-ep", since_ms=10, until_ms=5)


def test_distribution_skew_flags_a_shifted_serving_column(served: Served, runtime: Runtime) -> None:
    customers = list(range(1, CUSTOMERS + 1))
    since = served.serve(customers)
    same = distribution_skew(
        runtime.serving, "spend-ep", model="spend", version=served.version, since_ms=since
    )
    assert (same.rows, same.reference, same.features) == (CUSTOMERS, "training_sample", INPUTS)
    assert set(same.by_feature["feature"]) == set(INPUTS)
    assert not same.by_feature["drifted"].any() and same.status == "ok"

    for c in customers:  # online monthly_spend shifted far beyond its training range
        event_ms, _, values = served.online_row(c)
        served.write_online(c, [values[0] + 500.0, values[1], values[2]], event_ms=event_ms)
    shifted_since = served.serve(customers)
    shifted = distribution_skew(runtime.serving, "spend-ep", since_ms=shifted_since)  # primary
    drifted = shifted.by_feature.groupby("feature")["drifted"].any()
    assert drifted["monthly_spend"] and not drifted["spend_per_ticket"]
    assert shifted.status == "skew"
    assert shifted.to_dict()["status"] == "skew"


def test_versions_pinning_no_features_are_listed_not_checked(
    served: Served, runtime: Runtime
) -> None:
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"monthly_spend": [10.0, 20.0, 30.0], "spend_per_ticket": [1.0, 2, 3]})
    with milepost.start_run(experiment="skew"):
        plain = milepost.log_model(
            LinearRegression().fit(frame, [1.0, 2.0, 3.0]), "plain", input_example=frame
        )
    assert plain.feature_refs == []
    runtime.serving.create("plain-ep", "plain", version=plain.version)
    logger = PredictionLogger(
        "plain-ep", runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )
    engine = EndpointEngine(
        "plain-ep",
        store=runtime.serving.store,
        models=runtime.models,
        features=runtime.features,
        logger=logger,
    )
    try:
        body = {"rows": frame.to_dict("records")}
        assert engine.predict(orjson.dumps(body)).status == 200
    finally:
        engine.close()
    result = entity_skew(runtime.serving, "plain-ep", since_ms=0)
    assert result.unpinned == [f"models:/plain/{plain.version}"]
    assert (result.logged, result.status) == (3, "no_data") and result.by_feature.empty
    with pytest.raises(NotFound, match="no training reference") as caught:
        distribution_skew(runtime.serving, "plain-ep", since_ms=0)
    assert "training_data" in (caught.value.hint or "")


def test_a_variant_narrows_the_window(served: Served, runtime: Runtime) -> None:
    since = served.serve([1, 2, 3])
    mine = entity_skew(runtime.serving, "spend-ep", since_ms=since, variant="spend-v1")
    assert mine.checked == 3 and mine.status == "ok"
    other = entity_skew(runtime.serving, "spend-ep", since_ms=since, variant="spend-v9")
    assert (other.checked, other.status) == (0, "no_data")


def test_distribution_skew_reads_the_stored_profile_over_the_inputs_only(
    served: Served, runtime: Runtime
) -> None:
    """A version logged with training_data is compared with its stored profile, on its
    input features (the label and the entity key in the training frame are left out)."""
    from sklearn.linear_model import LinearRegression

    labels = pd.DataFrame(
        {
            "customer_id": range(1, CUSTOMERS + 1),
            "event_timestamp": [NOW] * CUSTOMERS,
            "y": np.arange(float(CUSTOMERS)),
        }
    )
    with milepost.start_run(experiment="skew"):
        train = served.store.get_historical_features(labels, REFS)
        model = LinearRegression().fit(train[INPUTS], train["y"])
        mv = milepost.log_model(
            model, "spend", input_example=train[INPUTS].head(3), training_data=train
        )
    runtime.serving.create("profiled-ep", "spend", version=mv.version)
    logger = PredictionLogger(
        "profiled-ep", runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )
    engine = EndpointEngine(
        "profiled-ep",
        store=runtime.serving.store,
        models=runtime.models,
        features=runtime.features,
        logger=logger,
    )
    try:
        for c in range(1, CUSTOMERS + 1):
            body = orjson.dumps({"rows": [{"customer_id": c}]})
            assert engine.predict(body).status == 200
    finally:
        engine.close()
    result = distribution_skew(
        runtime.serving, "profiled-ep", model="spend", version=mv.version, since_ms=0
    )
    assert (result.reference, result.features, result.rows) == ("profile", INPUTS, CUSTOMERS)
    assert set(result.by_feature["feature"]) == set(INPUTS)  # not y, not customer_id
    assert result.status == "ok" and not result.by_feature["drifted"].any()
    assert result.to_dict()["drift"]["dataset_drift"] is False
