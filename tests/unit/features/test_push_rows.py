"""Dict rows pushed without pandas are packed exactly as a frame's rows are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from milepost.features import Entity, FeatureView, Field, PushSource
from milepost.features.offline import run_transform
from milepost.features.packing import pack_frame, pack_records

VIEW = FeatureView(
    name="live",
    entity=Entity("user", join_keys=["user_id"]),
    source=PushSource("live"),
    timestamp_field="ts",
    created_timestamp_field="created",
    ttl=timedelta(days=1),
    schema=[Field("a"), Field("b", "int"), Field("c", "string")],
)


def test_pack_records_equals_the_frame_path() -> None:
    t = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    rows = [
        {"user_id": 1, "ts": t, "created": t, "a": 1.5, "b": 2, "c": "x"},
        {  # another zone: converted to UTC
            "user_id": 2,
            "ts": t.astimezone(timezone(timedelta(hours=-5))),
            "created": t + timedelta(seconds=1),
            "a": np.float64("nan"),
            "b": np.int64(3),
            "c": "y",
        },
        {  # before the epoch, floor division as numpy does
            "user_id": 3,
            "ts": datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
            "created": t,
            "a": -0.25,
            "b": 4,
            "c": "z",
        },
    ]
    rows += [  # the same times, naive: taken as UTC
        dict(r, user_id=r["user_id"] + 10, ts=r["ts"].astimezone(UTC).replace(tzinfo=None))
        for r in rows
    ]
    frame = pd.DataFrame(rows)
    expected = pack_frame(VIEW, run_transform(VIEW, frame))
    assert pack_records(VIEW, rows) == expected
