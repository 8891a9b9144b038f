"""The feature registry's admin side, embedded and remote: view versions with their
definitions, entities, what the online store holds, retiring a version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from milepost.errors import InvalidInput
from milepost.features import DatasetSource, Entity, FeatureView, Field
from tests.shared._registry import remote_runtime

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def view(platform: dict[str, Any], unique: str) -> str:
    """A view ``unique`` (v1) over a registered dataset, materialized."""
    rt = platform["rt"]
    times = [NOW - timedelta(hours=h) for h in (3, 2, 1)]
    rt.data.register(
        f"{unique}_events",
        pd.DataFrame({"customer_id": [1, 2, 3], "ts": times, "spend": [1.0, 2.0, 3.0]}),
    )
    entity = Entity(f"{unique}_customer", join_keys=["customer_id"])
    fs = rt.feature_store(
        [
            entity,
            FeatureView(
                name=unique,
                entity=entity,
                source=DatasetSource(f"{unique}_events"),
                timestamp_field="ts",
                ttl=timedelta(days=1),
                schema=[Field("spend")],
            ),
        ]
    )
    fs.apply()
    fs.materialize(NOW - timedelta(days=2), NOW + timedelta(seconds=1))
    return unique


def test_versions_entities_and_online_status(
    runtime: Any, platform: dict[str, Any], view: str
) -> None:
    rt = platform["rt"]
    mine = [r for r in runtime.features.registry.versions() if r.name == view]
    assert [r.to_dict() for r in mine] == [
        r.to_dict() for r in rt.features.registry.versions() if r.name == view
    ]
    (record,) = mine
    assert (record.key, record.status, record.kind) == (f"{view}:v1", "active", "feature_view")
    d = record.definition
    assert (d["ttl_seconds"], d["schema"], d["entity"]["join_keys"]) == (
        86400.0,
        [["spend", "float"]],
        ["customer_id"],
    )
    assert record.key in {r.key for r in runtime.features.records()}
    assert runtime.features.registry.entities()[f"{view}_customer"] == ["customer_id"]
    (coverage,) = runtime.features.online_status([record])
    (expected,) = rt.features.online_status([record])
    assert coverage.to_dict() == expected.to_dict()
    assert coverage.describe() == expected.describe() and coverage.describe().startswith("through")


def test_retire(runtime: Any, platform: dict[str, Any], view: str) -> None:
    runtime.features.retire(view, 1)
    (record,) = [r for r in platform["rt"].features.registry.versions() if r.name == view]
    assert record.status == "retired"
    assert view not in {r.name for r in runtime.features.registry.versions(include_retired=False)}


def test_remote_refuses_what_needs_the_definitions(platform: dict[str, Any]) -> None:
    remote = remote_runtime(platform, platform["token"])
    try:
        with pytest.raises(InvalidInput, match="not available in remote mode"):
            remote.features.materialize(None, NOW)
        assert remote.features.view_versions  # the remote-only read of one view
    finally:
        remote.close()
