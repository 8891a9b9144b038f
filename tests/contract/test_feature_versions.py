"""Older feature versions stay readable when a definition changes (every metadata backend).

A version whose rows are stored (materialized online, or transformed offline) is read
from what is stored; offline reads of a version recompute it with the transform whose
code matches the version's stored fingerprint (whatever the function is called now);
when no loaded code matches, the features its transform does not compute stay
readable and the others are refused, naming the version, the feature and the file.
An unversioned ref that moved to a version not in the online store is refused, never
read as "missing".
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import milepost
from milepost import Runtime
from milepost.errors import Conflict, InvalidInput
from milepost.features import (
    DatasetSource,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    OnDemandFeatureView,
    PushSource,
)
from milepost.models import ModelVersion

NOW = datetime.now(UTC).replace(microsecond=0)
END = NOW + timedelta(seconds=1)
customer = Entity("customer", join_keys=["customer_id"])
ROWS = [{"customer_id": c} for c in (1, 2, 3)]
REFS = ["activity:monthly_spend", "activity:support_tickets", "activity:spend_per_ticket"]
V1_REFS = [r.replace("activity:", "activity:v1:") for r in REFS]


def per_ticket(df: pd.DataFrame) -> pd.DataFrame:
    df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
    return df


def per_ticket_v2(df: pd.DataFrame) -> pd.DataFrame:
    df["spend_per_ticket"] = df["monthly_spend"] / (2 + df["support_tickets"])
    return df


def discounted(df: pd.DataFrame) -> pd.DataFrame:
    df["discounted"] = df["activity__spend_per_ticket"] * (1 - df["discount"] / 100)
    return df


def activity(transform: Any = per_ticket, ttl: timedelta = timedelta(days=2)) -> FeatureView:
    return FeatureView(
        name="activity",
        entity=customer,
        source=DatasetSource("events"),
        timestamp_field="ts",
        ttl=ttl,
        schema=[Field("monthly_spend"), Field("support_tickets", "int"), Field("spend_per_ticket")],
        transform=transform,
    )


def events(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "customer_id": c,
            "ts": NOW - timedelta(days=d, hours=1),
            "monthly_spend": float(rng.integers(10, 100)),
            "support_tickets": int(rng.integers(0, 4)),
        }
        for c in range(1, 11)
        for d in range(3)
    ]
    return pd.DataFrame(rows)


def newest(frame: pd.DataFrame, offset: int) -> dict[str, list[Any]]:
    """The newest row per customer of ROWS, with spend_per_ticket = spend / (offset + t)."""
    last = frame.sort_values("ts").groupby("customer_id").last()
    ids = [r["customer_id"] for r in ROWS]
    spend = [float(last.loc[c, "monthly_spend"]) for c in ids]
    tickets = [int(last.loc[c, "support_tickets"]) for c in ids]
    return {
        "monthly_spend": spend,
        "support_tickets": tickets,
        "spend_per_ticket": [s / (offset + t) for s, t in zip(spend, tickets, strict=True)],
    }


def same(got: dict[str, list[Any]], expected: dict[str, list[Any]]) -> bool:
    """Equal columns of equal values (floats within rounding)."""
    return got.keys() == expected.keys() and all(
        got[k] == pytest.approx(expected[k]) for k in expected
    )


def labels() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r["customer_id"] for r in ROWS], "event_timestamp": NOW})


def offline_values(fs: FeatureStore, refs: list[str]) -> dict[str, list[Any]]:
    out = fs.get_historical_features(labels(), refs)
    return {r.split(":")[-1]: out[r.split(":")[-1]].tolist() for r in refs}


@pytest.fixture
def v1(runtime: Runtime) -> tuple[FeatureStore, ModelVersion]:
    """activity:v1 applied, materialized, and pinned by model spend v1."""
    from sklearn.linear_model import LinearRegression

    milepost.data.register("events", events())
    fs = FeatureStore([customer, activity()])
    fs.apply()
    fs.materialize_incremental(END)
    with milepost.start_run(experiment="versions"):
        train = fs.get_historical_features(labels().assign(y=[1.0, 2.0, 3.0]), REFS)
        x = train[["monthly_spend", "support_tickets", "spend_per_ticket"]]
        mv = milepost.log_model(LinearRegression().fit(x, train["y"]), "spend", input_example=x)
    assert mv.feature_refs == V1_REFS
    return fs, mv


def test_editing_the_transform_keeps_v1_readable(
    v1: tuple[FeatureStore, ModelVersion], runtime: Runtime
) -> None:
    _, mv = v1
    expected = newest(events(), 1)
    edited = FeatureStore([customer, activity(per_ticket_v2)])
    [item] = edited.apply()
    assert (item.change, item.current_version, item.next_version) == ("new_version", 1, 2)
    steps = " ".join(item.next_steps)
    assert "milepost features materialize --incremental" in steps
    assert "activity:v2" in steps and "spend v1" in steps and "activity:v1" in steps

    # v1 by explicit ref: online from its stored rows, offline through its own transform
    online = edited.get_online_features(V1_REFS, ROWS)
    assert same(online.values, expected)
    assert set(online.statuses["spend_per_ticket"]) == {"present"}
    assert same(offline_values(edited, V1_REFS), expected)

    # the model that pins v1 keeps being served v1's values
    runtime.serving.create("spend-ep", "spend", version=1)
    values, statuses = runtime.features.serving_reader(mv.feature_refs).read(ROWS)
    assert same(values, expected) and set(statuses["spend_per_ticket"]) == {"present"}

    # the unversioned ref now means v2, which the online store does not hold yet: refused
    with pytest.raises(Conflict, match=r"activity:v2 is not materialized") as refused:
        edited.get_online_features(["activity:spend_per_ticket"], ROWS)
    assert "milepost features materialize --incremental" in (refused.value.hint or "")
    assert "activity:v1:spend_per_ticket" in (refused.value.hint or "")
    edited.materialize_incremental(END)
    now_v2 = edited.get_online_features(["activity:spend_per_ticket"], ROWS)
    assert now_v2.values["spend_per_ticket"] == pytest.approx(
        newest(events(), 2)["spend_per_ticket"]
    )
    # and offline the new code computes v2
    assert same(offline_values(edited, REFS), newest(events(), 2))
    # the pinned v1 is kept fresh on request, with its own code
    milepost.data.register("events", events(seed=5))
    kept = edited.materialize(None, END, views=["activity:v1"])
    assert list(kept) == ["activity:v1"]
    values, _ = runtime.features.serving_reader(mv.feature_refs).read(ROWS)
    assert same(values, newest(events(seed=5), 1))


def test_editing_only_the_ttl_keeps_v1_readable_through_its_transform(
    v1: tuple[FeatureStore, ModelVersion],
) -> None:
    longer = FeatureStore([customer, activity(ttl=timedelta(days=3))])
    [item] = longer.apply()
    assert (item.change, item.current_version, item.next_version) == ("new_version", 1, 2)
    expected = newest(events(), 1)
    assert same(offline_values(longer, V1_REFS), expected)
    assert same(longer.get_online_features(V1_REFS, ROWS).values, expected)
    # a new dataset version: v1 is recomputed (no cached rows) with the same code
    milepost.data.register("events", events(seed=1))
    assert same(offline_values(longer, V1_REFS), newest(events(seed=1), 1))


def test_older_on_demand_versions_read_the_inputs_they_were_defined_on(
    v1: tuple[FeatureStore, ModelVersion],
) -> None:
    old = activity()
    pricing = OnDemandFeatureView(
        name="pricing",
        sources=[old],
        request_schema=[Field("discount")],
        schema=[Field("discounted")],
        transform=discounted,
    )
    FeatureStore([customer, old, pricing]).apply()
    new = activity(per_ticket_v2)
    edited = FeatureStore(
        [
            customer,
            new,
            OnDemandFeatureView(
                "pricing", [new], [Field("discount")], [Field("discounted")], discounted
            ),
        ]
    )
    assert {(i.view, i.next_version) for i in edited.apply()} == {("activity", 2), ("pricing", 2)}
    rows = [{**r, "discount": 10.0} for r in ROWS]
    got = edited.get_online_features(["pricing:v1:discounted"], rows)
    v1_values = newest(events(), 1)["spend_per_ticket"]
    assert got.values["discounted"] == pytest.approx([v * 0.9 for v in v1_values])
    offline = edited.get_historical_features(
        labels().assign(discount=10.0), ["pricing:v1:discounted"]
    )
    assert offline["discounted"].tolist() == pytest.approx([v * 0.9 for v in v1_values])


def test_apply_summarises_versions_and_what_to_run_next(runtime: Runtime) -> None:
    milepost.data.register("events", events())
    fs = FeatureStore([customer, activity()])
    [first] = fs.apply()
    assert (first.change, first.current_version, first.next_version) == ("new", None, 1)
    assert any("materialize --incremental" in s for s in first.next_steps)
    [again] = fs.apply()  # unchanged, never materialized: the summary says both
    assert (again.change, again.current_version, again.next_version) == ("unchanged", 1, 1)
    assert any("activity:v1 is not in the online store" in s for s in again.next_steps)
    fs.materialize_incremental(END)
    [done] = fs.apply()
    assert (done.change, done.current_version, done.next_version, done.next_steps) == (
        "unchanged",
        1,
        1,
        (),
    )
    assert done.to_dict()["current_version"] == 1


def test_a_first_push_view_reads_pushed_rows_and_a_new_version_needs_filling(
    runtime: Runtime,
) -> None:
    def clicks(ttl: timedelta) -> FeatureView:
        return FeatureView(
            name="clicks",
            entity=customer,
            source=PushSource("clicks"),
            timestamp_field="ts",
            ttl=ttl,
            schema=[Field("clicks", "int")],
        )

    fs = FeatureStore([customer, clicks(timedelta(hours=1))])
    fs.apply()
    now = datetime.now(UTC)
    fs.push("clicks", [{"customer_id": 1, "ts": now, "clicks": 3}])
    assert fs.get_online_features(["clicks:clicks"], [{"customer_id": 1}]).values == {"clicks": [3]}
    fs.flush()
    longer = FeatureStore([customer, clicks(timedelta(hours=2))])
    [item] = longer.apply()
    assert any("materialize --incremental" in s for s in item.next_steps)
    # v2 holds none of the pushed history yet: refused, not "missing"
    with pytest.raises(Conflict, match="clicks:v2 is not materialized"):
        longer.get_online_features(["clicks:clicks"], [{"customer_id": 1}])
    longer.materialize_incremental(datetime.now(UTC) + timedelta(seconds=1))
    assert longer.get_online_features(["clicks:clicks"], [{"customer_id": 1}]).values == {
        "clicks": [3]
    }


def test_a_reactivated_version_must_be_materialized_again(runtime: Runtime) -> None:
    """Retiring deleted its online rows: reading it again is refused until materialized."""
    milepost.data.register("events", events())
    FeatureStore([customer, activity()]).apply()
    FeatureStore([customer, activity()]).materialize_incremental(END)
    FeatureStore([customer, activity(per_ticket_v2)]).apply()
    runtime.features.retire("activity", 1)
    back = FeatureStore([customer, activity()])
    [item] = back.apply()
    assert (item.change, item.current_version, item.next_version) == ("reactivated", 2, 1)
    assert any("activity:v1 is not in the online store" in s for s in item.next_steps)
    with pytest.raises(Conflict, match="activity:v1 is not materialized"):
        back.get_online_features(["activity:monthly_spend"], ROWS)
    back.materialize_incremental(END)
    got = back.get_online_features(["activity:monthly_spend"], ROWS)
    assert got.values["monthly_spend"] == newest(events(), 1)["monthly_spend"]


# -- the code is gone ---------------------------------------------------------------------------

V1_FILE = """
from datetime import timedelta
from milepost.features import DatasetSource, Entity, FeatureView, Field

