"""The feature store with Redis online and S3 offline storage (real servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.features import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource

customer = Entity("customer", join_keys=["customer_id"])


@pytest.mark.redis
@pytest.mark.s3
def test_redis_online_and_s3_offline(
    redis_url: str, s3_server: dict[str, Any], tmp_path: Path
) -> None:
    import boto3

    bucket = s3_server["bucket"]
    prefix = f"features-{tmp_path.name}"
    milepost.configure(
        home=tmp_path / "home",
        online_uri=redis_url,
        offline_uri=f"s3://{bucket}/{prefix}/offline",
        s3_endpoint_url=s3_server["endpoint_url"],
    )
    now = datetime.now(UTC).replace(microsecond=0)
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "ts": [now - timedelta(hours=1)] * 3,
            "spend": [10.0, 20.0, 30.0],
        }
    )
    local = tmp_path / "spend.parquet"
    frame.to_parquet(local)
    boto3.client("s3", endpoint_url=s3_server["endpoint_url"]).upload_file(
        str(local), bucket, f"{prefix}/source/spend.parquet"
    )
    spend = FeatureView(
        name="spend",
        entity=customer,
        source=FileSource(f"s3://{bucket}/{prefix}/source/spend.parquet"),
        timestamp_field="ts",
        ttl=timedelta(days=1),
        schema=[Field("spend")],
    )
    clicks = FeatureView(
        name="clicks",
        entity=customer,
        source=PushSource("clicks"),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("clicks", "int")],
    )
    fs = FeatureStore([customer, spend, clicks])
    fs.apply()
    labels = pd.DataFrame({"customer_id": [3, 1], "event_timestamp": [now, now]})
    assert list(fs.get_historical_features(labels, ["spend:spend"])["spend"]) == [30.0, 10.0]
    assert fs.materialize(None, now + timedelta(seconds=1))["spend:v1"] == 3
    online = fs.get_online_features(["spend:spend"], [{"customer_id": 2}, {"customer_id": 9}])
    assert online.values["spend"] == [20.0, None] and online.statuses["spend"] == [
        "present",
        "missing",
    ]
    fs.push("clicks", [{"customer_id": 1, "ts": now, "clicks": 7}])
    fs.flush()
    keys = boto3.client("s3", endpoint_url=s3_server["endpoint_url"]).list_objects_v2(
        Bucket=bucket, Prefix=f"{prefix}/offline/push/clicks/"
    )
    assert keys["KeyCount"] == 1
    offline = fs.get_historical_features(
        pd.DataFrame({"customer_id": [1], "event_timestamp": [now]}), ["clicks:clicks"]
    )
    assert list(offline["clicks"]) == [7]
    assert fs.get_online_features(["clicks:clicks"], [{"customer_id": 1}]).values["clicks"] == [7]
    assert fs.check_consistency("spend", sample=10).ok