customer = Entity("customer", join_keys=["customer_id"])


def ratio(df):
    tag = "{tag}"  # unique per test run: no other run's code has this fingerprint
    df["spend_per_ticket"] = df["monthly_spend"] / (3 + df["support_tickets"])
    return df


activity = FeatureView(
    name="activity", entity=customer, source=DatasetSource("events"), timestamp_field="ts",
    ttl=timedelta(days=2),
    schema=[Field("monthly_spend"), Field("support_tickets", "int"), Field("spend_per_ticket")],
    transform=ratio,
)
"""
V2_FILE = """
from datetime import timedelta
from milepost.features import DatasetSource, Entity, FeatureView, Field

customer = Entity("customer", join_keys=["customer_id"])

activity = FeatureView(
    name="activity", entity=customer, source=DatasetSource("events"), timestamp_field="ts",
    ttl=timedelta(days=2), schema=[Field("monthly_spend"), Field("support_tickets", "int")],
)
"""
# another process applies v1, materializes it and logs a model that pins it
CHILD = """
import sys
from datetime import datetime, timedelta
import pandas as pd
from sklearn.linear_model import LinearRegression
import milepost
from milepost.features import FeatureStore

home, uri, repo, now = sys.argv[1:5]
milepost.configure(home=home, metadata_uri=uri, user="tester")
fs = FeatureStore(repo)
fs.apply()
now = datetime.fromisoformat(now)
fs.materialize_incremental(now + timedelta(seconds=1))
labels = pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [now] * 3, "y": [1.0, 2, 3]})
refs = ["activity:monthly_spend", "activity:support_tickets", "activity:spend_per_ticket"]
with milepost.start_run(experiment="versions"):
    train = fs.get_historical_features(labels, refs)
    x = train[["monthly_spend", "support_tickets", "spend_per_ticket"]]
    milepost.log_model(LinearRegression().fit(x, train["y"]), "ratio", input_example=x)
"""


def _apply_v1_in_another_process(runtime: Runtime, metadata_uri: str, repo: Path) -> str:
    """Write V1_FILE (its transform unique to this run), then apply, materialize and log a
    model in another process, so that this one never loads the transform. Returns the
    file's text."""
    milepost.data.register("events", events())
    v1_file = V1_FILE.replace("{tag}", uuid.uuid4().hex)
    repo.write_text(v1_file)
    home = runtime.settings.home
    subprocess.run(
        [sys.executable, "-c", CHILD, str(home), metadata_uri, str(repo), NOW.isoformat()],
        check=True,
        capture_output=True,
    )
    return v1_file


def test_a_renamed_transform_still_computes_its_version(
    runtime: Runtime, metadata_uri: str, tmp_path: Path
) -> None:
    """The file keeps v1's function under another name: it is found by its code."""
    repo = tmp_path / "features.py"
    v1_file = _apply_v1_in_another_process(runtime, metadata_uri, repo)
    kept = v1_file[v1_file.index("def ratio") : v1_file.index("activity =")]
    repo.write_text(V2_FILE + "\n\n" + kept.replace("def ratio(", "def ratio_as_in_v1("))
    fs = FeatureStore(repo)
    fs.apply()
    milepost.data.register("events", events(seed=2))  # nothing of v1 computed on this data
    assert same(offline_values(fs, V1_REFS), newest(events(seed=2), 3))


def test_when_the_code_is_gone_stored_values_and_source_columns_stay_readable(
    runtime: Runtime, metadata_uri: str, tmp_path: Path
) -> None:
    repo = tmp_path / "features.py"
    v1_file = _apply_v1_in_another_process(runtime, metadata_uri, repo)
    repo.write_text(V2_FILE)  # the transform is deleted from the file
    fs = FeatureStore(repo)
    [item] = fs.apply()
    assert (item.change, item.current_version, item.next_version) == ("new_version", 1, 2)
    assert any("ratio v1" in s for s in item.next_steps)  # the model that pins v1

    expected = newest(events(), 3)
    # stored values: online rows need no code, offline the rows transformed for training
    assert same(fs.get_online_features(V1_REFS, ROWS).values, expected)
    mv = runtime.models.get_version("ratio", 1)
    values, _ = runtime.features.serving_reader(mv.feature_refs).read(ROWS)
    assert same(values, expected)
    assert same(offline_values(fs, V1_REFS), expected)

    # new data: v1's derived feature needs code nobody loaded; its source columns do not
    milepost.data.register("events", events(seed=3))
    fresh = newest(events(seed=3), 3)
    sources = V1_REFS[:2]
    assert same(
        offline_values(fs, sources), {k: fresh[k] for k in fresh if k != "spend_per_ticket"}
    )
    with pytest.raises(InvalidInput) as refused:
        fs.get_historical_features(labels(), V1_REFS)
    message = str(refused.value)
    assert "activity:v1" in message and "'spend_per_ticket'" in message
    assert str(repo) in message and "ratio" in message, message
    assert "monthly_spend" in message  # what stays readable
    # loading the old file again (here: a copy) makes v1 computable once more
    old = tmp_path / "features_v1.py"
    old.write_text(v1_file)
    with_history = FeatureStore(repo, history=[old])
    assert same(offline_values(with_history, V1_REFS), fresh)
